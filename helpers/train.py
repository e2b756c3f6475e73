"""Pretraining: the loss, the training loop, the learning-rate schedule and checkpoints (Chapter 6).

* :func:`calc_loss_batch` and :func:`calc_loss_loader`: mean next-token cross-entropy of a batch, and
  over (the first ``num_batches`` batches of) a loader;
* :func:`warmup_cosine`: a learning rate that rises linearly for ``warmup_steps`` and then follows a
  half cosine down to ``min_lr``;
* :func:`train`: AdamW-style training with periodic evaluation, tokens seen, a greedy sample per
  epoch, optional schedule and gradient clipping, a tqdm bar; returns a :class:`History`;
* :func:`save_checkpoint` / :func:`load_checkpoint`: model, optimizer, random-number state and
  history in one safetensors file (tensors) with JSON metadata, loaded strictly: every name and
  shape is checked before anything is copied, so a mismatched file leaves the model untouched.

Resuming from a checkpoint saved at the end of an epoch gives the same losses as a run that was
never interrupted, because the file also holds the global torch RNG (dropout) and the training
loader's shuffling generator. The Hugging Face format (for ``transformers``) is ``helpers.gpt2``'s.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

FORMAT = "gpt2-from-scratch/train-checkpoint/1"  # stored in the metadata; read back to recognize a file


def calc_loss_batch(inputs: torch.Tensor, targets: torch.Tensor, model, ignore_index: int = -100) -> torch.Tensor:
    """Mean cross-entropy of ``model``'s next-token logits against ``targets``, both ``(B, T)``;
    positions whose target is ``ignore_index`` (padding) are left out of the mean."""
    device = next(model.parameters()).device
    logits = model(inputs.to(device))  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), targets.to(device).flatten(), ignore_index=ignore_index)


def _check_loader(loader, name: str, model=None) -> None:
    if len(loader) == 0:
        ds, bs = loader.dataset, loader.batch_size
        raise ValueError(f"the {name} loader yields no batches: its dataset has {len(ds)} windows, fewer than "
                         f"batch_size={bs}, and drop_last=True drops the incomplete batch; use a smaller "
                         f"batch_size, drop_last=False, or more text.")
    limit = getattr(getattr(model, "cfg", None), "context_length", None)
    length = getattr(loader.dataset, "context_length", None)
    if limit is not None and length is not None and length > limit:
        raise ValueError(f"the {name} loader makes windows of context_length={length} tokens, but the model "
                         f"accepts at most {limit}: build the loader with context_length <= {limit}.")


@torch.no_grad()
def calc_loss_loader(loader, model, num_batches: int | None = None, ignore_index: int = -100) -> float:
    """Mean of :func:`calc_loss_batch` over the first ``num_batches`` batches (all when None).

    The model is used in the mode it is in: call ``model.eval()`` first to switch dropout off."""
    _check_loader(loader, "evaluation", model)
    n = len(loader) if num_batches is None else min(num_batches, len(loader))
    total = 0.0
    for i, (inputs, targets) in enumerate(loader):
        if i == n:
            break
        total += calc_loss_batch(inputs, targets, model, ignore_index).item()
    return total / n


def evaluate(model, train_loader, val_loader, eval_iters: int | None = None, ignore_index: int = -100):
    """``(train_loss, val_loss)`` in eval mode (no dropout); the model's mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        return (calc_loss_loader(train_loader, model, eval_iters, ignore_index),
                calc_loss_loader(val_loader, model, eval_iters, ignore_index))
    finally:
        model.train(was_training)


def warmup_cosine(peak_lr: float, total_steps: int, warmup_steps: int = 0,
                  min_lr: float = 0.0) -> Callable[[int], float]:
    """The learning rate of step ``s`` (0-based): ``peak_lr * (s + 1) / warmup_steps`` while
    ``s < warmup_steps``, then ``min_lr + (peak_lr - min_lr) * (1 + cos(pi * p)) / 2`` with ``p`` going
    from 0 to 1 over the remaining steps. With ``warmup_steps=0`` and ``min_lr=peak_lr`` it is constant."""
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps={warmup_steps} must be in [0, total_steps={total_steps}).")
    if not 0 <= min_lr <= peak_lr:
        raise ValueError(f"min_lr={min_lr} must be between 0 and peak_lr={peak_lr}.")

    def lr_at(step: int) -> float:
        if step < warmup_steps:
            return peak_lr * (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps - 1))
        return min_lr + 0.5 * (peak_lr - min_lr) * (1.0 + math.cos(math.pi * progress))

    return lr_at


