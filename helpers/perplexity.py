"""How well a model predicts a text: perplexity with a sliding window, built in Chapter 9 (Loading
GPT-2's weights).

A model with a context of ``context`` tokens cannot score a longer text in one pass. The standard
method (Hugging Face's guide "Perplexity of fixed-length models") slides a window of ``context``
tokens along the text, ``stride`` tokens at a time, and in each window scores only the tokens that
no earlier window scored; the rest of the window is context. With ``stride < context`` every token
but the first (which has nothing before it) is scored exactly once, with at least
``context - stride`` tokens before it once the first window is passed. ``stride = context`` gives
non-overlapping windows: fast, but each window's first token has nothing before it and is not
scored, and the others see less context on average.

* :func:`window_plan`: the windows ``(begin, end, first_scored)`` for a text of ``n`` tokens;
* :func:`sliding_window_perplexity`: the summed negative log-likelihood, tokens scored and
  perplexity, as a :class:`Perplexity`;
* :func:`verdict_losses`: the mean training and validation losses on a text split as
  LLMs-from-scratch splits the-verdict (its exercise 5.5 reports 3.755 / 3.560 for GPT-2 small).

One difference from the guide's code: it weights each window's mean loss by the number of labels
minus one, which is right for the first window but, when windows overlap, one too few for every
later one (their first label is already masked); here each scored token counts once, so the result
is the exact mean over the scored tokens.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch


class Perplexity(NamedTuple):
    nll: float  # summed negative log-likelihood of the scored tokens, in nats
    n_tokens: int  # tokens scored: the text's length minus one when stride < context
    n_windows: int  # forward passes
    context: int
    stride: int

    @property
    def loss(self) -> float:
        """Mean negative log-likelihood per scored token (nats): the cross-entropy loss."""
        return self.nll / self.n_tokens

    @property
    def perplexity(self) -> float:
        """``exp(loss)``: as uncertain as a uniform choice among this many tokens."""
        return math.exp(self.loss)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer.")
    return value


def window_plan(n_tokens: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """``(begin, end, first_scored)`` per window: the model reads ``ids[begin:end]`` and the tokens
    ``ids[first_scored:end]`` are scored, each from the logits one position before it."""
    _positive_int("context", context), _positive_int("stride", stride)
    if context < 2:
        raise ValueError(
            f"context={context} must be at least 2: a window needs one token to read and one "
            f"to score."
        )
    if stride > context:
        raise ValueError(
            f"stride={stride} is larger than context={context}: the tokens between two "
            f"windows would never be scored; use a stride of at most {context}."
        )
    if n_tokens < 2:
        raise ValueError(
            f"the text has {n_tokens} token(s): perplexity needs at least 2 (one to read, one "
            f"to score)."
        )
    plan, prev_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + context, n_tokens)
        first = max(prev_end, begin + 1)
        if first < end:  # a last window of one token, with stride = context, has nothing to score
            plan.append((begin, end, first))
        prev_end = end
        if end == n_tokens:
            break
    return plan


@torch.no_grad()
def sliding_window_perplexity(
    model, ids, context: int | None = None, stride: int | None = None
) -> Perplexity:
    """Perplexity of ``model`` on the token ids ``ids`` (a list or a 1-D tensor, or ``(1, n)``).

    ``context`` defaults to the model's ``context_length`` and may not exceed it; ``stride``
    defaults to ``context // 2``. Log-probabilities are computed in float32 and summed in float64.
    The model is used as it is: call ``model.eval()`` first to switch dropout off.
    """
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.dim() != 1:
        raise ValueError(f"ids must be one sequence of token ids, got shape {tuple(ids.shape)}.")
    limit = model.cfg.context_length
    context = limit if context is None else _positive_int("context", context)
    if context > limit:
        raise ValueError(
            f"context={context} is longer than the model's context_length={limit}: use at "
            f"most {limit}."
        )
    stride = max(1, context // 2) if stride is None else stride
    device = next(model.parameters()).device
    plan = window_plan(len(ids), context, stride)
    nll, n_scored = torch.zeros((), dtype=torch.float64), 0
    for begin, end, first in plan:
        window = ids[begin:end].to(device)[None]  # (1, T)
        log_probs = (
            model(window)[0, first - begin - 1 : end - begin - 1].float().log_softmax(dim=-1)
        )  # (n, V)
        targets = window[0, first - begin : end - begin]  # (n,)
        nll -= log_probs.gather(1, targets[:, None]).double().sum().cpu()
        n_scored += len(targets)
    return Perplexity(nll.item(), n_scored, len(plan), context, stride)


@torch.no_grad()
def verdict_losses(
    model,
    text: str,
    tokenizer,
    context_length: int = 256,
    batch_size: int = 2,
    train_ratio: float = 0.9,
) -> tuple[float, float]:
    """``(train_loss, val_loss)`` as LLMs-from-scratch computes them for the-verdict: the first
    ``train_ratio`` of the characters for training, the rest for validation, non-overlapping windows
    of ``context_length`` tokens in batches of ``batch_size``, the training loader dropping an
    incomplete last batch, each loss the mean of the batches' mean cross-entropies. The model is
    used as it is: call ``model.eval()`` first."""
    from helpers.data import create_dataloader
    from helpers.train import calc_loss_loader

    if not 0 < train_ratio < 1:
        raise ValueError(
            f"train_ratio={train_ratio!r} must be between 0 and 1 (0.9: the first 90% for "
            f"training)."
        )
    split = int(train_ratio * len(text))
    loaders = [
        create_dataloader(
            tokenizer.encode(part),
            batch_size,
            context_length,
            stride=context_length,
            shuffle=False,
            drop_last=drop_last,
        )
        for part, drop_last in ((text[:split], True), (text[split:], False))
    ]
    return calc_loss_loader(loaders[0], model), calc_loss_loader(loaders[1], model)
