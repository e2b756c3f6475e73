"""Attention weights and head scores, built in Chapter 10 (Seeing inside).

Read in this order:

* :func:`attention_of`: every block's attention weights, stacked ``(L, B, h, T, T)``, from the
  model's own forward pass (``GPTModel.forward(idx, attn_weights=weights)``);
* head scores, each ``(..., B, h, T, T)`` weights in, ``(..., h)`` out, the mean over the batch and
  over the queries ``t >= 1`` (query 0 can only look at itself): :func:`previous_token_score`
  (weight on ``t - 1``), :func:`first_token_score` (on position 0), :func:`self_score` (on ``t``
  itself), :func:`same_token_score` (on earlier positions that hold the same token id, over the
  queries that have one), and :func:`head_scores` for all four; :func:`uniform_attention` is the
  baseline a head that attends evenly would get; :func:`attention_distance` and
  :func:`attention_entropy` summarize how far and how widely a head looks, and
  :func:`key_token_preference` which token ids it seeks out.

``helpers.insight`` holds the other tools of the chapter (bertviz, the logit lens, embeddings).
"""

from __future__ import annotations

import torch

SCORE_NAMES = ("previous", "first", "self", "same")


# -- attention and head scores -------------------------------------------------------------------
@torch.no_grad()
def attention_of(model, idx: torch.Tensor) -> torch.Tensor:
    """``(L, B, h, T, T)``: the attention weights of every block for ``idx  # (B, T)``, as the model
    computes them in the mode it is in (call ``model.eval()`` first)."""
    weights: list[torch.Tensor] = []
    model(idx, attn_weights=weights)
    return torch.stack(weights)


def _check_weights(weights: torch.Tensor) -> None:
    if (
        not isinstance(weights, torch.Tensor)
        or weights.dim() < 4
        or weights.shape[-1] != weights.shape[-2]
    ):
        shape = (
            tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        )
        raise ValueError(
            f"attention weights must be a tensor of shape (..., B, h, T, T), got {shape}: "
            f"stack the per-layer list with attention_of(model, idx) or torch.stack."
        )
    if weights.shape[-1] < 2:
        raise ValueError(
            "the weights cover a single token: scores need T >= 2 (query 0 sees only itself)."
        )


def _mean_over_batch_and_queries(per_query: torch.Tensor) -> torch.Tensor:
    """``(..., B, h, T - 1)`` -> ``(..., h)``."""
    return per_query.mean(dim=-1).mean(dim=-2)


def previous_token_score(weights: torch.Tensor) -> torch.Tensor:
    """Mean weight that query ``t`` puts on key ``t - 1``: ``(..., B, h, T, T)`` -> ``(..., h)``."""
    _check_weights(weights)
    return _mean_over_batch_and_queries(weights.diagonal(offset=-1, dim1=-2, dim2=-1))


def first_token_score(weights: torch.Tensor) -> torch.Tensor:
    """Mean weight that queries ``t >= 1`` put on key 0: ``(..., B, h, T, T)`` -> ``(..., h)``."""
    _check_weights(weights)
    return _mean_over_batch_and_queries(weights[..., 1:, 0])


def self_score(weights: torch.Tensor) -> torch.Tensor:
    """Mean weight that queries ``t >= 1`` put on themselves: ``(..., B, h, T, T)`` ->
    ``(..., h)``."""
    _check_weights(weights)
    return _mean_over_batch_and_queries(weights.diagonal(dim1=-2, dim2=-1)[..., 1:])


def same_token_mask(idx: torch.Tensor) -> torch.Tensor:
    """``(B, T, T)`` bool: True at ``[b, t, s]`` when ``s < t`` and ``idx[b, s] == idx[b, t]``."""
    T = idx.shape[-1]
    earlier = torch.ones(T, T, dtype=torch.bool, device=idx.device).tril(diagonal=-1)
    return (idx[:, :, None] == idx[:, None, :]) & earlier