@dataclass
class History:
    """What a run measured. ``steps[i]``, ``epochs[i]`` (the epoch it fell in, 0 before training),
    ``tokens_seen[i]``, ``train_loss[i]``, ``val_loss[i]`` are one evaluation; ``lr`` and ``grad_norm``
    have one entry per optimizer step (the norm before any clipping); ``samples`` one greedy
    continuation per epoch. ``epoch``, ``step`` and ``tokens`` count what is done, so that
    :func:`train` can continue from here."""

    steps: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    tokens_seen: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    grad_norm: list = field(default_factory=list)
    samples: list = field(default_factory=list)
    epoch: int = 0
    step: int = 0
    tokens: int = 0
    tokens_per_epoch: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "History":
        data = json.loads(text)
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def lines(self, digits: int = 3) -> list[str]:
        """The run as text: one line per evaluation, each epoch's sample after that epoch's last one."""
        out, shown = [], 0
        for i, (s, e, tok, tr, va) in enumerate(zip(self.steps, self.epochs, self.tokens_seen,
                                                    self.train_loss, self.val_loss)):
            out.append(f"ep {e:2d}, step {s:4d}, tokens {tok:7,d}: train {tr:.{digits}f}, val {va:.{digits}f}")
            last_of_epoch = i + 1 == len(self.steps) or self.epochs[i + 1] != e
            if last_of_epoch and 1 <= e <= len(self.samples):
                out += [f"    sample: {t}" for t in self.samples[shown:e]]
                shown = e
        out += [f"    sample: {t}" for t in self.samples[shown:]]
        return [line.replace("\n", " ") for line in out]


def _sample(model, tokenizer, start_context: str, max_new_tokens: int) -> str:
    from helpers.model import generate_greedy

    device = next(model.parameters()).device
    ids = torch.tensor([tokenizer.encode(start_context)], device=device)
    was_training = model.training
    model.eval()
    try:
        out = generate_greedy(model, ids[:, -model.cfg.context_length:], max_new_tokens)
    finally:
        model.train(was_training)
    return tokenizer.decode(out[0].tolist())


