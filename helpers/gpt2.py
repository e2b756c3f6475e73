"""OpenAI's GPT-2 weights in and out of our model, built in Chapter 8 (Loading GPT-2's weights).

The weights live on the Hugging Face hub (:data:`HUB_MODELS`) as ``config.json`` plus one
``model.safetensors``, the format of ``transformers.GPT2LMHeadModel``. Only safetensors are read: a
``.bin`` file is a pickle, which can run code when it is loaded.

* :func:`config_from_hf` / :func:`config_to_hf`: GPT-2's ``config.json`` <-> :class:`GPTConfig`;
* :func:`weight_mapping`: one :class:`WeightRow` per hub tensor; loader, exporter and Chapter 8's
  table all read it;
* :func:`load_hf_state_dict` (strict), :func:`resolve_checkpoint`, :func:`read_hf_checkpoint` and
  :func:`load_hf_checkpoint`: a hub name (``"gpt2"``, ``"openai-community/gpt2-xl"``) or a path in;
* :func:`hf_state_dict`, :func:`save_hf_checkpoint`: ours out, loadable by ``from_pretrained``.

Decisions. Names are read with or without the ``transformer.`` prefix (``save_pretrained`` writes
it, the hub's GPT-2 files lack it). Older files hold each block's causal mask ``h.i.attn.bias``
(and ``h.i.attn.masked_bias``): buffers, not weights, skipped, as our attention builds its own.
``lm_head.weight`` may be absent when tied to ``wte``; if present it must equal it. GPT-2's format
always has query/key/value biases: ``qkv_bias=False`` is saved as zero biases (the same function)
and loads zero biases only. Errors derive from :class:`CheckpointError`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from helpers.model import GPTConfig, GPTModel, predicted_parameters
from helpers.offline import sha256_file


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
_PICKLE = "a pickle, which can run any code when it is loaded"


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


# -- the mapping ---------------------------------------------------------------------------------
COPY, TRANSPOSE, TIED = "copy", "transpose", "tied to wte"
SPLIT, SPLIT_T = "split in 3", "split in 3 along dim 1, transpose each"
ZEROS = "zeros (our model has no qkv biases)"


class WeightRow(NamedTuple):
    hub_name: str
    hub_shape: tuple[int, ...]
    our_names: tuple[str, ...]
    our_shape: tuple[int, ...]  # of each of our_names
    transform: str


def weight_mapping(cfg: GPTConfig) -> list[WeightRow]:
    """One row per tensor of GPT-2's checkpoint, in the hub's order. GPT-2 stores its linear layers
    as ``Conv1D`` with weight ``(in, out)`` (``x @ W``); ``nn.Linear`` holds ``(out, in)``, hence
    the transposes; ``c_attn`` is query, key and value side by side, ``(C, 3C)``."""
    C, V, T, H = cfg.emb_dim, cfg.vocab_size, cfg.context_length, 4 * cfg.emb_dim
    rows = [
        WeightRow("wte.weight", (V, C), ("tok_emb.weight",), (V, C), COPY),
        WeightRow("wpe.weight", (T, C), ("pos_emb.weight",), (T, C), COPY),
    ]
    for i in range(cfg.n_layers):
        h, b = f"h.{i}.", f"trf_blocks.{i}."
        qkv = [f"{b}att.W_{n}" for n in ("query", "key", "value")]
        bias = (tuple(f"{n}.bias" for n in qkv), (C,), SPLIT) if cfg.qkv_bias else ((), (), ZEROS)
        rows += [
            WeightRow(h + "ln_1.weight", (C,), (b + "norm1.weight",), (C,), COPY),
            WeightRow(h + "ln_1.bias", (C,), (b + "norm1.bias",), (C,), COPY),
            WeightRow(
                h + "attn.c_attn.weight",
                (C, 3 * C),
                tuple(f"{n}.weight" for n in qkv),
                (C, C),
                SPLIT_T,
            ),
            WeightRow(h + "attn.c_attn.bias", (3 * C,), *bias),
            WeightRow(
                h + "attn.c_proj.weight", (C, C), (b + "att.out_proj.weight",), (C, C), TRANSPOSE
            ),
            WeightRow(h + "attn.c_proj.bias", (C,), (b + "att.out_proj.bias",), (C,), COPY),
            WeightRow(h + "ln_2.weight", (C,), (b + "norm2.weight",), (C,), COPY),
            WeightRow(h + "ln_2.bias", (C,), (b + "norm2.bias",), (C,), COPY),
            WeightRow(h + "mlp.c_fc.weight", (C, H), (b + "ff.fc.weight",), (H, C), TRANSPOSE),
            WeightRow(h + "mlp.c_fc.bias", (H,), (b + "ff.fc.bias",), (H,), COPY),
            WeightRow(h + "mlp.c_proj.weight", (H, C), (b + "ff.proj.weight",), (C, H), TRANSPOSE),
            WeightRow(h + "mlp.c_proj.bias", (C,), (b + "ff.proj.bias",), (C,), COPY),
        ]
    rows += [
        WeightRow("ln_f.weight", (C,), ("final_norm.weight",), (C,), COPY),
        WeightRow("ln_f.bias", (C,), ("final_norm.bias",), (C,), COPY),
        WeightRow(
            "lm_head.weight",
            (V, C),
            ("out_head.weight",),
            (V, C),
            TIED if cfg.tie_weights else COPY,
        ),
    ]
    return rows


# Each transform, hub tensor -> our tensors and back (Conv1D is (in, out), nn.Linear (out, in)).
_TO_OURS = {
    COPY: lambda t: [t],
    TRANSPOSE: lambda t: [t.T],
    SPLIT: lambda t: list(t.chunk(3)),
    SPLIT_T: lambda t: [w.T for w in t.chunk(3, dim=1)],
}  # (C, 3C) -> 3 x (C, C)
_TO_HUB = {
    COPY: lambda ts: ts[0],
    TRANSPOSE: lambda ts: ts[0].T,
    SPLIT: torch.cat,
    SPLIT_T: lambda ts: torch.cat([w.T for w in ts], dim=1),
}  # 3 x (C, C) -> (C, 3C)


# -- loading -------------------------------------------------------------------------------------
def _checked_state_dict(model: GPTModel) -> dict[str, torch.Tensor]:
    """``model.state_dict()``, after checking that it is what ``weight_mapping(model.cfg)``
    expects."""
    ours, rows = model.state_dict(), weight_mapping(model.cfg)
    if {n for r in rows for n in r.our_names} != set(ours) or any(
        tuple(ours[n].shape) != r.our_shape for r in rows for n in r.our_names
    ):
        raise ValueError(
            "the model's parameters do not match weight_mapping(model.cfg): is it a GPTModel?"
        )
    if (
        model.cfg.tie_weights
        and ours["out_head.weight"].data_ptr() != ours["tok_emb.weight"].data_ptr()
    ):
        raise ValueError(
            "model.cfg.tie_weights is True but out_head.weight is no longer tok_emb.weight: "
            "tie them again (model.out_head.weight = model.tok_emb.weight) or set "
            "tie_weights=False."
        )
    return ours


def load_hf_state_dict(model: GPTModel, hf_tensors: dict[str, torch.Tensor]) -> GPTModel:
    """Copy GPT-2's tensors (names with or without ``transformer.``) into ``model``, strictly.

    A missing, unexpected or wrong-shaped tensor raises :class:`CheckpointFormatError` naming it,
    before anything is copied, so the model is unchanged. Skipped: the mask buffers
    ``h.i.attn.bias`` / ``h.i.attn.masked_bias``. Returns the model.
    """
    ours = _checked_state_dict(model)
    plan = _load_plan(model.cfg, hf_tensors)
    with torch.no_grad():
        for name, t in plan:
            ours[name].copy_(t)  # state_dict() tensors share storage with the parameters
    return model


def _load_plan(
    cfg: GPTConfig, hf_tensors: dict[str, torch.Tensor]
) -> list[tuple[str, torch.Tensor]]:
    """``(our name, tensor)`` pairs to copy, after every check; allocates nothing, so it can check a
    checkpoint against its config before the model is built."""
    if cfg.n_layers > len(hf_tensors):
        raise CheckpointFormatError(
            f"the config asks for n_layers={cfg.n_layers} but the "
            "checkpoint "
            f"holds only {len(hf_tensors)} tensors: the config does not "
            "fit "
            f"the weights; use the config.json saved with them."
        )
    rows = weight_mapping(cfg)
    tensors = {}
    for name, t in hf_tensors.items():
        short = name.removeprefix("transformer.")
        if short in tensors:
            raise CheckpointFormatError(
                f"the checkpoint holds {short!r} twice (with and without 'transformer.')."
            )
        tensors[short] = t
    buffers = {f"h.{i}.attn.{b}" for i in range(cfg.n_layers) for b in ("bias", "masked_bias")}
    expected = {r.hub_name: r for r in rows}
    unexpected = sorted(set(tensors) - set(expected) - buffers)
    missing = [r.hub_name for r in rows if r.hub_name not in tensors and r.transform != TIED]
    for names, what in (
        (missing, "lacks the tensor"),
        (unexpected, "has a tensor this model has no place for:"),
    ):
        if names:
            more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
            raise CheckpointFormatError(
                f"the checkpoint {what} {names[0]!r}{more}: it does not fit this "
                f"model (n_layers={cfg.n_layers}, tie_weights={cfg.tie_weights}); "
                f"build the model from the checkpoint's config.json. Nothing was loaded."
            )
    plan = []
    for name, row in expected.items():
        if name not in tensors:
            continue
        t = tensors[name]
        if tuple(t.shape) != row.hub_shape:
            raise CheckpointFormatError(
                f"tensor {name!r} has shape {tuple(t.shape)} in the checkpoint, but this "
                f"model needs {row.hub_shape}: the checkpoint is for another model size; "
                f"build the model from its config.json. Nothing was loaded."
            )
        if row.transform == ZEROS and t.count_nonzero():
            raise CheckpointFormatError(
                f"tensor {name!r} holds non-zero query/key/value biases, which this model "
                f"(qkv_bias=False) has no place for; build it with qkv_bias=True."
            )
        if row.transform == TIED and not torch.equal(t, tensors["wte.weight"]):
            raise CheckpointFormatError(
                f"tensor {name!r} differs from 'wte.weight' but this model ties them "
                f"(tie_weights=True): build it with tie_weights=False. Nothing was loaded."
            )
        if row.transform not in (ZEROS, TIED):
            plan += zip(row.our_names, _TO_OURS[row.transform](t))
    return plan


def resolve_checkpoint(
    path_or_name: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    timeout: float = 10.0,
    verify: bool = True,
    deadline: float | None = None,
) -> tuple[Path, Path]:
    """``(config.json, model.safetensors)`` for a local directory (or .safetensors file), or for a
    hub name from :data:`HUB_MODELS`, downloaded through ``huggingface_hub`` into its cache
    (resumed if interrupted). An existing path wins over a hub name. A cached copy is used without
    asking the network; otherwise one quick request (``timeout`` seconds, no retries) checks the
    hub first. ``verify`` re-hashes a cached weights file against the hub's id for it (the cache's
    blob name: a sha256, or git's sha1 for small files); a file it cannot check is refused
    (``verify=False`` skips the check). A download runs in a child process that is stopped after
    ``deadline`` seconds (default: 60 s plus 1 s per MB), so no server can hold it longer; the
    cache resumes it later."""
    path = Path(path_or_name).expanduser()
    if not path.exists() and str(path_or_name) in _HUB_NAMES:
        repo = _HUB_NAMES[str(path_or_name)].repo_id
        cap = 2 * _HUB_NAMES[str(path_or_name)].param_bytes + (1 << 20)
        offline = local_files_only
        config = _hub_file(repo, "config.json", cache_dir, offline, timeout, deadline, 1 << 20)
        weights = _hub_file(repo, "model.safetensors", cache_dir, offline, timeout, deadline, cap)
        if verify:
            _verify_blob(repo, weights)
        return config, weights
    known = ", ".join(HUB_MODELS)
    if not path.exists():
        if (
            any(c in str(path_or_name) for c in "/\\")
            or path.suffix
            or str(path_or_name).startswith(".")
        ):
            raise CheckpointNotFoundError(
                f"no file or directory at {path}: give a directory with config.json "
                f"and model.safetensors, or a hub model ({known})."
            )
        raise UnknownModelError(
            f"unknown model {str(path_or_name)!r}: use one of {known}, or the path of a "
            f"directory with config.json and model.safetensors."
        )
    if path.is_file() and path.suffix != ".safetensors":
        what = (
            _PICKLE if path.suffix in (".bin", ".pt", ".pth", ".ckpt") else "not a safetensors file"
        )
        raise CheckpointFormatError(f"{path} is {what}; this book reads model.safetensors only.")
    directory, weights = (
        (path, path / "model.safetensors") if path.is_dir() else (path.parent, path)
    )
    if not weights.exists():
        pickles = sorted(p.name for p in directory.glob("*.bin"))
        raise (
            CheckpointFormatError(
                f"{directory} has no model.safetensors, only {pickles[0]}, {_PICKLE}; "
                f"this book reads model.safetensors only."
            )
            if pickles
            else CheckpointNotFoundError(f"{directory} has no model.safetensors.")
        )
    if not (directory / "config.json").exists():
        raise CheckpointNotFoundError(
            f"{directory} has no config.json: a checkpoint directory holds config.json "
            f"and model.safetensors (as save_hf_checkpoint writes them)."
        )
    return directory / "config.json", weights


def _git_blob_sha1(path: Path) -> str:
    """git's id of a file (the hub's etag for a file kept outside LFS)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify_blob(repo: str, weights: Path) -> None:
    blob = Path(os.path.realpath(weights))
    if re.fullmatch(r"[0-9a-f]{64}", blob.name):
        actual, what = sha256_file(blob), "sha256"
    elif re.fullmatch(r"[0-9a-f]{40}", blob.name):
        actual, what = _git_blob_sha1(blob), "git sha1"
    else:
        raise CheckpointFormatError(
            f"the cached model.safetensors of {repo} ({blob}) is not "
            "named by "
            "its hash, so it could not be verified: delete it and run "
            "again "
            f"to download it afresh, or pass verify=False to trust it."
        )
    if actual != blob.name:
        raise CheckpointFormatError(
            f"the cached model.safetensors of {repo} is corrupt (its "
            f"{what} is "
            f"not {blob.name[:12]}...): delete {blob} and run again to "
            f"download it afresh."
        )


