"""The checks of Chapter 3's exercises (attention): ``check("3.3", my_head_weights)``.

Each check runs the reader's answer on a few cases, the edge cases included, and compares it with
``helpers.attention`` or with the formula computed in float64; see :mod:`helpers.check`.
"""

from __future__ import annotations

import torch

from helpers.attention import MultiHeadAttention
from helpers.check import Wrong


def _shape(value) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


def check_context_vector(my_context_vector) -> str:
    """3.1: ``my_context_vector(rows, i)`` -> the context vector of token ``i`` (a list)."""
    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.rand(*shape, generator=gen, dtype=torch.float64)

    cases = [
        ("6 tokens of 3 features, token 2", rand(6, 3), 2),
        ("6 tokens, the last one", rand(6, 3), 5),
        ("a sequence of one token", rand(1, 4), 0),
        ("large inputs whose scores reach 1000 or more", 25 * torch.eye(3, dtype=torch.float64)
         + 20, 1),
    ]
    for name, x, i in cases:
        want = (torch.softmax(x @ x.T, dim=-1) @ x)[i]
        got = my_context_vector(x.tolist(), i)
        try:
            ok = torch.allclose(torch.tensor(got, dtype=torch.float64), want, atol=1e-6)
        except (TypeError, ValueError, RuntimeError):
            raise Wrong(f"On {name} you returned {got!r}; expected a list of numbers.") from None
        if ok:
            continue
        hint = (
            "the exponentials of large scores overflow: subtract the largest score before "
            "math.exp, which leaves the softmax unchanged"
            if "large" in name
            else "the weights are exp(score) divided by the sum of the exponentials of the row, "
            "and the context vector sums weight * input over every token"
        )
        shown = [round(float(c), 4) for c in got]
        raise Wrong(f"On {name} you returned {shown}, expected "
                    f"{[round(c, 4) for c in want.tolist()]}. Hint: {hint}.")
    return "random tokens, the last token, a one-token sequence, and scores above 1000"


def check_count_parameters(my_count_parameters) -> str:
    """3.2: ``my_count_parameters(d_out)`` -> parameters of one attention layer, ``d_in = d_out``,
    ``qkv_bias=True``."""
    for d, heads in [(768, 12), (1, 1), (12, 3), (1600, 25)]:
        with torch.device("meta"):  # shapes only, no memory
            layer = MultiHeadAttention(d, d, context_length=4, num_heads=heads, qkv_bias=True)
        want = sum(p.numel() for p in layer.parameters())
        got = my_count_parameters(d)
        if got == want:
            continue
        raise Wrong(
            f"On d_out={d} ({heads} heads) you said {got!r}, the layer has {want:,}. Hint: count "
            "every weight matrix and every bias vector, the output projection's included; the "
            "number of heads does not change the count."
        )
    return "d_out = 1, 12, 768 and 1600"