def train(model, train_loader, val_loader, optimizer, num_epochs: int, *, eval_every: int = 5,
          eval_iters: int | None = 5, tokenizer=None, start_context: str | None = None, sample_tokens: int = 50,
          lr_schedule: Callable[[int], float] | None = None, grad_clip: float | None = None,
          ignore_index: int = -100, history: History | None = None,
          on_epoch_end: Callable[[History], None] | None = None, progress: bool = True) -> History:
    """Train ``model`` until ``num_epochs`` epochs are done and return the :class:`History`.

    Each step: forward, mean cross-entropy, backward, optional clipping of the gradient norm to
    ``grad_clip``, the learning rate ``lr_schedule(step)`` if given, ``optimizer.step()``. Before the
    first step and after every ``eval_every`` steps, the train and validation losses over
    ``eval_iters`` batches are recorded (in eval mode). After each epoch, if ``tokenizer`` and
    ``start_context`` are given, a greedy continuation of ``sample_tokens`` tokens is recorded, then
    ``on_epoch_end(history)`` is called. Pass a ``history`` (from :func:`load_checkpoint`) to continue
    a run from where it stopped. ``progress`` shows a tqdm bar on stderr.
    """
    from tqdm import tqdm

    if eval_every < 1:
        raise ValueError(f"eval_every={eval_every} must be at least 1 (steps between evaluations).")
    if grad_clip is not None and grad_clip <= 0:
        raise ValueError(f"grad_clip={grad_clip} must be positive (the largest gradient norm), or None.")
    _check_loader(train_loader, "training", model)
    _check_loader(val_loader, "validation", model)
    h = History() if history is None else history
    if h.epoch >= num_epochs:
        raise ValueError(f"the history already has {h.epoch} epochs: pass num_epochs > {h.epoch} to train further.")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    model.train()
    bar = tqdm(total=num_epochs * len(train_loader), initial=h.step, disable=not progress, unit="step",
               dynamic_ncols=True)
    try:
        if h.step == 0 and not h.steps:  # the untrained model, at zero tokens
            tr, va = evaluate(model, train_loader, val_loader, eval_iters, ignore_index)
            h.steps.append(0), h.epochs.append(0), h.tokens_seen.append(0)
            h.train_loss.append(tr), h.val_loss.append(va)
        while h.epoch < num_epochs:
            for inputs, targets in train_loader:
                if lr_schedule is not None:
                    for group in optimizer.param_groups:
                        group["lr"] = lr_schedule(h.step)
                optimizer.zero_grad(set_to_none=True)
                loss = calc_loss_batch(inputs, targets, model, ignore_index)
                if not torch.isfinite(loss):
                    raise ValueError(f"the loss became {loss.item()} at step {h.step}: training diverged; "
                                     f"lower the learning rate or set grad_clip (e.g. 1.0).")
                loss.backward()
                grads = [p.grad for p in params if p.grad is not None]
                norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
                if grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, grad_clip)
                optimizer.step()
                h.lr.append(optimizer.param_groups[0]["lr"])
                h.grad_norm.append(norm.item())
                h.step += 1
                h.tokens += inputs.numel()
                bar.update(1)
                if h.step % eval_every == 0:
                    tr, va = evaluate(model, train_loader, val_loader, eval_iters, ignore_index)
                    h.steps.append(h.step), h.epochs.append(h.epoch + 1), h.tokens_seen.append(h.tokens)
                    h.train_loss.append(tr), h.val_loss.append(va)
                    bar.set_postfix(train=f"{tr:.3f}", val=f"{va:.3f}")
            h.epoch += 1
            h.tokens_per_epoch = h.tokens // h.epoch
            if tokenizer is not None and start_context is not None:
                h.samples.append(_sample(model, tokenizer, start_context, sample_tokens))
            if on_epoch_end is not None:
                on_epoch_end(h)
    finally:
        bar.close()
    return h


@dataclass(frozen=True)
class PretrainSettings:
    """One pretraining run on a text: the model's shape, the data and AdamW's settings (Chapter 6).
    ``embedding_std=None`` keeps GPT-2's N(0, 0.02) embeddings; 1.0 is PyTorch's ``nn.Embedding``
    default, which LLMs-from-scratch's model keeps. ``eval_every`` counts optimizer steps."""

    emb_dim: int
    n_layers: int
    n_heads: int
    context_length: int = 256
    drop_rate: float = 0.1
    qkv_bias: bool = False
    tie_weights: bool = False
    embedding_std: float | None = None
    batch_size: int = 2
    lr: float = 4e-4
    weight_decay: float = 0.1
    num_epochs: int = 10
    eval_every: int = 5
    eval_iters: int = 5
    train_ratio: float = 0.9
    loader_seed: int = 123


BOOK_SMALL = PretrainSettings(emb_dim=64, n_layers=1, n_heads=4, batch_size=1, lr=3e-3, num_epochs=15, eval_every=18)
FULL_124M = PretrainSettings(emb_dim=768, n_layers=12, n_heads=12, embedding_std=1.0)  # LLMs-from-scratch's run