class CacheWriteError(CheckpointError, OSError):
    """The download could not be written into the cache (a full disk, no permission)."""


_CHILD = """import json, sys
try:
    from huggingface_hub import hf_hub_download
    repo, filename, cache_dir, timeout = sys.argv[1:5]
    print(json.dumps({"path": hf_hub_download(repo, filename, cache_dir=cache_dir or None,
                                              etag_timeout=float(timeout))}))
except BaseException as err:
    status = getattr(getattr(err, "response", None), "status_code", None)
    print(json.dumps({"type": type(err).__name__, "errno": getattr(err, "errno", None),
                      "status": status, "message": str(err)[:500]}))
    sys.exit(1)
"""


def _hub_error(repo: str, filename: str, kind: str, errno_: int | None, status, message: str):
    """The right sentence for a failed hub request: missing file, full disk, or no network."""
    if errno_ in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
        return CacheWriteError(
            f"could not write {filename} of {repo} into the Hugging Face cache "
            f"({os.strerror(errno_)}): free some space, or point HF_HOME at a "
            f"writable disk with room."
        )
    if status == 404 or kind in (
        "EntryNotFoundError",
        "RepositoryNotFoundError",
        "RevisionNotFoundError",
        "RemoteEntryNotFoundError",
    ):
        return CheckpointNotFoundError(
            f"the hub answered that {repo} has no {filename} ({kind}, "
            f"HTTP {status}): check the model name, or pass a local "
            f"checkpoint directory."
        )
    return HubUnreachableError(
        f"could not download {filename} of {repo} ({kind}: {message}) and "
        f"there is no cached copy: connect to the network, or pass a local "
        f"checkpoint directory."
    )


