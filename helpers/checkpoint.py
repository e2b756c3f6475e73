"""Training checkpoints, built in Chapter 7 (Training well): save a run, resume it exactly.

* :func:`save_checkpoint`: model, optimizer state, random-number state and the run's
  :class:`helpers.train.History` in one safetensors file (tensors) with JSON metadata, and a
  sha256 digest of all of it; written to ``path.part`` and renamed, so never half-written;
* :func:`load_checkpoint`: reads the whole file, checks the digest, every tensor name, shape and
  dtype, the random-number states and the history, and only then copies anything, so a file that
  does not fit (or was damaged) raises one ``ValueError`` and leaves the model untouched.

Resuming from a checkpoint saved at the end of an epoch gives the same losses as a run that was
never interrupted, because the file also holds the torch RNG (dropout) and the training loader's
shuffling generator. The Hugging Face format (for ``transformers``) is ``helpers.gpt2``'s.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch

from helpers.train import History

FORMAT = (
    "gpt2-from-scratch/train-checkpoint/2"  # stored in the metadata; read back to recognize a file
)
DIGEST_KEY = "sha256"  # the metadata entry that holds the digest of everything else


def _unique_state(model) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The state dict without repeats: tied tensors (one storage, two names) are kept once, and the
    second name is recorded as an alias of the first."""
    seen, tensors, aliases = {}, {}, {}
    for name, t in model.state_dict().items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key], tensors[name] = name, t
    return tensors, aliases


