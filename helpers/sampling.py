"""The logit filters of sampling, built in Chapter 8 (Decoding).

Each filter takes ``(..., V)`` logits and returns the same shape, removed tokens at ``-inf``:
:func:`apply_temperature`, :func:`top_k_filter`, :func:`top_p_filter`, and :func:`filter_logits`
applies them in that order. They keep exactly the tokens that ``transformers``'
``TemperatureLogitsWarper``, ``TopKLogitsWarper`` and ``TopPLogitsWarper`` keep: top-k keeps every
token tied with the k-th largest logit (so possibly more than k); top-p sorts ascending with
``torch.sort`` and drops the tokens whose cumulative probability stays at or below ``1 - p``, so a
tie at the boundary may be split in sort order; both keep at least ``min_tokens_to_keep``.
"""

from __future__ import annotations

import math

import torch

NEG_INF = float("-inf")


# -- the filters ---------------------------------------------------------------------------------
def _check_min_keep(min_tokens_to_keep: int) -> None:
    if (
        isinstance(min_tokens_to_keep, bool)
        or not isinstance(min_tokens_to_keep, int)
        or min_tokens_to_keep < 1
    ):
        raise ValueError(f"min_tokens_to_keep={min_tokens_to_keep!r} must be a positive integer.")


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature``: below 1 sharpens the softmax, above 1 flattens it.
    ``temperature=0`` is the limit: only the largest logit(s) stay, every other token is set to
    ``-inf``."""
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not 0 <= temperature < math.inf
    ):
        raise ValueError(
            f"temperature={temperature!r} must be a finite number, 0 or more: 0 is "
            f"greedy, 1 leaves the distribution as it is, larger values flatten it."
        )
    if temperature == 0:
        return logits.masked_fill(logits < logits.amax(dim=-1, keepdim=True), NEG_INF)
    scaled = logits / temperature
    if torch.isinf(scaled[torch.isfinite(logits)]).any():  # a tiny temperature overflowed
        # the same softmax, shifted so that the largest logit is 0: no overflow, no inf - inf
        scaled = (logits - logits.amax(dim=-1, keepdim=True)) / temperature
    return scaled


def top_k_filter(logits: torch.Tensor, k: int, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Keep the ``max(k, min_tokens_to_keep)`` largest logits and every logit tied with the last of
    them; set the rest to ``-inf``."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(
            f"top_k={k!r} must be a positive integer (the number of tokens to keep); "
            f"use None to switch top-k off (some libraries use 0 for that)."
        )
    _check_min_keep(min_tokens_to_keep)
    k = min(max(k, min_tokens_to_keep), logits.shape[-1])
    kth = torch.topk(logits, k).values[..., -1:]  # (..., 1): the k-th largest logit
    return logits.masked_fill(logits < kth, NEG_INF)


def top_p_filter(logits: torch.Tensor, p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Nucleus filtering: keep the most probable tokens whose probabilities add up to at least
    ``p``.

    Sorted ascending, a token is dropped when the cumulative probability up to and including it is
    at most ``1 - p`` (so the kept ones carry at least ``p``); the ``min_tokens_to_keep`` most
    probable always stay. ``p = 1`` keeps everything."""
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 < p <= 1:
        raise ValueError(
            f"top_p={p!r} must be in (0, 1]: the share of probability to keep "
            f"(1 keeps every token); use None to switch top-p off."
        )
    _check_min_keep(min_tokens_to_keep)
    if p == 1:
        return logits
    sorted_logits, order = torch.sort(logits, descending=False)  # (..., V), least probable first
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)  # (..., V)
    drop_sorted = cumulative <= 1 - p
    drop_sorted[..., -min_tokens_to_keep:] = False  # the most probable ones stay
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, NEG_INF)


def filter_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_tokens_to_keep: int = 1,
) -> torch.Tensor:
    """Temperature, then top-k, then top-p: the order ``transformers`` applies them in."""
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k, min_tokens_to_keep)
    if top_p is not None:
        logits = top_p_filter(logits, top_p, min_tokens_to_keep)
    return logits
