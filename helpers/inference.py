"""Faster inference (Appendix: inference speed): a pre-allocated KV cache, and many prompts at once.

Chapter 8's cache (``KVCache()``) grows by ``torch.cat`` at every step, copying all the keys and
values so far. Both speed-ups here are options of that same cache and the model's one forward:

* :func:`generate_static`: greedy decoding with ``KVCache(max_len=...)``, whose buffers are
  allocated once and filled slot by slot; the same ids as ``helpers.generate.generate``;
* :func:`generate_batched`: greedy decoding of prompts of different lengths in one batch. Prompts
  are padded on the left (:func:`pad_left`); ``KVCache(pad=...)`` hides the padding from every
  query and starts each row's positions at 0 at its first real token, so each row gets the ids it
  would get alone.
"""

from __future__ import annotations

import torch

from helpers.kvcache import KVCache


@torch.no_grad()
def generate_static(
    model, idx: torch.Tensor, max_new_tokens: int
) -> torch.Tensor:
    """Greedy continuation of ``idx  # (B, T)`` by ``max_new_tokens`` ids
    with a pre-allocated cache; ``(B, T + max_new_tokens)``, the same ids as
    ``helpers.generate.generate(model, idx, n)``."""
    model.check_ids(idx)
    total = idx.shape[1] + max_new_tokens
    if total > model.cfg.context_length:
        raise ValueError(
            f"the prompt ({idx.shape[1]} tokens) plus "
            f"max_new_tokens={max_new_tokens} exceed "
            f"context_length={model.cfg.context_length}: the static cache "
            "cannot slide; use helpers.generate.generate for longer texts."
        )
    cache = KVCache(max_len=total)
    out, new = idx, idx
    for _ in range(max_new_tokens):
        # (B, 1)
        next_id = model(new, cache=cache)[:, -1].argmax(dim=-1, keepdim=True)
        out, new = torch.cat([out, next_id], dim=1), next_id
    return out


def pad_left(
    prompts: list[list[int]], pad_id: int, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, pad)``: ``ids (B, P)``, P the longest prompt, each prompt right-aligned after
    ``pad_id``s, and ``pad (B,)`` the number of padding tokens in front of each row."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError(
            "every prompt needs at least one token (and there must be at least one prompt)."
        )
    P = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), P), pad_id, dtype=torch.long, device=device)
    for row, p in enumerate(prompts):
        ids[row, P - len(p) :] = torch.as_tensor(p, dtype=torch.long)
    pad = torch.tensor([P - len(p) for p in prompts], dtype=torch.long, device=device)
    return ids, pad


@torch.no_grad()
def generate_batched(
    model, prompts: list[list[int]], max_new_tokens: int, pad_id: int = 0
) -> list[list[int]]:
    """Greedy continuations of several prompts of different lengths, computed
    as one batch: each returned list is its prompt plus ``max_new_tokens``
    ids, as ``generate`` gives for it alone."""
    device = model.tok_emb.weight.device
    ids, pad = pad_left(prompts, pad_id, device)  # (B, P), (B,)
    model.check_ids(ids)
    P = ids.shape[1]
    if P + max_new_tokens > model.cfg.context_length:
        raise ValueError(
            f"the longest prompt ({P} tokens) plus "
            f"max_new_tokens={max_new_tokens} exceed "
            f"context_length={model.cfg.context_length}: shorten the "
            "prompts or generate fewer tokens."
        )
    cache = KVCache(max_len=P + max_new_tokens, pad=pad)
    new, out = ids, []
    for _ in range(max_new_tokens):
        # (B, 1)
        new = model(new, cache=cache)[:, -1].argmax(dim=-1, keepdim=True)
        out.append(new)
    new_ids = (
        torch.cat(out, dim=1).tolist() if out else [[] for _ in prompts]
    )
    return [list(p) + n for p, n in zip(prompts, new_ids)]