def digest(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> str:
    """sha256 of every tensor (name, dtype, shape, bytes) and of every metadata entry but itself."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    h.update(
        json.dumps({k: v for k, v in meta.items() if k != DIGEST_KEY}, sort_keys=True).encode()
    )
    return h.hexdigest()


def _optimizer_entries(optimizer, tensors: dict, meta: dict) -> None:
    state = optimizer.state_dict()
    for i, per_param in state["state"].items():
        for key, value in per_param.items():
            if not isinstance(value, torch.Tensor):
                value = torch.tensor(value)
            tensors[f"optimizer.{i}.{key}"] = value.detach().cpu().contiguous()
    groups = [
        {k: v for k, v in g.items() if k != "params"} | {"n_params": len(g["params"])}
        for g in state["param_groups"]
    ]
    try:
        meta["optimizer"] = json.dumps({"class": type(optimizer).__name__, "param_groups": groups})
    except TypeError as err:
        raise ValueError(
            f"the optimizer's settings cannot be written as JSON ({err}): use plain "
            f"numbers for lr, betas and weight_decay."
        ) from None


def save_checkpoint(
    path,
    model,
    optimizer=None,
    history: History | None = None,
    train_loader=None,
    extra: dict[str, str] | None = None,
) -> Path:
    """Write model, optimizer state, RNG state and ``history`` to one safetensors file at ``path``.

    Tensors: ``model.<name>`` (tied weights once), ``optimizer.<i>.<key>`` for parameter ``i``'s
    state (AdamW: ``step``, ``exp_avg``, ``exp_avg_sq``), ``rng.torch`` and, with ``train_loader``,
    ``rng.loader`` (its shuffling generator). Metadata (JSON strings): the format, the model config,
    the optimizer's hyper-parameters, the history, ``extra`` and the sha256 :func:`digest` of all
    the rest. Written to ``path.part``, then renamed."""
    from safetensors.torch import save_file

    path = Path(path)
    model_state, aliases = _unique_state(model)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model_state.items()}
    meta = {"format": FORMAT, "aliases": json.dumps(aliases), **(extra or {})}
    cfg = getattr(model, "cfg", None)
    if cfg is not None:
        meta["config"] = json.dumps(asdict(cfg))
    if optimizer is not None:
        _optimizer_entries(optimizer, tensors, meta)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    generator = getattr(train_loader, "generator", None)
    if generator is not None:
        tensors["rng.loader"] = generator.get_state()
    if history is not None:
        meta["history"] = history.to_json()
    meta[DIGEST_KEY] = digest(tensors, meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    try:
        save_file(tensors, part, metadata=meta)
        part.replace(path)
    finally:
        part.unlink(missing_ok=True)
    return path


def read_checkpoint(path) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(metadata, tensors)`` of a :func:`save_checkpoint` file whose digest matches its contents;
    anything else raises one ``FileNotFoundError`` or ``ValueError``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}: save one with save_checkpoint(path, model, ...)."
        )
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own SafetensorError, or OSError
        raise ValueError(
            f"{path} is not a readable safetensors file ({err}): it is truncated or "
            f"corrupt; save the checkpoint again."
        ) from None
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"{path} is a safetensors file but not a training checkpoint of this book "
            f"(no format {FORMAT!r} in its metadata; older versions wrote no digest); a "
            f"Hugging Face model directory loads with helpers.gpt2.load_hf_checkpoint."
        )
    if meta.get(DIGEST_KEY) != digest(tensors, meta):
        raise ValueError(
            f"{path} does not match the sha256 digest stored in it: the file was changed "
            f"or damaged after it was written; save the checkpoint again. Nothing was "
            f"loaded."
        )
    return meta, tensors


def _optimizer_state(optimizer, meta, tensors, path, mismatch) -> dict:
    if "optimizer" not in meta:
        raise ValueError(f"{path} holds no optimizer state: load it without an optimizer.")
    info, current = json.loads(meta["optimizer"]), optimizer.state_dict()["param_groups"]
    sizes = [g["n_params"] for g in info["param_groups"]]
    ours = [len(c["params"]) for c in current]
    if info["class"] != type(optimizer).__name__ or sizes != ours:
        raise ValueError(
            f"{path} holds the state of a {info['class']} over parameter groups of sizes "
            f"{sizes}, but the optimizer is a {type(optimizer).__name__} over {ours}. "
            f"Nothing was loaded."
        )
    params = [p for g in optimizer.param_groups for p in g["params"]]
    state: dict[int, dict] = {}
    for key, t in tensors.items():
        if key.startswith("optimizer."):
            _, i, name = key.split(".", 2)
            if int(i) >= len(params) or (t.dim() > 0 and t.shape != params[int(i)].shape):
                raise mismatch(
                    f"optimizer state {key!r} ({tuple(t.shape)}) does not fit parameter {i}"
                )
            state.setdefault(int(i), {})[name] = t
    groups = [
        {k: (tuple(v) if isinstance(v, list) else v) for k, v in g.items() if k != "n_params"}
        | {"params": c["params"]}
        for g, c in zip(info["param_groups"], current)
    ]
    return {"state": state, "param_groups": groups}


def _check_model_tensors(saved: dict, expected: dict, mismatch) -> None:
    for name in list(expected) + [n for n in saved if n not in expected]:
        if name not in saved:
            raise mismatch(f"the file has no tensor {name!r}")
        if name not in expected:
            raise mismatch(f"the file's tensor {name!r} has no place in the model")
        if saved[name].shape != expected[name].shape or saved[name].dtype != expected[name].dtype:
            raise mismatch(
                f"tensor {name!r} is {tuple(saved[name].shape)} {saved[name].dtype} in the "
                f"file but {tuple(expected[name].shape)} {expected[name].dtype} in the model"
            )


def _check_rng(tensors: dict, train_loader, path) -> None:
    """Raise a ValueError unless every RNG state that loading would restore is present and valid."""
    wanted = ["rng.torch"]
    if getattr(train_loader, "generator", None) is not None and "rng.loader" in tensors:
        wanted.append("rng.loader")
    for key in wanted:
        if key not in tensors:
            raise ValueError(
                f"{path} has no {key!r} random-number state: load it with "
                f"restore_rng=False. Nothing was loaded."
            )
        try:
            torch.Generator().set_state(tensors[key])  # a scratch generator: only checks the state
        except (RuntimeError, TypeError) as err:
            raise ValueError(
                f"{path} holds an invalid {key!r} random-number state ({err}): load it "
                f"with restore_rng=False. Nothing was loaded."
            ) from None


def _history(meta: dict, path) -> History | None:
    if "history" not in meta:
        return None
    try:
        return History.from_json(meta["history"])
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{path} holds a history that is not valid JSON of a History ({err}): load "
            f"the weights with a fresh History instead. Nothing was loaded."
        ) from None


def load_checkpoint(
    path, model, optimizer=None, train_loader=None, restore_rng: bool = True
) -> History | None:
    """Load a :func:`save_checkpoint` file into ``model`` (and ``optimizer``), strictly.

    Everything is read and checked before anything is copied: the digest, every tensor name, shape
    and dtype against the model and optimizer, the random-number states (with ``restore_rng``) and
    the history. Anything wrong raises one ``ValueError`` naming it, and the model is left as it
    was. With ``restore_rng`` the torch RNG and ``train_loader``'s generator are set to their saved
    state, so that training continues exactly. Returns the saved :class:`History` (or None)."""
    path = Path(path)
    meta, tensors = read_checkpoint(path)
    saved_cfg, cfg = json.loads(meta.get("config", "null")), getattr(model, "cfg", None)
    note = ""
    if saved_cfg is not None and cfg is not None and saved_cfg != asdict(cfg):
        note = (
            " (the checkpoint's config differs: "
            + ", ".join(
                f"{k}={v!r} there, {getattr(cfg, k, None)!r} here"
                for k, v in saved_cfg.items()
                if getattr(cfg, k, None) != v
            )
            + ")"
        )

    def mismatch(what: str) -> ValueError:
        return ValueError(f"{path} does not fit this model: {what}{note}. Nothing was loaded.")

    expected, aliases = _unique_state(model)
    saved = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    _check_model_tensors(saved, expected, mismatch)
    opt_state = (
        None if optimizer is None else _optimizer_state(optimizer, meta, tensors, path, mismatch)
    )
    if restore_rng:
        _check_rng(tensors, train_loader, path)
    history = _history(meta, path)
    # Everything checked: now copy.
    with torch.no_grad():
        model.load_state_dict(saved | {a: saved[b] for a, b in aliases.items()}, strict=True)
    if opt_state is not None:
        optimizer.load_state_dict(opt_state)
    if restore_rng:
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and torch.cuda.is_available():
            torch.cuda.set_rng_state(tensors["rng.cuda"])
        generator = getattr(train_loader, "generator", None)
        if generator is not None and "rng.loader" in tensors:
            generator.set_state(tensors["rng.loader"])
    return history