def setup_pretraining(text: str, tokenizer, settings: PretrainSettings, device="cpu"):
    """``(model, optimizer, train_loader, val_loader)`` for ``settings``: the first ``train_ratio`` of
    the characters of ``text`` for training, the rest for validation, windows of ``context_length``
    tokens with stride ``context_length``, GPT-2's vocabulary. The model's weights come from the
    global RNG: call ``torch.manual_seed`` first for a repeatable run."""
    from helpers.data import create_dataloader
    from helpers.model import GPTConfig, GPTModel

    s, split = settings, int(settings.train_ratio * len(text))
    cfg = GPTConfig.from_preset("gpt2-small", emb_dim=s.emb_dim, n_layers=s.n_layers, n_heads=s.n_heads,
                                context_length=s.context_length, drop_rate=s.drop_rate, qkv_bias=s.qkv_bias,
                                tie_weights=s.tie_weights, vocab_size=tokenizer.n_vocab)
    model = GPTModel(cfg)
    if s.embedding_std is not None:
        for emb in (model.tok_emb, model.pos_emb):
            torch.nn.init.normal_(emb.weight, 0.0, s.embedding_std)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    T = s.context_length
    train_loader = create_dataloader(tokenizer.encode(text[:split]), s.batch_size, T, stride=T, shuffle=True,
                                     drop_last=True, seed=s.loader_seed)
    val_loader = create_dataloader(tokenizer.encode(text[split:]), s.batch_size, T, stride=T, shuffle=False,
                                   drop_last=False)
    return model, optimizer, train_loader, val_loader


def _train_step(model, inputs: torch.Tensor, targets: torch.Tensor, logits_of: Callable) -> Callable[[], None]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step():
        logits = logits_of(model(inputs))  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if inputs.is_cuda:
            torch.cuda.synchronize()

    return step


def throughput_comparison(cfg, batch_size: int, repeat: int = 5, seed: int = 0) -> dict[str, float]:
    """Chapter 6's benchmark: training tokens per second (forward, cross-entropy, backward, AdamW
    step) of our ``GPTModel(cfg)`` and of ``transformers.GPT2LMHeadModel`` built from the same
    configuration (``helpers.gpt2.config_to_hf``), on one random ``(batch_size, context_length)``
    batch. After a warm-up step each, the two models take turns for ``repeat`` rounds (so a busy
    machine slows both alike); medians. Returns tokens/s of each and ``ratio = ours / transformers``
    (above 1: ours is faster). Use ``qkv_bias=True``: GPT-2's format always has those biases."""
    import statistics
    import time

    from transformers import GPT2Config, GPT2LMHeadModel

    from helpers.gpt2 import config_to_hf
    from helpers.model import GPTModel, count_parameters

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, cfg.vocab_size, (batch_size, cfg.context_length + 1), generator=g, device="cpu")
    ids = ids.to(torch.empty(0).device)  # the default device: set it with `with torch.device("cuda"):`
    ours, theirs = GPTModel(cfg), GPT2LMHeadModel(GPT2Config(**config_to_hf(cfg)))
    if count_parameters(ours) != count_parameters(theirs):
        raise ValueError("the two models differ in size: build the config with qkv_bias=True.")
    steps = {"ours": _train_step(ours, ids[:, :-1], ids[:, 1:], lambda out: out),
             "transformers": _train_step(theirs, ids[:, :-1], ids[:, 1:], lambda out: out.logits)}
    times = {name: [] for name in steps}
    for name, step in steps.items():
        step()  # warm-up
    for _ in range(repeat):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    result = {f"{name}_tokens_per_s": ids[:, 1:].numel() / statistics.median(t) for name, t in times.items()}
    result["ratio"] = result["ours_tokens_per_s"] / result["transformers_tokens_per_s"]
    return result


# -- checkpoints ---------------------------------------------------------------------------------
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


