"""Causal multi-head self-attention, built step by step in Chapter 3 (Attention).

:class:`MultiHeadAttention` is the layer GPT-2 uses: one query, key and value projection of width
``d_out`` split into ``num_heads`` heads of ``head_dim = d_out // num_heads`` features, a causal
mask, dropout on the attention weights, and an output projection. ``forward`` always returns the
output ``(B, T, d_out)``; inside it two paths compute the same function:

* by default, ``torch.nn.functional.scaled_dot_product_attention`` (SDPA), which never stores the
  ``(B, h, T, T)`` weights;
* given a list as ``attn_weights``, :func:`causal_attention`, the chapter's explicit
  ``softmax(Q K^T / sqrt(d_h)) V``, whose weights are appended to that list for plotting.

The recorded weights are the softmax *before* dropout, so each row sums to 1 and everything above
the diagonal is 0. In training mode with ``dropout > 0`` the two paths draw different dropout
masks; in eval mode, or with ``dropout=0``, they agree to float rounding (Chapter 3 and
``tests/test_attention.py`` check 1e-6 in float32).

Chapter 8 (Decoding) adds a *KV cache*: ``forward(x, cache=cache, layer=i)`` with a
:class:`helpers.kvcache.KVCache` treats ``x`` as the tokens after the ``past_len`` cached ones,
lets them attend to the past and to each other causally (query ``i`` sits at absolute position
``past_len + i``), and appends their keys and values to the cache.

:func:`attention_benchmark` is the measurement that Chapter 3 reports and
``benchmarks/attention.py`` prints: the explicit path against SDPA, forward and backward, on CPU or
GPU.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


def causal_mask(num_tokens: int, device=None) -> torch.Tensor:
    """``(T, T)`` bool tensor, True strictly above the diagonal: the future positions a query
    may not see."""
    return torch.triu(
        torch.ones(num_tokens, num_tokens, dtype=torch.bool, device=device), diagonal=1
    )


def causal_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Explicit causal scaled dot-product attention over ``(..., T, d_h)`` queries, keys and values.

    Returns ``(context, weights)``: ``context`` is ``(..., T, d_h)``; ``weights`` is the ``(..., T,
    T)`` softmax before dropout (rows sum to 1). ``mask`` (True = hidden) defaults to
    :func:`causal_mask`. Dropout with probability ``dropout_p`` is applied to the weights that
    multiply ``v`` only.
    """
    num_tokens, head_dim = q.shape[-2], q.shape[-1]
    if mask is None:
        mask = causal_mask(num_tokens, device=q.device)
    scores = q @ k.transpose(-2, -1) / math.sqrt(head_dim)  # (..., T, T)
    scores = scores.masked_fill(mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # (..., T, T), rows sum to 1
    dropped = F.dropout(weights, p=dropout_p, training=dropout_p > 0)
    return dropped @ v, weights


class MultiHeadAttention(nn.Module):
    """Causal multi-head self-attention: ``x (B, T, d_in) -> (B, T, d_out)``.

    Attributes: ``W_query``, ``W_key``, ``W_value`` (``nn.Linear(d_in, d_out, bias=qkv_bias)``),
    ``out_proj`` (``nn.Linear(d_out, d_out)``), ``num_heads``, ``head_dim``, ``context_length``,
    ``dropout`` (a probability) and ``mask``, a ``(context_length, context_length)`` bool buffer
    registered with ``persistent=False``: it is rebuilt from ``context_length``, never stored in a
    ``state_dict``. Parameters are created in the order query, key, value, output projection, so
    ``torch.manual_seed(123)`` before construction gives Chapter 3's numbers.
    """

    def __init__(
        self,
        d_in: int,
        d_out: int,
        context_length: int,
        num_heads: int,
        dropout: float = 0.0,
        qkv_bias: bool = False,
    ):
        super().__init__()
        for name, value in (
            ("d_in", d_in),
            ("d_out", d_out),
            ("context_length", context_length),
            ("num_heads", num_heads),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer.")
        if d_out % num_heads != 0:
            nearest = min(
                (n for n in range(1, d_out + 1) if d_out % n == 0), key=lambda n: abs(n - num_heads)
            )
            raise ValueError(
                f"d_out={d_out} is not divisible by num_heads={num_heads}: every head needs the "
                "same number of features, d_out // num_heads; use a num_heads that divides d_out "
                f"(e.g. {nearest}) or a d_out that is a multiple of num_heads (e.g. "
                f"{num_heads * max(1, round(d_out / num_heads))})."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"dropout={dropout} must be a probability in [0, 1): it is the chance of zeroing "
                "one attention weight."
            )
        self.d_in, self.d_out = d_in, d_out
        self.num_heads, self.head_dim = num_heads, d_out // num_heads
        self.context_length, self.dropout = context_length, float(dropout)
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)  # mixes the heads' outputs
        self.register_buffer("mask", causal_mask(context_length), persistent=False)
        self.use_sdpa = True  # False: the explicit path always (the training-speed appendix)

    def extra_repr(self) -> str:
        return (
            f"d_in={self.d_in}, d_out={self.d_out}, context_length={self.context_length}, "
            f"num_heads={self.num_heads}, head_dim={self.head_dim}, dropout={self.dropout}"
        )

    def _check_input(self, x: torch.Tensor, past_len: int = 0) -> None:
        if not isinstance(x, torch.Tensor):
            raise ValueError(
                "x must be a tensor of shape (batch_size, num_tokens, d_in), got "
                f"{type(x).__name__}."
            )
        if x.ndim != 3:
            hint = (
                " add a batch dimension with x.unsqueeze(0)."
                if x.ndim == 2
                else " pass (batch_size, num_tokens, d_in)."
            )
            raise ValueError(
                f"x has shape {tuple(x.shape)} ({x.ndim} dimensions), expected 3 dimensions "
                f"(batch_size, num_tokens, d_in={self.d_in}):{hint}"
            )
        if x.shape[-1] != self.d_in:
            raise ValueError(
                f"x has {x.shape[-1]} features in its last dimension (shape {tuple(x.shape)}), "
                f"but this layer was built with d_in={self.d_in}."
            )
        if x.shape[1] > self.context_length:
            raise ValueError(
                f"the input has num_tokens={x.shape[1]}, more than this layer's context_length="
                f"{self.context_length}: keep only the last {self.context_length} tokens, or build "
                f"the layer with context_length >= {x.shape[1]}."
            )
        if past_len and past_len + x.shape[1] > self.context_length:
            raise ValueError(
                f"{past_len} cached tokens plus num_tokens={x.shape[1]} new ones make "
                f"{past_len + x.shape[1]}, more than this layer's context_length="
                f"{self.context_length}: start a new cache from the last tokens instead."
            )

    def fuse_qkv(self) -> None:
        """Replace ``W_query``, ``W_key``, ``W_value`` by one ``c_attn`` projection of width
        ``3 * d_out`` holding the same weights (GPT-2's layout; the training-speed appendix)."""
        parts = (self.W_query, self.W_key, self.W_value)
        bias = self.W_query.bias is not None
        self.c_attn = nn.Linear(self.d_in, 3 * self.d_out, bias=bias).to(self.W_query.weight)
        with torch.no_grad():
            self.c_attn.weight.copy_(torch.cat([p.weight for p in parts]))
            if bias:
                self.c_attn.bias.copy_(torch.cat([p.bias for p in parts]))
        del self.W_query, self.W_key, self.W_value

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values of ``x (B, T, d_in)``, each ``(B, h, T, d_h)``."""
        B, T, _ = x.shape
        if hasattr(self, "c_attn"):
            qkv = self.c_attn(x).split(self.d_out, dim=2)  # 3 x (B, T, d_out)
        else:
            qkv = (self.W_query(x), self.W_key(x), self.W_value(x))
        # (B, T, d_out) -> (B, T, h, d_h) -> (B, h, T, d_h): each head sees its own slice of d_out
        q, k, v = (t.view(B, T, self.num_heads, self.head_dim).transpose(1, 2) for t in qkv)
        return q, k, v

    def forward(
        self,
        x: torch.Tensor,
        cache=None,
        layer: int = 0,
        attn_weights: list | None = None,
    ) -> torch.Tensor:
        """``x (B, T, d_in)`` -> ``(B, T, d_out)``, always.

        ``attn_weights``: a list to which the ``(B, h, T, past_len + T)``
        softmax weights (before dropout) are appended; asking for them runs
        the explicit path (also when ``use_sdpa`` is False). ``cache``
        (Chapter 8): a :class:`helpers.kvcache.KVCache` holding the keys and
        values of the ``past_len`` tokens before ``x`` in slot ``layer``; the
        new ones are appended."""
        past_len = 0 if cache is None else cache.length(layer)
        self._check_input(x, past_len)
        B, T, _ = x.shape
        q, k, v = self.project(x)  # (B, h, T, d_h)
        # the cached keys and values come first: (B, h, past_len + T, d_h)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        p = self.dropout if self.training else 0.0
        padded = cache is not None and cache.pad is not None
        explicit = attn_weights is not None or not self.use_sdpa
        # the usual causal triangle
        if not explicit and not padded and past_len == 0:
            context = F.scaled_dot_product_attention(
                q, k, v, dropout_p=p, is_causal=True
            )
        elif not explicit and not padded and T == 1:
            # one new token sees every cached one
            context = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        else:
            # Query i is the token at position past_len + i: it may see keys
            # 0 .. past_len + i, so the mask is rows past_len .. past_len + T
            # - 1 of the full (context_length, context_length) mask; True =
            # hidden. Only these paths build it. (T, past_len + T)
            mask = self.mask[past_len : past_len + T, : past_len + T]
            if cache is not None:
                # (B, 1, T, S) when the rows are padded
                mask = cache.hidden(mask, past_len)
            if explicit:
                # (B, h, T, d_h)
                context, weights = causal_attention(
                    q, k, v, mask, dropout_p=p
                )
                if attn_weights is not None:
                    attn_weights.append(weights)  # (B, h, T, past_len + T)
            else:  # SDPA's bool mask means "may attend", ours "hidden"
                context = F.scaled_dot_product_attention(
                    q, k, v, attn_mask=~mask, dropout_p=p
                )
        # heads side by side
        context = context.transpose(1, 2).contiguous().view(B, T, self.d_out)
        return self.out_proj(context)  # (B, T, d_out)


def saved_tensor_bytes(fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Run ``fn()`` and count the bytes of the tensors autograd keeps for the backward pass.

    Tensors that share storage (views of one another) are counted once. This is the memory a
    training step must hold between forward and backward, and unlike a peak-memory reading it
    repeats exactly.
    """
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(storages.values())


def attention_benchmark(
    batch_size: int = 8,
    num_tokens: int = 1024,
    emb_dim: int = 768,
    num_heads: int = 12,
    repeat: int = 3,
    device: str = "cpu",
    seed: int = 0,
) -> dict[str, float]:
    """Chapter 3's measurement: :func:`causal_attention` against SDPA on queries, keys and values of
    shape ``(batch_size, num_heads, num_tokens, emb_dim // num_heads)`` (GPT-2 small by default).

    Returns median seconds (``{path}_forward_s``, ``{path}_backward_s``, the backward being
    forward-and- backward minus forward), ``{path}_saved_MiB`` (see :func:`saved_tensor_bytes`) for
    path ``naive`` and ``sdpa``, the ratios ``forward_speedup``, ``backward_speedup``,
    ``saved_ratio``, and on CUDA ``{path}_peak_MiB``.
    """
    from helpers.bench import time_call

    if emb_dim % num_heads != 0:
        raise ValueError(f"emb_dim={emb_dim} is not divisible by num_heads={num_heads}.")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    shape = (batch_size, num_heads, num_tokens, emb_dim // num_heads)
    q, k, v = (torch.randn(shape, generator=gen).to(device).requires_grad_() for _ in range(3))
    mask = causal_mask(num_tokens, device=device)
    paths = {
        "naive": lambda: causal_attention(q, k, v, mask)[0],
        "sdpa": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
    }
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    result: dict[str, float] = {}
    for name, fn in paths.items():

        def run_forward():
            fn()
            sync()

        def run_forward_backward():
            fn().sum().backward()
            q.grad = k.grad = v.grad = None
            sync()

        fwd = time_call(run_forward, repeat=repeat)
        both = time_call(run_forward_backward, repeat=repeat)
        result[f"{name}_forward_s"], result[f"{name}_backward_s"] = fwd, max(both - fwd, 0.0)
        result[f"{name}_saved_MiB"] = saved_tensor_bytes(fn)[1] / 2**20
        if str(device).startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            run_forward_backward()
            result[f"{name}_peak_MiB"] = (torch.cuda.max_memory_allocated() - base) / 2**20
    result["forward_speedup"] = result["naive_forward_s"] / result["sdpa_forward_s"]
    result["backward_speedup"] = result["naive_backward_s"] / max(result["sdpa_backward_s"], 1e-12)
    result["saved_ratio"] = result["naive_saved_MiB"] / result["sdpa_saved_MiB"]
    return result