def same_token_score(weights: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Weight on earlier copies of the query's own token, summed over the copies and averaged over
    the queries that have at least one (and over the batch): ``(..., B, h, T, T)`` and ``idx (B,
    T)`` -> ``(..., h)``. NaN if no token repeats."""
    _check_weights(weights)
    B, T = weights.shape[-4], weights.shape[-1]
    if not isinstance(idx, torch.Tensor) or tuple(idx.shape) != (B, T):
        shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(
            f"idx must be the (B, T) = {(B, T)} token ids the weights were computed from, got "
            f"{shape}."
        )
    mask = same_token_mask(idx)  # (B, T, T)
    has_copy = mask.any(dim=-1).to(weights.dtype)  # (B, T): queries with an earlier copy
    mass = (weights * mask[:, None].to(weights.dtype)).sum(dim=-1)  # (..., B, h, T)
    total = (mass * has_copy[:, None]).sum(dim=(-3, -1))  # (..., h)
    return total / has_copy.sum()


def head_scores(weights: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """All four scores, ``{"previous", "first", "self", "same"}``, each ``(..., h)``."""
    scores = (
        previous_token_score(weights),
        first_token_score(weights),
        self_score(weights),
        same_token_score(weights, idx),
    )
    return dict(zip(SCORE_NAMES, scores))


def key_token_preference(
    weights: torch.Tensor, idx: torch.Tensor, vocab_size: int, min_uniform: float = 5.0
) -> torch.Tensor:
    """``(..., h, V)``: the attention each token id receives as a key (from queries ``t >= 1``),
    divided by what a head attending evenly (:func:`uniform_attention`) would give it at the same
    positions. Above 1 the head seeks that token out. Ids whose even share sums to less than
    ``min_uniform`` (too rare in ``idx`` to judge), and ids that never occur, are NaN."""
    _check_weights(weights)
    B, T = weights.shape[-4], weights.shape[-1]
    if not isinstance(idx, torch.Tensor) or tuple(idx.shape) != (B, T):
        raise ValueError(
            f"idx must be the (B, T) = {(B, T)} token ids the weights were computed from."
        )
    received = (
        weights[..., 1:, :].sum(dim=-2).transpose(-3, -2)
    )  # (..., h, B, T): summed over queries
    received = received.reshape(*received.shape[:-2], B * T)
    index = idx.reshape(-1).expand_as(received)
    by_token = torch.zeros(
        *received.shape[:-1], vocab_size, dtype=weights.dtype, device=weights.device
    )
    by_token.scatter_add_(-1, index, received)  # (..., h, V)
    even = uniform_attention(T).to(weights)[1:].sum(dim=0).expand(B, T).reshape(-1)  # (B * T,)
    even_by_token = torch.zeros(
        vocab_size, dtype=weights.dtype, device=weights.device
    ).scatter_add_(0, idx.reshape(-1), even)
    ratio = by_token / even_by_token.clamp_min(1e-12)
    return ratio.masked_fill((even_by_token < min_uniform) | (even_by_token == 0), float("nan"))


def uniform_attention(num_tokens: int) -> torch.Tensor:
    """``(T, T)``: the weights of a head that spreads each query evenly over keys ``0 .. t``."""
    if num_tokens < 1:
        raise ValueError(f"num_tokens={num_tokens} must be at least 1.")
    keep = torch.ones(num_tokens, num_tokens).tril()
    return keep / keep.sum(dim=-1, keepdim=True)


def attention_distance(weights: torch.Tensor) -> torch.Tensor:
    """Mean distance ``t - s`` from query ``t`` to the keys ``s`` it attends to, weighted by the
    attention, over queries and batch: ``(..., B, h, T, T)`` -> ``(..., h)``."""
    _check_weights(weights)
    T = weights.shape[-1]
    pos = torch.arange(T, device=weights.device, dtype=weights.dtype)
    distance = (pos[:, None] - pos[None, :]).clamp(min=0)  # (T, T)
    return _mean_over_batch_and_queries((weights * distance).sum(dim=-1)[..., 1:])


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of the queries' attention rows: 0 when a head looks at one key,
    ``log(t + 1)`` when it spreads evenly. ``(..., B, h, T, T)`` -> ``(..., h)``."""
    _check_weights(weights)
    plogp = torch.where(
        weights > 0, weights * weights.clamp_min(1e-30).log(), torch.zeros_like(weights)
    )
    return _mean_over_batch_and_queries(-plogp.sum(dim=-1)[..., 1:])