def save_checkpoint(path, model, optimizer=None, history: History | None = None, train_loader=None) -> Path:
    """Write model, optimizer state, RNG state and ``history`` to one safetensors file at ``path``.

    Tensors: ``model.<name>`` (tied weights once), ``optimizer.<i>.<key>`` for parameter ``i``'s
    state (AdamW: ``step``, ``exp_avg``, ``exp_avg_sq``), ``rng.torch`` and, with ``train_loader``,
    ``rng.loader`` (its shuffling generator). Metadata (JSON strings): the format, the model config,
    the optimizer's hyper-parameters and the history. Written to ``path.part``, then renamed."""
    from safetensors.torch import save_file

    path = Path(path)
    model_state, aliases = _unique_state(model)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model_state.items()}
    meta = {"format": FORMAT, "aliases": json.dumps(aliases)}
    cfg = getattr(model, "cfg", None)
    if cfg is not None:
        meta["config"] = json.dumps(asdict(cfg))
    if optimizer is not None:
        state = optimizer.state_dict()
        for i, per_param in state["state"].items():
            for key, value in per_param.items():
                if not isinstance(value, torch.Tensor):
                    value = torch.tensor(value)
                tensors[f"optimizer.{i}.{key}"] = value.detach().cpu().contiguous()
        groups = [{k: v for k, v in g.items() if k != "params"} | {"n_params": len(g["params"])}
                  for g in state["param_groups"]]
        try:
            meta["optimizer"] = json.dumps({"class": type(optimizer).__name__, "param_groups": groups})
        except TypeError as err:
            raise ValueError(f"the optimizer's settings cannot be written as JSON ({err}): use plain "
                             f"numbers for lr, betas and weight_decay.") from None
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    generator = getattr(train_loader, "generator", None)
    if generator is not None:
        tensors["rng.loader"] = generator.get_state()
    if history is not None:
        meta["history"] = history.to_json()
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    try:
        save_file(tensors, part, metadata=meta)
        part.replace(path)
    finally:
        part.unlink(missing_ok=True)
    return path


