"""Pretraining: the loss, the training loop and the learning-rate schedule (Chapters 6 and 7).

* :func:`calc_loss_batch` and :func:`calc_loss_loader`: mean next-token cross-entropy of a batch,
  and over (the first ``num_batches`` batches of) a loader;
* :func:`warmup_cosine`: a learning rate that rises linearly for ``warmup_steps`` and then follows a
  half cosine down to ``min_lr``;
* :func:`train`: AdamW-style training with periodic evaluation, tokens seen, a greedy sample per
  epoch, optional schedule and gradient clipping, a tqdm bar; returns a :class:`History`;

Checkpoints are ``helpers.checkpoint``'s; the book's settings and its cached trained model are
``helpers.pretrain``'s.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Callable

import torch
import torch.nn.functional as F


def calc_loss_batch(
    inputs: torch.Tensor, targets: torch.Tensor, model, ignore_index: int = -100
) -> torch.Tensor:
    """Mean cross-entropy of ``model``'s next-token logits against ``targets``, both ``(B, T)``;
    positions whose target is ``ignore_index`` (padding) are left out of the mean."""
    device = next(model.parameters()).device
    logits = model(inputs.to(device))  # (B, T, V)
    return F.cross_entropy(
        logits.flatten(0, 1), targets.to(device).flatten(), ignore_index=ignore_index
    )


def _check_loader(loader, name: str, model=None) -> None:
    if len(loader) == 0:
        ds, bs = loader.dataset, loader.batch_size
        raise ValueError(
            f"the {name} loader yields no batches: its dataset has {len(ds)} windows, fewer than "
            f"batch_size={bs}, and drop_last=True drops the incomplete batch; use a smaller "
            f"batch_size, drop_last=False, or more text."
        )
    limit = getattr(getattr(model, "cfg", None), "context_length", None)
    length = getattr(loader.dataset, "context_length", None)
    if limit is not None and length is not None and length > limit:
        raise ValueError(
            f"the {name} loader makes windows of context_length={length} tokens, but the model "
            f"accepts at most {limit}: build the loader with context_length <= {limit}."
        )


@torch.no_grad()
def calc_loss_loader(
    loader, model, num_batches: int | None = None, ignore_index: int = -100
) -> float:
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


def evaluate(
    model, train_loader, val_loader, eval_iters: int | None = None, ignore_index: int = -100
):
    """``(train_loss, val_loss)`` in eval mode (no dropout); the model's mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        return (
            calc_loss_loader(train_loader, model, eval_iters, ignore_index),
            calc_loss_loader(val_loader, model, eval_iters, ignore_index),
        )
    finally:
        model.train(was_training)


@torch.no_grad()
def next_token_accuracy(model, loader) -> float:
    """How often the model's most probable next token is the true one, over every position of
    every batch of ``loader`` (Chapter 6). Measured in eval mode; the model's mode is restored."""
    _check_loader(loader, "evaluation", model)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    hits = total = 0
    try:
        for inputs, targets in loader:
            predicted = model(inputs.to(device)).argmax(dim=-1)  # (B, T)
            hits += (predicted == targets.to(device)).sum().item()
            total += targets.numel()
    finally:
        model.train(was_training)
    return hits / total


def warmup_cosine(
    peak_lr: float, total_steps: int, warmup_steps: int = 0, min_lr: float = 0.0
) -> Callable[[int], float]:
    """The learning rate of step ``s`` (0-based): ``peak_lr * (s + 1) / warmup_steps`` while
    ``s < warmup_steps``, then ``min_lr + (peak_lr - min_lr) * (1 + cos(pi * p)) / 2`` with ``p``
    going
    from 0 to 1 over the remaining steps. With ``warmup_steps=0`` and ``min_lr=peak_lr`` it is
    constant."""
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
    ``tokens_seen[i]``, ``train_loss[i]``, ``val_loss[i]`` are one evaluation; ``lr`` and
    ``grad_norm`` have one entry per optimizer step (the norm before any clipping); ``samples`` one
    greedy continuation per epoch. ``epoch``, ``step`` and ``tokens`` count what is done, so that
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
        """The run as text: one line per evaluation, each epoch's sample after its last one."""
        out, shown = [], 0
        for i, (s, e, tok, tr, va) in enumerate(
            zip(self.steps, self.epochs, self.tokens_seen, self.train_loss, self.val_loss)
        ):
            out.append(
                f"ep {e:2d}, step {s:4d}, tokens {tok:7,d}: train {tr:.{digits}f}, val "
                f"{va:.{digits}f}"
            )
            last_of_epoch = i + 1 == len(self.steps) or self.epochs[i + 1] != e
            if last_of_epoch and 1 <= e <= len(self.samples):
                out += [f"    sample: {t}" for t in self.samples[shown:e]]
                shown = e
        out += [f"    sample: {t}" for t in self.samples[shown:]]
        return [line.replace("\n", " ") for line in out]


