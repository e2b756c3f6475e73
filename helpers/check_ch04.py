"""The checks of Chapter 4's exercises (the transformer block): ``check("4.1", MyRMSNorm)``.

Each check runs the reader's answer on a few cases, the edge cases included, and compares it with
``torch.nn``, ``helpers.layers`` or a known value; see :mod:`helpers.check`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from helpers.check import Wrong
from helpers.layers import TransformerBlock

# the exact GELU's minimum, where Phi(x) + x phi(x) = 0 (bisection in float64, 200 steps)
GELU_MIN_X = -0.7517915246935645


def _shape(value) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


def check_rmsnorm(my_rmsnorm_class) -> str:
    """4.1: ``my_rmsnorm_class(emb_dim)`` -> a module with a ``weight`` (gamma) of ones."""
    gen = torch.Generator().manual_seed(0)
    cases = [
        ("a (3, 5, 16) batch", torch.randn(3, 5, 16, generator=gen), False),
        ("rows of size 1e-3, where eps matters", 1e-3 * torch.randn(2, 4, 8, generator=gen), False),
        ("a row of zeros", torch.zeros(1, 2, 8), False),
        ("one token, with a trained-like weight", torch.randn(1, 1, 8, generator=gen), True),
    ]
    for name, x, new_weight in cases:
        mine, ref = my_rmsnorm_class(x.shape[-1]), nn.RMSNorm(x.shape[-1], eps=1e-5)
        if new_weight:
            if not isinstance(getattr(mine, "weight", None), torch.Tensor):
                raise Wrong("Your module has no `weight`: give it a parameter gamma, the scale "
                            "of each feature, starting at ones.")
            with torch.no_grad():
                ref.weight.copy_(torch.linspace(0.5, 2.0, x.shape[-1]))
                mine.weight.copy_(ref.weight)
        with torch.no_grad():
            got, want = mine(x.clone()), ref(x)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            raise Wrong(f"On {name} you returned {_shape(got)}, expected {tuple(want.shape)}.")
        if torch.allclose(got, want, atol=1e-5):
            continue
        if "eps" in name:
            hint = "eps goes inside the square root, added to the mean of the squares"
        elif "weight" in name:
            hint = "multiply by the weight gamma, feature by feature"
        elif got.isnan().any():
            hint = "add eps before the square root, so that a row of zeros stays finite"
        else:
            hint = ("no mean is subtracted; divide by the root of the mean of the squares over "
                    "the last axis, the features")
        raise Wrong(f"On {name} your output differs from torch.nn.RMSNorm's. Hint: {hint}.")
    return "a batch, tiny rows where eps matters, a row of zeros, one token with a weight"


def check_bisect(my_bisect) -> str:
    """4.3: ``my_bisect(f, lo, hi)`` -> the root of ``f`` in ``[lo, hi]`` (``f(lo) < 0 < f(hi)``),
    to at least 1e-7."""
    def gelu_slope(x):
        return 0.5 * (1 + math.erf(x / math.sqrt(2))) + x * math.exp(-x * x / 2) / math.sqrt(
            2 * math.pi
        )

    cases = [
        ("f(x) = x - 0.3 on [0, 1]", lambda x: x - 0.3, 0.0, 1.0, 0.3),
        ("f(x) = x**3 - 2 on [0, 2]", lambda x: x**3 - 2, 0.0, 2.0, 2 ** (1 / 3)),
        ("a root close to lo: f(x) = x - 1e-4 on [0, 100]", lambda x: x - 1e-4, 0.0, 100.0, 1e-4),
        ("the exact GELU's slope on [-2, 0]", gelu_slope, -2.0, 0.0, GELU_MIN_X),
    ]
    for name, f, lo, hi, root in cases:
        got = my_bisect(f, lo, hi)
        if not isinstance(got, (int, float)):
            raise Wrong(f"On {name} you returned {got!r}; expected a number.")
        if abs(got - root) < 1e-7:
            continue
        if abs(got - lo) < 1e-9 or abs(got - hi) < 1e-9:
            hint = ("you ended at an end of the interval: if f(mid) < 0 the root is to the right "
                    "of mid, so mid becomes the new lo")
        else:
            hint = ("each step halves the interval: run enough steps for its width to fall below "
                    "1e-7, from the starting width")
        raise Wrong(f"On {name} you returned {got:.9f}, the root is {root:.9f}. Hint: {hint}.")
    return "a line, a cube root, a root near one end of a wide interval, and GELU's slope"


def _parallel(block: TransformerBlock, x: torch.Tensor) -> torch.Tensor:
    h = block.norm1(x)
    return x + block.att(h) + block.ff(h)


def check_parallel_block(my_parallel_block) -> str:
    """4.5: ``my_parallel_block(block, x)`` -> ``x + att(norm1(x)) + ff(norm1(x))`` from the
    parts of a ``helpers.layers.TransformerBlock``."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        block = TransformerBlock(8, 2, context_length=6, qkv_bias=True).eval()
        with torch.no_grad():  # norms that are not the identity, so that their order shows
            block.norm1.weight.uniform_(0.5, 2.0)
            block.norm1.bias.uniform_(-1.0, 1.0)
        cases = [
            ("a batch of 2 sequences of 5 tokens", torch.randn(2, 5, 8)),
            ("a sequence of one token", torch.randn(1, 1, 8)),
            ("a full context of 6 tokens", 3 * torch.randn(1, 6, 8)),
        ]
    for name, x in cases:
        with torch.no_grad():
            want = _parallel(block, x)
            got = my_parallel_block(block, x.clone())
            sequential = block(x)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            raise Wrong(f"On {name} you returned {_shape(got)}, expected {tuple(want.shape)}.")
        if torch.allclose(got, want, atol=1e-5):
            continue
        if torch.allclose(got, sequential, atol=1e-5):
            hint = ("that is the sequential block: here the feed-forward reads the same "
                    "normalized input as attention, not the stream after attention")
        elif torch.allclose(got, want - x, atol=1e-5):
            hint = "keep the shortcut: the input x itself is part of the output"
        else:
            hint = ("compare with the formula term by term: one normalization, norm1, whose "
                    "output both sub-layers read")
        raise Wrong(f"On {name} your output differs from the parallel block's. Hint: {hint}.")
    return "a batch of two, one token and a full context, with norms that are not the identity"


CHECKS = {
    "4.1": check_rmsnorm,
    "4.3": check_bisect,
    "4.5": check_parallel_block,
}