def _read(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors import safe_open

    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: save one with save_checkpoint(path, model, ...).")
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own SafetensorError, or OSError
        raise ValueError(f"{path} is not a readable safetensors file ({err}): it is truncated or corrupt; "
                         f"save the checkpoint again.") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is a safetensors file but not a training checkpoint of this book (no "
                         f"format {FORMAT!r} in its metadata); a Hugging Face model directory loads with "
                         f"helpers.gpt2.load_hf_checkpoint.")
    return meta, tensors


def load_checkpoint(path, model, optimizer=None, train_loader=None, restore_rng: bool = True) -> History | None:
    """Load a :func:`save_checkpoint` file into ``model`` (and ``optimizer``), strictly.

    Every tensor name, shape and dtype is checked against the model and optimizer before anything
    is copied: a missing, unexpected or mismatched tensor raises one ``ValueError`` naming it, and
    the model is left as it was. A truncated or corrupt file raises ``ValueError`` too. With
    ``restore_rng`` the global torch RNG and ``train_loader``'s generator are set to their saved
    state, so that training continues exactly. Returns the saved :class:`History` (or None)."""
    path = Path(path)
    meta, tensors = _read(path)
    saved_cfg, cfg = json.loads(meta.get("config", "null")), getattr(model, "cfg", None)
    note = ""
    if saved_cfg is not None and cfg is not None and saved_cfg != asdict(cfg):
        note = " (the checkpoint's config differs: " + ", ".join(
            f"{k}={v!r} there, {getattr(cfg, k, None)!r} here" for k, v in saved_cfg.items()
            if getattr(cfg, k, None) != v) + ")"

    def mismatch(what: str) -> ValueError:
        return ValueError(f"{path} does not fit this model: {what}{note}. Nothing was loaded.")

    expected, aliases = _unique_state(model)
    saved = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    for name in list(expected) + [n for n in saved if n not in expected]:
        if name not in saved:
            raise mismatch(f"the file has no tensor {name!r}")
        if name not in expected:
            raise mismatch(f"the file's tensor {name!r} has no place in the model")
        if saved[name].shape != expected[name].shape or saved[name].dtype != expected[name].dtype:
            raise mismatch(f"tensor {name!r} is {tuple(saved[name].shape)} {saved[name].dtype} in the file "
                           f"but {tuple(expected[name].shape)} {expected[name].dtype} in the model")
    opt_state = None
    if optimizer is not None:
        if "optimizer" not in meta:
            raise ValueError(f"{path} holds no optimizer state: load it without an optimizer.")
        info, current = json.loads(meta["optimizer"]), optimizer.state_dict()["param_groups"]
        sizes, ours = [g["n_params"] for g in info["param_groups"]], [len(c["params"]) for c in current]
        if info["class"] != type(optimizer).__name__ or sizes != ours:
            raise ValueError(f"{path} holds the state of a {info['class']} over parameter groups of sizes {sizes}, "
                             f"but the optimizer is a {type(optimizer).__name__} over {ours}. Nothing was loaded.")
        params = [p for g in optimizer.param_groups for p in g["params"]]
        state: dict[int, dict] = {}
        for key, t in tensors.items():
            if key.startswith("optimizer."):
                _, i, name = key.split(".", 2)
                if int(i) >= len(params) or (t.dim() > 0 and t.shape != params[int(i)].shape):
                    raise mismatch(f"optimizer state {key!r} ({tuple(t.shape)}) does not fit parameter {i}")
                state.setdefault(int(i), {})[name] = t
        groups = [{k: (tuple(v) if isinstance(v, list) else v) for k, v in g.items() if k != "n_params"}
                  | {"params": c["params"]} for g, c in zip(info["param_groups"], current)]
        opt_state = {"state": state, "param_groups": groups}
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
    return History.from_json(meta["history"]) if "history" in meta else None


def default_cache_dir() -> Path:
    """Where :func:`book_model` keeps trained models: ``~/.cache/gpt2-from-scratch``."""
    return Path.home() / ".cache" / "gpt2-from-scratch"


def _shown(path: Path) -> str:
    """``path`` with the home directory written as ``~`` (for messages that end up in notebooks)."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def book_model(text: str, tokenizer, settings: PretrainSettings = BOOK_SMALL, *, seed: int = 123,
               cache_dir: str | Path | None = None, device="cpu", start_context: str = "Every effort moves you",
               log: Callable[[str], None] = print):
    """The book's trained model, in one call: ``(model, history)``, the model in ``eval()`` mode.

    Seeds torch with ``seed``, builds everything with :func:`setup_pretraining` and trains for
    ``settings.num_epochs`` epochs, with a greedy sample of ``start_context`` after each: the same run
    as Chapter 6's training cell, loss for loss. The
    result is cached in ``cache_dir`` (default :func:`default_cache_dir`) under a name derived from
    everything that determines it (the settings, the seed, the text's sha256, the tokenizer, the
    torch version and the number of CPU threads, which changes the order of floating-point sums); a later call with the same inputs loads it instead of training again, and
    leaves the global torch RNG in the state that training would have left, so that what follows is
    the same either way. ``cache_dir=False`` disables the cache. ``log`` receives one line saying
    what happened and what it cost."""
    import hashlib
    import time

    key_src = json.dumps({"format": FORMAT, "settings": asdict(settings), "seed": seed, "device": str(device),
                          "start_context": start_context,
                          "text": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                          "tokenizer": getattr(tokenizer, "name", type(tokenizer).__name__),
                          "n_vocab": tokenizer.n_vocab, "torch": torch.__version__,
                          "threads": torch.get_num_threads()}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    path = None if cache_dir is False else Path(cache_dir or default_cache_dir()) / f"book-model-{key}.safetensors"
    torch.manual_seed(seed)
    model, optimizer, train_loader, val_loader = setup_pretraining(text, tokenizer, settings, device)
    if path is not None and path.exists():
        try:
            history = load_checkpoint(path, model, train_loader=train_loader)
        except ValueError as err:  # a damaged cache entry: say so, train again, overwrite it
            log(f"ignoring the cached model ({err})")
        else:
            log(f"loaded the trained model from the cache, {_shown(path)} (delete the file to train again)")
            return model.eval(), history
    start = time.perf_counter()
    history = train(model, train_loader, val_loader, optimizer, settings.num_epochs, eval_every=settings.eval_every,
                    eval_iters=settings.eval_iters, tokenizer=tokenizer, start_context=start_context, progress=False)
    seconds = time.perf_counter() - start
    where = ""
    if path is not None:
        save_checkpoint(path, model, history=history, train_loader=train_loader)
        where = f"; cached in {_shown(path)} for later calls"
    log(f"trained {history.step} steps ({history.tokens:,} tokens) in {seconds:.0f} s{where}")
    return model.eval(), history
