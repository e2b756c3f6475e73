"""The checks of Chapter 10's exercises (looking inside the model); see :mod:`helpers.check`.

A tiny :class:`helpers.model.GPTModel` from a fixed seed records its own attention weights and
losses, the references the reader's answers are compared with; the logit-lens cases are small
tensors worked out in advance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from helpers.check import Wrong
from helpers.model import GPTConfig, GPTModel

TINY = GPTConfig(vocab_size=40, context_length=16, emb_dim=16, n_heads=4, n_layers=2,
                 drop_rate=0.0)


def tiny_model(seed: int = 0) -> GPTModel:
    """A tiny GPT-2 from ``seed``, in evaluation mode; the global random state is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPTModel(TINY).eval()


def _ids(shape, seed: int) -> torch.Tensor:
    return torch.randint(0, TINY.vocab_size, shape, generator=torch.Generator().manual_seed(seed))


def check_10_1(fn) -> str:
    cases = [("a batch of two 5-token rows", _ids((2, 5), 1)),
             ("a sequence of one token", _ids((1, 1), 2))]
    for name, inputs in cases:
        expected = torch.cat([inputs[:, :1], inputs[:, :-1]], dim=1)
        got = fn(inputs.clone())
        if not isinstance(got, torch.Tensor) or got.shape != inputs.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise Wrong(f"On {name}, your targets are {shape}, not {tuple(inputs.shape)}. Hint: "
                        "one target per input position, the first one included.")
        if torch.equal(got, expected):
            continue
        if torch.equal(got[:, 1:], expected[:, 1:]):
            raise Wrong(f"On {name}, position 0's target is wrong. Hint: nothing comes before "
                        "position 0; let it predict its own token, not wrap around.")
        raise Wrong(f"On {name}, your targets are not the tokens one position back. Hint: the "
                    "target at position t is the input at t - 1.")
    return "a batch of two rows and a sequence of one token"


def _loss(model, inputs, targets) -> float:
    with torch.no_grad():
        return F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten()).item()


def check_10_2(fn) -> str:
    model = tiny_model(2)
    inputs, targets = _ids((3, 8), 3), _ids((3, 8), 4)
    d = TINY.emb_dim // TINY.n_heads
    cases = [("head 1 of layer 0", 0, [1]), ("heads 0 and 3 of layer 1", 1, [0, 3]),
             ("every head of layer 1", 1, [0, 1, 2, 3])]
    for name, layer, heads in cases:
        before = {k: v.clone() for k, v in model.state_dict().items()}
        W = model.trf_blocks[layer].att.out_proj.weight
        with torch.no_grad():
            for k in heads:
                W[:, k * d:(k + 1) * d] = 0.0
            expected = _loss(model, inputs, targets)
            W.copy_(before[f"trf_blocks.{layer}.att.out_proj.weight"])
            rows = W.clone()
            for k in heads:
                W[k * d:(k + 1) * d, :] = 0.0
            by_rows = _loss(model, inputs, targets)
            W.copy_(rows)
        got = fn(model, layer, list(heads), inputs.clone(), targets.clone())
        got = got.item() if isinstance(got, torch.Tensor) and got.numel() == 1 else got
        changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
        if changed:
            model.load_state_dict(before)
            raise Wrong(f"On {name}, the model's weights ({changed[0]}) were left changed. "
                        "Hint: save the weights you zero and copy them back afterwards.")
        if not isinstance(got, float):
            raise Wrong(f"On {name}, your function returned {type(got).__name__}, not a loss.")
        if abs(got - by_rows) < 1e-6 and abs(got - expected) > 1e-6:
            raise Wrong(f"On {name}, you zeroed rows of out_proj.weight, its outputs. Hint: an "
                        "nn.Linear weight is (out, in); a head's output is read by columns.")
        if abs(got - expected) > 1e-5:
            raise Wrong(f"On {name}, your loss {got:.4f} differs from {expected:.4f}. Hint: "
                        "head k owns features k * head_dim up to (k + 1) * head_dim.")
    return "one head, two heads and a whole layer of a tiny model (restored each time)"


def _caught_inputs(model, x):
    caught, weights = {}, []
    hooks = [b.att.register_forward_pre_hook(lambda m, a, i=i: caught.__setitem__(i, a[0]))
             for i, b in enumerate(model.trf_blocks)]
    try:
        with torch.no_grad():
            model(x, attn_weights=weights)
    finally:
        for h in hooks:
            h.remove()
    return caught, weights