def _sample(model, tokenizer, start_context: str, max_new_tokens: int) -> str:
    """The greedy continuation ``helpers.model.generate_greedy`` gives (the same ids), computed
    with Chapter 7's KV cache: each new token costs one position, not the whole text again."""
    from helpers.generate import generate

    device = next(model.parameters()).device
    ids = torch.tensor([tokenizer.encode(start_context)], device=device)
    was_training = model.training
    model.eval()
    try:
        out = generate(model, ids[:, -model.cfg.context_length :], max_new_tokens)
    finally:
        model.train(was_training)
    return tokenizer.decode(out[0].tolist())


def train(
    model,
    train_loader,
    val_loader,
    optimizer,
    num_epochs: int,
    *,
    eval_every: int = 5,
    eval_iters: int | None = 5,
    tokenizer=None,
    start_context: str | None = None,
    sample_tokens: int = 50,
    lr_schedule: Callable[[int], float] | None = None,
    grad_clip: float | None = None,
    ignore_index: int = -100,
    history: History | None = None,
    on_epoch_end: Callable[[History], None] | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` until ``num_epochs`` epochs are done and return the :class:`History`.

    Each step: forward, mean cross-entropy, backward, optional clipping of the gradient norm to
    ``grad_clip``, the learning rate ``lr_schedule(step)`` if given, ``optimizer.step()``. Before
    the first step and after every ``eval_every`` steps, the train and validation losses over
    ``eval_iters`` batches are recorded (in eval mode). After each epoch, if ``tokenizer`` and
    ``start_context`` are given, a greedy continuation of ``sample_tokens`` tokens is recorded, then
    ``on_epoch_end(history)`` is called. Pass a ``history`` (from
    ``helpers.checkpoint.load_checkpoint``) to continue
    a run from where it stopped. ``progress`` shows a tqdm bar on stderr.
    """
    from tqdm import tqdm

    h = History() if history is None else history
    _check_train_arguments(model, train_loader, val_loader, num_epochs, eval_every, grad_clip, h)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    model.train()
    total = num_epochs * len(train_loader)
    bar = tqdm(total=total, initial=h.step, disable=not progress, unit="step", dynamic_ncols=True)

    def record(epoch: int) -> None:  # the train and validation losses, now
        tr, va = evaluate(model, train_loader, val_loader, eval_iters, ignore_index)
        h.steps.append(h.step), h.epochs.append(epoch), h.tokens_seen.append(h.tokens)
        h.train_loss.append(tr), h.val_loss.append(va)
        bar.set_postfix(train=f"{tr:.3f}", val=f"{va:.3f}")

    try:
        if h.step == 0 and not h.steps:  # the untrained model, at zero tokens
            record(0)
        while h.epoch < num_epochs:
            for inputs, targets in train_loader:
                lr = None if lr_schedule is None else lr_schedule(h.step)
                norm = _step(
                    model, optimizer, params, inputs, targets, lr, grad_clip, ignore_index, h.step
                )
                h.lr.append(optimizer.param_groups[0]["lr"])
                h.grad_norm.append(norm)
                h.step += 1
                h.tokens += inputs.numel()
                bar.update(1)
                if h.step % eval_every == 0:
                    record(h.epoch + 1)
            h.epoch += 1
            h.tokens_per_epoch = h.tokens // h.epoch
            if tokenizer is not None and start_context is not None:
                h.samples.append(_sample(model, tokenizer, start_context, sample_tokens))
            if on_epoch_end is not None:
                on_epoch_end(h)
    finally:
        bar.close()
    return h


def _check_train_arguments(
    model, train_loader, val_loader, num_epochs, eval_every, grad_clip, h: History
) -> None:
    if eval_every < 1:
        raise ValueError(f"eval_every={eval_every} must be at least 1 (steps between evaluations).")
    if grad_clip is not None and grad_clip <= 0:
        raise ValueError(
            f"grad_clip={grad_clip} must be positive (the largest gradient norm), or None."
        )
    _check_loader(train_loader, "training", model)
    _check_loader(val_loader, "validation", model)
    if h.epoch >= num_epochs:
        raise ValueError(
            f"the history already has {h.epoch} epochs: pass num_epochs > {h.epoch} to train "
            "further."
        )


def _step(model, optimizer, params, inputs, targets, lr, grad_clip, ignore_index, step) -> float:
    """One optimizer step (at learning rate ``lr`` unless None); the gradient norm before
    clipping."""
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    loss = calc_loss_batch(inputs, targets, model, ignore_index)
    if not torch.isfinite(loss):
        raise ValueError(
            f"the loss became {loss.item()} at step {step}: training diverged; "
            f"lower the learning rate or set grad_clip (e.g. 1.0)."
        )
    loss.backward()
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    return norm.item()
