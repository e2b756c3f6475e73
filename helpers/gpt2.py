"""OpenAI's GPT-2 weights in and out of our model, built in Chapter 9 (Loading GPT-2's weights).

The weights live on the Hugging Face hub (:data:`HUB_MODELS`) as ``config.json`` plus one
``model.safetensors``, the format of ``transformers.GPT2LMHeadModel``. Only safetensors are read: a
``.bin`` file is a pickle, which can run code when it is loaded.

* :func:`weight_mapping`: one :class:`WeightRow` per hub tensor; loader, exporter and Chapter 9's
  table all read it;
* :func:`load_hf_state_dict` (strict) and :func:`load_hf_checkpoint`: a hub name (``"gpt2"``,
  ``"openai-community/gpt2-xl"``) or a path in, read by ``helpers.hub.read_hf_checkpoint``;
* :func:`hf_state_dict`, :func:`save_hf_checkpoint`: ours out, loadable by ``from_pretrained``.

Decisions. Names are read with or without the ``transformer.`` prefix (``save_pretrained`` writes
it, the hub's GPT-2 files lack it). Older files hold each block's causal mask ``h.i.attn.bias``
(and ``h.i.attn.masked_bias``): buffers, not weights, skipped, as our attention builds its own.
``lm_head.weight`` may be absent when tied to ``wte``; if present it must equal it. GPT-2's format
always has query/key/value biases: ``qkv_bias=False`` is saved as zero biases (the same function)
and loads zero biases only. Errors derive from :class:`CheckpointError`. GPT-2's ``config.json``
is ``helpers.gpt2_config``'s, finding and downloading checkpoints ``helpers.hub``'s.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors.torch import save_file

from helpers.gpt2_config import CheckpointFormatError, config_from_hf, config_to_hf
from helpers.hub import read_hf_checkpoint
from helpers.model import GPTConfig, GPTModel

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