def _relay(stream) -> None:
    """Copy a child's stderr (a progress bar: text with carriage returns) to ``sys.stderr``."""
    for chunk in iter(lambda: stream.read1(4096), b""):
        sys.stderr.write(chunk.decode("utf-8", "replace"))
        sys.stderr.flush()


def _wait(proc: subprocess.Popen, deadline: float) -> str:
    """The child's stdout once it exits; ``TimeoutExpired`` after ``deadline`` seconds."""
    proc.wait(timeout=deadline)
    return proc.stdout.read().decode("utf-8", "replace")


def _hub_file(
    repo: str,
    filename: str,
    cache_dir,
    local_files_only: bool,
    timeout: float,
    deadline: float | None = None,
    max_bytes: int | None = None,
) -> Path:
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:  # the cache first: no network at all when the file is there
        return Path(hf_hub_download(repo, filename, cache_dir=cache_dir, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    if local_files_only or constants.HF_HUB_OFFLINE:
        why = "local_files_only=True" if local_files_only else "HF_HUB_OFFLINE=1"
        raise HubUnreachableError(
            f"{repo} ({filename}) is not in the Hugging Face cache and downloads are off "
            f"({why}): run once with a network, or pass a local checkpoint directory."
        )
    try:  # one request without retries, so that no network fails in `timeout` seconds, not minutes
        meta = get_hf_file_metadata(hf_hub_url(repo, filename), timeout=timeout)
    except Exception as err:  # connection refused, DNS, timeouts, hub errors
        status = getattr(getattr(err, "response", None), "status_code", None)
        raise _hub_error(
            repo, filename, type(err).__name__, getattr(err, "errno", None), status, str(err)
        ) from err
    size = meta.size or 0
    if max_bytes is not None and size > max_bytes:
        raise CheckpointFormatError(
            f"the hub announces {size:,} bytes for {filename} of {repo}, "
            f"more than the {max_bytes:,} such a file can hold: refused."
        )
    deadline = 60.0 + size / 1e6 if deadline is None else deadline
    # huggingface_hub retries a cut download without limit while bytes keep coming, and each
    # stalled read waits its own timeout: a child process bounds the whole download in time
    seconds = str(max(1, math.ceil(timeout)))  # huggingface_hub reads whole seconds
    env = {
        **os.environ,
        "HF_ENDPOINT": constants.ENDPOINT,
        "HF_HUB_DOWNLOAD_TIMEOUT": seconds,
        "HF_HUB_ETAG_TIMEOUT": seconds,
        "TQDM_POSITION": "-1",
    }  # -1: a bar even without a TTY
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, repo, filename, str(cache_dir or ""), str(timeout)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    # The child's progress bar, passed on to this process's stderr: in a notebook the child's own
    # stderr would reach the kernel's terminal, not the page.
    relay = threading.Thread(target=_relay, args=(proc.stderr,), daemon=True)
    relay.start()
    try:
        stdout = _wait(proc, deadline)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise HubUnreachableError(
            f"could not download {filename} of {repo} within "
            f"deadline={deadline:g} "
            "s (the server is too slow or keeps cutting the file): try "
            "again "
            f"later (the cache resumes it), or pass a local checkpoint "
            f"directory."
        ) from None
    relay.join(timeout=5)
    try:
        answer = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        answer = {"type": "ChildError", "message": "the download process ended without an answer"}
    if "path" in answer:
        return Path(answer["path"])
    raise _hub_error(
        repo,
        filename,
        answer.get("type"),
        answer.get("errno"),
        answer.get("status"),
        answer.get("message", ""),
    )


def read_hf_checkpoint(path_or_name, **resolve_kwargs) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(config.json as a dict, {hub name: tensor})`` of a checkpoint (see
    :func:`resolve_checkpoint`)."""
    config_path, weights = resolve_checkpoint(path_or_name, **resolve_kwargs)
    try:
        hf_config = json.loads(config_path.read_text(encoding="utf-8"))
        with safe_open(weights, framework="pt") as f:
            return hf_config, {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointFormatError(
            f"{weights.parent} holds a corrupt or truncated checkpoint ({err}): "
            f"download or save it again."
        ) from None
    except OSError as err:  # a directory where a file should be, permissions, a disk error
        raise CheckpointFormatError(
            f"cannot read the checkpoint in {weights.parent} "
            f"({type(err).__name__}: {err.strerror or err}: "
            f"{err.filename or weights}): config.json and "
            "model.safetensors "
            f"must be readable files."
        ) from None


def load_hf_checkpoint(
    path_or_name,
    *,
    cache_dir=None,
    local_files_only: bool = False,
    timeout: float = 10.0,
    verify: bool = True,
    drop_rate: float | None = None,
    deadline: float | None = None,
) -> GPTModel:
    """A :class:`GPTModel` holding a GPT-2 checkpoint (a hub name or a directory), in eval mode."""
    hf_config, tensors = read_hf_checkpoint(
        path_or_name,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        timeout=timeout,
        verify=verify,
        deadline=deadline,
    )
    cfg = config_from_hf(hf_config, drop_rate)
    _load_plan(cfg, tensors)  # the config must fit the tensors before the model is allocated
    with torch.random.fork_rng(devices=[]):  # the random initial weights are overwritten: leave
        model = GPTModel(cfg)  # the caller's random state as it was
    return load_hf_state_dict(model, tensors).eval()


# -- saving --------------------------------------------------------------------------------------
def hf_state_dict(model: GPTModel, prefix: str = "transformer.") -> dict[str, torch.Tensor]:
    """Our weights under GPT-2's names, as ``save_pretrained`` writes them: ``prefix`` on the base
    model's tensors, and ``lm_head.weight`` only when the head is not tied. CPU, contiguous."""
    ours = _checked_state_dict(model)
    out = {}
    for row in weight_mapping(model.cfg):
        if row.transform == TIED:
            continue
        if row.transform == ZEROS:  # GPT-2's format has qkv biases: zeros compute the same function
            t = torch.zeros(row.hub_shape, dtype=ours["tok_emb.weight"].dtype)
        else:
            t = _TO_HUB[row.transform]([ours[n].detach() for n in row.our_names])
        out[row.hub_name if row.hub_name == "lm_head.weight" else prefix + row.hub_name] = (
            t.cpu().contiguous()
        )
    return out


def save_hf_checkpoint(model: GPTModel, directory: str | os.PathLike) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``directory`` (created if needed),
    loadable by ``GPT2LMHeadModel.from_pretrained(directory)`` and :func:`load_hf_checkpoint`.
    Each file is written under a fresh temporary name (unique, created exclusively: two writers
    never share one) and renamed when complete, so a failure leaves no partial file."""
    directory = Path(directory)
    tensors = hf_state_dict(model)
    config = config_to_hf(model.cfg, dtype=tensors["transformer.wte.weight"].dtype)
    parts = {}
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("model.safetensors", "config.json"):
            fd, part = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
            os.close(fd)
            parts[Path(part)] = directory / name
        weights_part, config_part = parts
        save_file(tensors, weights_part, metadata={"format": "pt"})
        config_part.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        for part, final in parts.items():
            os.replace(part, final)
    except OSError as err:
        raise OSError(
            err.errno,
            f"could not save the checkpoint into {directory} "
            f"({err.strerror or err}): free some space or choose another folder; "
            f"no partial file was left.",
        ) from None
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
    return directory
