"""GPT-2's ``config.json`` and the hub's models, built in Chapter 9 (Loading GPT-2's weights).

* :data:`HUB_MODELS`: the four GPT-2 sizes on the Hugging Face hub, with sizes computed from the
  presets;
* :func:`config_from_hf` / :func:`config_to_hf`: GPT-2's ``config.json`` <-> :class:`GPTConfig`,
  refusing any setting our model does not implement;
* :class:`CheckpointError` and its subclasses: the errors of ``helpers.gpt2`` and ``helpers.hub``,
  each with one sentence.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from helpers.model import GPTConfig, predicted_parameters


class CheckpointError(Exception):
    """Base of this module's errors; each carries one sentence (a command line: exit code 2)."""


class UnknownModelError(CheckpointError, ValueError):
    """Neither a known hub model nor an existing path."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A path, or a file that a checkpoint directory needs, is missing."""


class HubUnreachableError(CheckpointError, ConnectionError):
    """No network (or downloads switched off) and no cached copy."""


class CheckpointFormatError(CheckpointError, ValueError):
    """Corrupt, pickled, or not a model ours can hold (names, shapes, config)."""


class HubModel(NamedTuple):
    repo_id: str
    preset: str  # GPTConfig.from_preset name
    n_params: int  # parameters, the tied head counted once
    param_bytes: int  # n_params * 4: the float32 parameters; the file also holds a header (and
    # in older files the h.i.attn.bias mask buffers), so model.safetensors is somewhat larger


def _hub_model(repo_id: str, preset: str) -> HubModel:
    n = predicted_parameters(GPTConfig.from_preset(preset))
    return HubModel(repo_id, preset, n, 4 * n)


HUB_MODELS = {  # short alias -> where it lives; sizes computed from the presets, not measured
    "gpt2": _hub_model("openai-community/gpt2", "gpt2-small"),
    "gpt2-medium": _hub_model("openai-community/gpt2-medium", "gpt2-medium"),
    "gpt2-large": _hub_model("openai-community/gpt2-large", "gpt2-large"),
    "gpt2-xl": _hub_model("openai-community/gpt2-xl", "gpt2-xl"),
}
_HUB_NAMES = {k: m for alias, m in HUB_MODELS.items() for k in (alias, m.repo_id, m.preset)}
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh")  # GPT-2's GELU: our layers.GELU("tanh")
LAYER_NORM_EPS = 1e-5  # our LayerNorm's eps


# -- config.json ---------------------------------------------------------------------------------
def config_from_hf(hf: dict, drop_rate: float | None = None) -> GPTConfig:
    """A :class:`GPTConfig` from GPT-2's ``config.json`` (missing fields take GPT2Config's
    defaults).

    Raises :class:`CheckpointFormatError` for a model ours cannot represent. The three dropout
    rates become one ``drop_rate``; if they differ, pass ``drop_rate`` to choose.
    """
    if not isinstance(hf, dict):
        raise CheckpointFormatError(
            f"config.json holds {type(hf).__name__} {str(hf)[:40]!r}, not a "
            f"JSON object of settings: it is not a GPT-2 config."
        )
    _check_config_types(hf, drop_rate)
    _check_config_is_ours(hf)
    drop_rate = _one_drop_rate(hf) if drop_rate is None else drop_rate
    if hf["n_embd"] % hf["n_head"]:
        raise CheckpointFormatError(
            f"config.json has n_embd={hf['n_embd']}, which n_head="
            f"{hf['n_head']} does not divide: every head needs the same width; "
            f"the config is corrupt."
        )
    try:
        return GPTConfig(
            vocab_size=hf["vocab_size"],
            context_length=hf["n_positions"],
            emb_dim=hf["n_embd"],
            n_heads=hf["n_head"],
            n_layers=hf["n_layer"],
            drop_rate=drop_rate,
            qkv_bias=True,
            tie_weights=bool(hf.get("tie_word_embeddings", True)),
        )
    except ValueError as err:
        raise CheckpointFormatError(
            f"config.json does not describe a model ours can build ({err})"
        ) from None


_CONFIG_INTS = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")
_CONFIG_RATES = ("resid_pdrop", "embd_pdrop", "attn_pdrop")


