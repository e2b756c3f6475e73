"""Faster inference (Appendix: inference speed): a pre-allocated KV cache, and many prompts at once.

Chapter 7's cache (``GPTModel(idx, cache=..., use_cache=True)``) grows by ``torch.cat`` at every
step, copying all the keys and values so far. Here:

* :class:`StaticKVCache` allocates ``(n_layers, B, h, max_len, d_h)`` keys and values once; each step
  writes its new keys and values into the next slots;
* :func:`forward_static` is ``GPTModel.forward`` (eval mode) on that cache, built from the model's own
  modules, with an optional ``key_mask`` (which cached positions are real tokens, not padding) and
  per-row ``positions``;
* :func:`generate_static`: greedy decoding with it, the same ids as ``helpers.generate.generate``;
* :func:`generate_batched`: greedy decoding of prompts of different lengths in one batch. Prompts are
  padded on the left; the mask hides the padding from every query and each row's positions start
  at 0 at its first real token, so each row gets the ids it would get alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class StaticKVCache:
    """Keys and values for ``batch_size`` rows and up to ``max_len`` positions, allocated once.
    ``length`` counts the positions filled so far."""

    def __init__(self, cfg, batch_size: int, max_len: int | None = None, device=None, dtype=torch.float32):
        max_len = cfg.context_length if max_len is None else max_len
        if not 1 <= max_len <= cfg.context_length:
            raise ValueError(f"max_len={max_len} must be between 1 and context_length={cfg.context_length}.")
        shape = (cfg.n_layers, batch_size, cfg.n_heads, max_len, cfg.head_dim)  # (L, B, h, S, d_h)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.max_len, self.length = max_len, 0


@torch.no_grad()
def forward_static(model, idx: torch.Tensor, cache: StaticKVCache, key_mask: torch.Tensor | None = None,
                   positions: torch.Tensor | None = None) -> torch.Tensor:
    """Logits ``(B, T, V)`` of the tokens ``idx  # (B, T)`` that follow the ``cache.length`` cached
    ones, whose keys and values are written into ``cache``. ``key_mask  # (B, >= length + T)`` bool,
    True where a position holds a real token; ``positions  # (B, T)`` the position ids (default
    ``length .. length + T - 1`` for every row). ``model`` must be in eval mode (no dropout)."""
    if model.training:
        raise ValueError("forward_static has no dropout: call model.eval() first.")
    B, T = idx.shape
    start, end = cache.length, cache.length + T
    if end > cache.max_len:
        raise ValueError(f"{start} cached tokens plus {T} new ones make {end}, more than the cache's "
                         f"max_len={cache.max_len}: allocate a larger StaticKVCache.")
    if positions is None:
        positions = torch.arange(start, end, device=idx.device).expand(B, T)
    x = model.tok_emb(idx) + model.pos_emb(positions)  # (B, T, C)
    allowed = None  # (B, 1, T, end), True = may attend; None: plain causal attention
    if key_mask is not None or (start > 0 and T > 1):
        rows = torch.arange(start, end, device=idx.device)[:, None]  # absolute position of each query
        allowed = (torch.arange(end, device=idx.device)[None, :] <= rows).expand(B, 1, T, end)  # causal
        if key_mask is not None:  # hide padding; a padding query sees itself, so no row is empty
            allowed = allowed & key_mask[:, None, None, :end] | (torch.arange(end, device=idx.device) == rows)
    for i, block in enumerate(model.trf_blocks):
        att = block.att
        a = block.norm1(x)
        q, k, v = (w(a).view(B, T, att.num_heads, att.head_dim).transpose(1, 2)  # (B, h, T, d_h)
                   for w in (att.W_query, att.W_key, att.W_value))
        cache.k[i, :, :, start:end], cache.v[i, :, :, start:end] = k, v  # written in place
        keys, values = cache.k[i, :, :, :end], cache.v[i, :, :, :end]  # (B, h, end, d_h)
        if allowed is not None:
            context = F.scaled_dot_product_attention(q, keys, values, attn_mask=allowed)
        else:  # no padding: causal over a fresh prompt, or one new token that sees everything
            context = F.scaled_dot_product_attention(q, keys, values, is_causal=start == 0 and T > 1)
        x = x + att.out_proj(context.transpose(1, 2).reshape(B, T, att.d_out))  # (B, T, C)
        x = x + block.ff(block.norm2(x))
    cache.length = end
    return model.out_head(model.final_norm(x))  # (B, T, V)


@torch.no_grad()
def generate_static(model, idx: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    """Greedy continuation of ``idx  # (B, T)`` by ``max_new_tokens`` ids with a :class:`StaticKVCache`;
    ``(B, T + max_new_tokens)``, the same ids as ``helpers.generate.generate(model, idx, n)``."""
    model.check_ids(idx)
    total = idx.shape[1] + max_new_tokens
    if total > model.cfg.context_length:
        raise ValueError(f"the prompt ({idx.shape[1]} tokens) plus max_new_tokens={max_new_tokens} exceed "
                         f"context_length={model.cfg.context_length}: the static cache cannot slide; use "
                         f"helpers.generate.generate for longer texts.")
    cache = StaticKVCache(model.cfg, idx.shape[0], total, device=idx.device, dtype=model.tok_emb.weight.dtype)
    out, new = idx, idx
    for _ in range(max_new_tokens):
        next_id = forward_static(model, new, cache)[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1)
        out, new = torch.cat([out, next_id], dim=1), next_id
    return out


def pad_left(prompts: list[list[int]], pad_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, mask)``, both ``(B, P)``, P the longest prompt: each prompt right-aligned after
    ``pad_id``s, and ``mask`` True at its real tokens."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token (and there must be at least one prompt).")
    P = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), P), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros(len(prompts), P, dtype=torch.bool, device=device)
    for row, p in enumerate(prompts):
        ids[row, P - len(p):] = torch.as_tensor(p, dtype=torch.long)
        mask[row, P - len(p):] = True
    return ids, mask


@torch.no_grad()
def generate_batched(model, prompts: list[list[int]], max_new_tokens: int, pad_id: int = 0) -> list[list[int]]:
    """Greedy continuations of several prompts of different lengths, computed as one batch: each
    returned list is its prompt plus ``max_new_tokens`` ids, as ``generate`` gives for it alone."""
    device = model.tok_emb.weight.device
    ids, mask = pad_left(prompts, pad_id, device)  # (B, P)
    model.check_ids(ids)
    B, P = ids.shape
    if P + max_new_tokens > model.cfg.context_length:
        raise ValueError(f"the longest prompt ({P} tokens) plus max_new_tokens={max_new_tokens} exceed "
                         f"context_length={model.cfg.context_length}: shorten the prompts or generate fewer tokens.")
    key_mask = torch.cat([mask, mask.new_ones(B, max_new_tokens)], dim=1)  # new tokens are all real
    positions = (mask.long().cumsum(dim=1) - 1).clamp(min=0)  # (B, P): 0 at each row's first real token
    cache = StaticKVCache(model.cfg, B, P + max_new_tokens, device=device, dtype=model.tok_emb.weight.dtype)
    logits = forward_static(model, ids, cache, key_mask, positions)  # (B, P, V)
    out, pos = [], positions[:, -1:]  # (B, 1)
    for step in range(max_new_tokens):
        next_id = logits[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1)
        out.append(next_id)
        pos = pos + 1
        if step + 1 < max_new_tokens:
            logits = forward_static(model, next_id, cache, key_mask, pos)
    new = torch.cat(out, dim=1).tolist() if out else [[] for _ in prompts]
    return [list(p) + n for p, n in zip(prompts, new)]
