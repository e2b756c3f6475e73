"""The parts of a transformer block, built step by step in Chapter 4 (The transformer block's
parts).

Read in this order; each piece is used by the next:

* :func:`gelu` and :class:`GELU`: the activation, exact (``x * Phi(x)``) or with the tanh
  approximation that GPT-2 was trained with;
* :class:`LayerNorm`: per-token normalization over the last axis (biased variance, ``eps=1e-5``),
  then a learnable scale ``weight`` and shift ``bias``, the names ``nn.LayerNorm`` uses;
* :class:`FeedForward`: expand to ``4 * emb_dim``, GELU, contract back to ``emb_dim``;
* :class:`TransformerBlock`: GPT-2's pre-LayerNorm block, ``x + attn(ln1(x))`` then
  ``x + ff(ln2(x))``, which keeps the shape ``(B, T, C)``.

Chapter 5 (``helpers.model``) stacks the blocks into GPT-2. Attention itself comes from
Chapter 3 (``helpers.attention``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers.attention import MultiHeadAttention

GELU_MODES = ("none", "tanh")  # the names torch.nn.functional.gelu uses for `approximate`


def gelu(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """GELU(x) = x * Phi(x), Phi the standard normal CDF.

    ``approximate="none"`` computes Phi with the error function,
    ``0.5 x (1 + erf(x / sqrt(2)))``; ``approximate="tanh"`` uses Hendrycks and Gimpel's
    approximation ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, the form in OpenAI's GPT-2
    code. Chapter 4 writes both formulas out; here ``torch.nn.functional.gelu`` computes the same
    formula in one fused kernel (one pass over ``x`` instead of about eight elementwise
    operations, each with its own intermediate tensor), which agrees with the written-out formula
    to float rounding (``tests/test_layers.py`` checks 1e-6 in float32).
    """
    if approximate not in GELU_MODES:
        raise ValueError(
            f"approximate={approximate!r} is not a GELU mode: use one of {GELU_MODES}."
        )
    return F.gelu(x, approximate=approximate)


class GELU(nn.Module):
    """The GELU activation as a module; GPT-2 uses ``approximate="tanh"`` (the default here)."""

    def __init__(self, approximate: str = "tanh"):
        super().__init__()
        if approximate not in GELU_MODES:
            raise ValueError(
                f"approximate={approximate!r} is not a GELU mode: use one of {GELU_MODES}."
            )
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate=self.approximate)  # the mode was checked in __init__

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class LayerNorm(nn.Module):
    """Layer normalization over the last axis, one token vector at a time.

    ``(x - mean) / sqrt(var + eps) * weight + bias`` with the biased variance (divide by ``C``,
    not ``C - 1``), as ``nn.LayerNorm(emb_dim, eps=1e-5)`` and GPT-2 compute it. ``weight``
    starts at ones and ``bias`` at zeros, so a fresh layer only normalizes.

    Chapter 4 writes the formula out step by step (mean, variance, subtract, divide, scale,
    shift); ``forward`` here calls ``torch.nn.functional.layer_norm``, one fused kernel computing
    that same formula in one pass, which agrees with the written-out steps to float rounding
    (``tests/test_layers.py`` checks both against each other and against ``nn.LayerNorm``).
    """

    def __init__(self, emb_dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(emb_dim))  # scale, gamma
        self.bias = nn.Parameter(torch.zeros(emb_dim))  # shift, beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (x - mean) / sqrt(var + eps) * weight + bias over the last axis, fused
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)  # (..., C)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class FeedForward(nn.Module):
    """Position-wise feed-forward network: ``fc`` expands ``emb_dim -> hidden_dim`` (default
    ``4 * emb_dim``), GELU, then ``proj`` contracts back. It sees one token at a time.

    Parameters: ``2 * emb_dim * hidden_dim + hidden_dim + emb_dim`` (weights and biases).
    """

    def __init__(self, emb_dim: int, hidden_dim: int | None = None, approximate: str = "tanh"):
        super().__init__()
        hidden_dim = 4 * emb_dim if hidden_dim is None else hidden_dim
        self.fc = nn.Linear(emb_dim, hidden_dim)  # expansion, GPT-2's mlp.c_fc
        self.act = GELU(approximate)
        self.proj = nn.Linear(hidden_dim, emb_dim)  # contraction, GPT-2's mlp.c_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.act(self.fc(x)))  # (B, T, C) -> (B, T, 4C) -> (B, T, C)


class TransformerBlock(nn.Module):
    """GPT-2's pre-LayerNorm transformer block; input and output are both ``(B, T, emb_dim)``.

    ``x = x + dropout(att(norm1(x)))`` then ``x = x + dropout(ff(norm2(x)))``: each sub-layer
    reads a normalized copy of the residual stream and adds its result back to it. The original
    Transformer and GPT-1 normalize *after* the addition instead (post-LayerNorm); Chapter 4
    compares the two.
    """

    def __init__(
        self,
        emb_dim: int,
        n_heads: int,
        context_length: int,
        drop_rate: float = 0.0,
        qkv_bias: bool = False,
    ):
        super().__init__()
        if emb_dim % n_heads != 0:
            raise ValueError(
                f"emb_dim={emb_dim} is not divisible by n_heads={n_heads}: "
                f"choose emb_dim as a multiple of n_heads."
            )
        self.norm1 = LayerNorm(emb_dim)  # GPT-2's ln_1
        self.att = MultiHeadAttention(
            emb_dim, emb_dim, context_length, n_heads, dropout=drop_rate, qkv_bias=qkv_bias
        )
        self.norm2 = LayerNorm(emb_dim)  # GPT-2's ln_2
        self.ff = FeedForward(emb_dim)
        self.drop_shortcut = nn.Dropout(drop_rate)

    def forward(
        self, x: torch.Tensor, cache=None, layer: int = 0, attn_weights: list | None = None
    ) -> torch.Tensor:
        """``x  # (B, T, C)`` -> ``(B, T, C)``. ``cache``, ``layer`` and ``attn_weights`` go to the
        attention layer (see ``MultiHeadAttention.forward``)."""
        a = self.att(self.norm1(x), cache=cache, layer=layer, attn_weights=attn_weights)
        x = x + self.drop_shortcut(a)  # shortcut around attention
        x = x + self.drop_shortcut(self.ff(self.norm2(x)))  # shortcut around the feed-forward
        return x