def _check_config_types(hf: dict, drop_rate) -> None:
    """One sentence for a size that is not a positive integer, a rate outside [0, 1) or a
    non-numeric epsilon (JSON allows any value in any field)."""
    for key in _CONFIG_INTS:
        value = hf.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CheckpointFormatError(
                f"config.json has {key}={value!r}, which is not a positive "
                f"integer: the config is corrupt; fix or replace it."
            )
    rates = {k: hf.get(k, 0.1) for k in _CONFIG_RATES} if drop_rate is None else {}
    rates["drop_rate"] = 0.0 if drop_rate is None else drop_rate
    for key, value in rates.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            where = "drop_rate" if key == "drop_rate" else f"config.json has {key}"
            raise CheckpointFormatError(
                f"{where}={value!r} is not a dropout rate in [0, 1): use a number such as 0.1."
            )
    eps = hf.get("layer_norm_epsilon", LAYER_NORM_EPS)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps):
        raise CheckpointFormatError(
            f"config.json has layer_norm_epsilon={eps!r}, which is not a "
            f"number: GPT-2 uses {LAYER_NORM_EPS}."
        )


def _refuse(hf: dict, key: str, ours: str):
    """Raise: config.json's ``key`` asks for something other than ``ours``, all we implement."""
    raise CheckpointFormatError(
        f"config.json has {key}={hf.get(key)!r}, but our GPTModel only "
        f"implements {ours}: this checkpoint is not a model it can hold."
    )


def _check_config_is_ours(hf: dict) -> None:
    """Refuse a config.json that is not GPT-2's architecture as our GPTModel implements it."""
    if hf.get("model_type", "gpt2") != "gpt2":
        _refuse(hf, "model_type", "'gpt2'")
    missing = [
        k for k in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head") if k not in hf
    ]
    if missing:
        raise CheckpointFormatError(f"config.json lacks {missing}: it is not a GPT-2 config.")
    if hf.get("activation_function", "gelu_new") not in TANH_GELUS:
        _refuse(hf, "activation_function", f"GELU's tanh form {TANH_GELUS}")
    if abs(hf.get("layer_norm_epsilon", 1e-5) - LAYER_NORM_EPS) > 1e-12:
        _refuse(hf, "layer_norm_epsilon", f"{LAYER_NORM_EPS}")
    if hf.get("n_inner") not in (None, 4 * hf["n_embd"]):
        _refuse(hf, "n_inner", "a feed-forward width of 4 * n_embd")
    for key, ours in (
        ("scale_attn_weights", True),
        ("scale_attn_by_inverse_layer_idx", False),
        ("add_cross_attention", False),
    ):
        if bool(hf.get(key, ours)) != ours:
            _refuse(hf, key, f"{key}={ours}")


def _one_drop_rate(hf: dict) -> float:
    """The config's one dropout rate; refused if its three rates differ."""
    rates = {hf.get(k, 0.1) for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
    if len(rates) > 1:
        raise CheckpointFormatError(
            f"config.json has different dropout rates {sorted(rates)}; our "
            f"model has one drop_rate: pass drop_rate=... to choose it."
        )
    return rates.pop()


def config_to_hf(cfg: GPTConfig, dtype: torch.dtype = torch.float32) -> dict:
    """GPT-2's ``config.json`` for ``cfg``, as ``GPT2Config`` reads it (``qkv_bias`` has no field:
    see :func:`hf_state_dict`). ``<|endoftext|>`` (50256) is bos/eos only if the vocabulary has
    it."""
    eot = 50256 if cfg.vocab_size > 50256 else None
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.context_length,
        "n_embd": cfg.emb_dim,
        "n_layer": cfg.n_layers,
        "n_head": cfg.n_heads,
        "n_inner": None,
        "activation_function": "gelu_new",
        "resid_pdrop": cfg.drop_rate,
        "embd_pdrop": cfg.drop_rate,
        "attn_pdrop": cfg.drop_rate,
        "layer_norm_epsilon": LAYER_NORM_EPS,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": cfg.tie_weights,
        "bos_token_id": eot,
        "eos_token_id": eot,
        "use_cache": True,
        "dtype": str(dtype).removeprefix("torch."),
    }