def check_10_3(fn) -> str:
    model = tiny_model(3)
    for name, x in [("a batch of two 6-token rows", _ids((2, 6), 5)),
                    ("a sequence of one token", _ids((1, 1), 6))]:
        caught, weights = _caught_inputs(model, x)
        for i, block in enumerate(model.trf_blocks):
            with torch.no_grad():
                got = fn(block.att, caught[i].clone())
            expected = weights[i]
            case = f"{name}, layer {i}"
            if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
                shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
                raise Wrong(f"On {case}, your weights are {shape}, not (B, h, T, T) = "
                            f"{tuple(expected.shape)}. Hint: split C into h heads of d_h.")
            if torch.allclose(got, expected, atol=1e-5):
                continue
            if (got.triu(1).abs() > 1e-6).any():
                raise Wrong(f"On {case}, a query gives weight to later tokens. Hint: hide the "
                            "future (above the diagonal) with -inf before the softmax.")
            if not torch.allclose(got.sum(-1), torch.ones_like(got.sum(-1)), atol=1e-5):
                raise Wrong(f"On {case}, your weights do not add up to 1 over the keys. Hint: "
                            "softmax over the last dimension.")
            raise Wrong(f"On {case}, your weights differ from the recorded ones. Hint: scale "
                        "the scores by 1 / sqrt(d_h) before the softmax.")
    return "a batch and a sequence of one token, every layer of a tiny model"


CASES_9_4 = [  # (top tokens (L+1, B, T), the settling layer of each position) worked out by hand
    ("four positions over three blocks, one agreeing early and then changing its mind",
     [[[5, 1, 3, 1]], [[5, 2, 4, 1]], [[5, 3, 3, 2]], [[5, 3, 3, 3]]], [[0, 2, 2, 3]]),
    ("a batch of two rows of one position, one block",
     [[[7], [8]], [[7], [9]]], [[0], [1]]),
]


def check_10_4(fn) -> str:
    for name, top, expected in CASES_9_4:
        got = fn(torch.tensor(top))
        expected = torch.tensor(expected)
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise Wrong(f"On {name}, you returned {shape}, expected {tuple(expected.shape)} "
                        "(B, T). Hint: one layer index per position.")
        if torch.equal(got, expected):
            continue
        if torch.equal(got, expected + 1):
            raise Wrong(f"On {name}, every layer is one too high. Hint: layer 0 is the "
                        "embeddings, layer L the last block.")
        raise Wrong(f"On {name}, you gave {got.tolist()}, expected {expected.tolist()}. Hint: "
                    "a position settles at the first layer from which *every* later layer "
                    "agrees with the last; agreeing once is not enough.")
    return "positions that settle at the embeddings, at the last block, and after a change"


def check_10_5(fn) -> str:
    model = tiny_model(5)
    for n in (4, 1):
        half = _ids((3, n), 7 + n)
        weights = []
        with torch.no_grad():
            model(torch.cat([half, half], dim=1), attn_weights=weights)
        stack = torch.stack(weights)  # (L, B, h, 2n, 2n)
        queries = torch.arange(n, 2 * n)

        def score(offset):
            return stack[..., queries, queries - n + offset].mean(dim=(1, -1))  # (L, h)

        name = f"{n} random tokens repeated, a batch of 3"
        got = fn(stack.clone(), n)
        if not isinstance(got, torch.Tensor) or got.shape != score(1).shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise Wrong(f"On {name}, you returned {shape}, expected (L, h) = "
                        f"{tuple(score(1).shape)}. Hint: average over the batch and queries.")
        if torch.allclose(got, score(1), atol=1e-6):
            continue
        if torch.allclose(got, score(0), atol=1e-6):
            raise Wrong(f"On {name}, you measured the weight on the earlier copy itself, a "
                        "duplicate-token score. Hint: an induction head looks one further.")
        raise Wrong(f"On {name}, your scores differ. Hint: for a query t in the second half, "
                    "the token after its earlier copy sits at t - n + 1; only second-half "
                    "queries count.")
    return "4 tokens repeated and 1 token repeated, a batch of 3, every layer and head"


CHECKS = {"10.1": check_10_1, "10.2": check_10_2, "10.3": check_10_3, "10.4": check_10_4,
          "10.5": check_10_5}