def check_head_weights(my_head_weights) -> str:
    """3.3: ``my_head_weights(layer, x, head)`` -> ``(B, T, T)`` attention weights of one head,
    from the layer's query and key projections."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        biased = MultiHeadAttention(16, 16, context_length=8, num_heads=4, qkv_bias=True).eval()
        plain = MultiHeadAttention(12, 12, context_length=8, num_heads=2).eval()
        cases = [
            ("a batch of 2 sequences of 5 tokens, head 2", biased, torch.randn(2, 5, 16), 2),
            ("head 0 of a layer without biases", plain, torch.randn(1, 6, 12), 0),
            ("the last head", biased, torch.randn(1, 4, 16), 3),
            ("a sequence of one token", biased, torch.randn(1, 1, 16), 1),
        ]
    for name, layer, x, head in cases:
        recorded = []
        with torch.no_grad():
            layer(x, attn_weights=recorded)
            got = my_head_weights(layer, x.clone(), head)
        want = recorded[0][:, head]  # (B, T, T)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            raise Wrong(f"On {name} you returned {_shape(got)}, expected {tuple(want.shape)}.")
        if torch.allclose(got, want, atol=1e-5):
            continue
        hint = _attention_hint(got, layer, x, head)
        raise Wrong(f"On {name} your weights differ from the layer's. Hint: {hint}.")
    return "a batch of two, a layer without biases, the first and last heads, one token"


def _attention_hint(got: torch.Tensor, layer, x: torch.Tensor, head: int) -> str:
    if got.numel() and (got.triu(diagonal=1).abs() > 1e-6).any():
        return "a token must not see later tokens: mask the scores above the diagonal with -inf"
    if got.shape[-1] > 1 and not torch.allclose(got.sum(-1), torch.ones(got.shape[:-1]), atol=1e-4):
        return "each row (one query) must sum to 1: take the softmax over the last axis, the keys"
    with torch.no_grad():
        q, k, _ = layer.project(x)  # (B, h, T, d_h)
        scores = q[:, head] @ k[:, head].transpose(1, 2)  # (B, T, T), not scaled
    hidden = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).triu(1)
    if torch.allclose(got, torch.softmax(scores.masked_fill(hidden, float("-inf")), -1), atol=1e-5):
        return ("the scores grow with the head's width: scale them as Section 3.5 does before "
                "the softmax")
    return ("head h owns its own block of head_dim rows of each projection's weight (and of its "
            "bias), the block after those of heads 0 to h - 1")


def check_moved_outputs(my_moved_outputs) -> str:
    """3.4: ``my_moved_outputs(layer, x, position)`` -> sorted positions whose output changes when
    the token at ``position`` of ``x (1, T, C)`` is replaced."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        masked = MultiHeadAttention(12, 12, context_length=8, num_heads=3).eval()
        unmasked = MultiHeadAttention(12, 12, context_length=8, num_heads=3).eval()
        unmasked.mask = torch.zeros(8, 8, dtype=torch.bool)  # nothing hidden
        unmasked.use_sdpa = False  # the explicit path, which reads the mask
        x8, x1 = torch.randn(1, 8, 12), torch.randn(1, 1, 12)
    cases = [
        ("the causal layer, last token changed", masked, x8, 7, [7]),
        ("the causal layer, token 3 changed", masked, x8, 3, list(range(3, 8))),
        ("the layer without a mask, last token changed", unmasked, x8, 7, list(range(8))),
        ("the causal layer, first token changed", masked, x8, 0, list(range(8))),
        ("a sequence of one token", masked, x1, 0, [0]),
    ]
    for name, layer, x, position, want in cases:
        with torch.no_grad():
            got = my_moved_outputs(layer, x.clone(), position)
        got = sorted(int(i) for i in got) if isinstance(got, (list, tuple, set)) else got
        if got == want:
            continue
        if got == []:
            hint = ("nothing moved: change a copy of x (x.clone()), or both runs see the same "
                    "changed input")
        elif isinstance(got, list) and got and min(got) < position:
            hint = "a token is seen by itself and by the tokens after it, not by those before"
        else:
            hint = ("run the layer on x and on the changed copy, and compare the outputs position "
                    "by position")
        raise Wrong(f"On {name} you said {got!r}, expected {want}. Hint: {hint}.")
    return "a causal and an unmasked layer, the first, a middle and the last token, one token"


def check_predicted_std(my_predicted_std) -> str:
    """3.5: ``my_predicted_std(weights, p)`` -> ``(T,)`` predicted standard deviation of each
    row sum of ``weights (T, T)`` after dropout with probability ``p``."""
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(6, 6, generator=gen).masked_fill(
        torch.ones(6, 6, dtype=torch.bool).triu(1), float("-inf"))
    causal = torch.softmax(scores, dim=-1)
    for name, w, p in [("causal weights, p = 0.1", causal, 0.1),
                       ("causal weights, p = 0.5", causal, 0.5),
                       ("p = 0 (no dropout)", causal, 0.0),
                       ("uniform rows of 4 tokens, p = 0.2", torch.full((4, 4), 0.25), 0.2)]:
        want = (p / (1 - p) * w.square().sum(dim=-1)).sqrt()
        got = my_predicted_std(w.clone(), p)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            raise Wrong(f"On {name} you returned {_shape(got)}, expected {tuple(want.shape)}.")
        if torch.allclose(got.double(), want.double(), atol=1e-6):
            continue
        raise Wrong(
            f"On {name} your first values are {[round(v, 4) for v in got[:3].tolist()]}, expected "
            f"{[round(v, 4) for v in want[:3].tolist()]}. Hint: a weight w is kept as w / (1 - p) "
            "with probability 1 - p and dropped otherwise: work out its variance, add the "
            "variances of a row (the draws are independent), and take the square root."
        )
    return "causal weights with p = 0, 0.1 and 0.5, and uniform rows"


CHECKS = {
    "3.1": check_context_vector,
    "3.2": check_count_parameters,
    "3.3": check_head_weights,
    "3.4": check_moved_outputs,
    "3.5": check_predicted_std,
}
