"""The checks of Chapter 2's exercises (embeddings): ``check("2.3", my_shift_matrix)``.

Each check runs the reader's answer on a few cases, the edge cases included, and compares it with
``helpers.embeddings`` or with a computation on small made-up vectors; see :mod:`helpers.check`.
"""

from __future__ import annotations

import numpy as np
import torch

from helpers.check import Wrong
from helpers.embeddings import GPTEmbedding, sinusoidal_positions


def check_table_sizes(my_table_sizes) -> str:
    """2.1: ``my_table_sizes(vocab_size, context_length, emb_dim)`` -> (token, position) counts."""
    cases = [(50257, 1024, 768), (50257, 1024, 1600), (10, 4, 3), (7, 7, 1)]
    for vocab, ctx, width in cases:
        with torch.device("meta"):  # shapes only, no memory
            layer = GPTEmbedding(vocab, ctx, width)
        want = (layer.tok_emb.weight.numel(), layer.pos_emb.weight.numel())
        got = my_table_sizes(vocab, ctx, width)
        if isinstance(got, (tuple, list)) and tuple(got) == want:
            continue
        raise Wrong(
            f"On vocab_size={vocab}, context_length={ctx}, emb_dim={width} you said {got!r}, "
            f"the tables hold {want}. Hint: each table has one row per token (or per position) "
            "and emb_dim columns; answer (token count, position count)."
        )
    return "GPT-2 small and XL, and two tiny tables"


def check_top_by_dot(my_top_by_dot) -> str:
    """2.2: ``my_top_by_dot(vectors, i, topn)`` -> indices of the rows with the largest dot
    product with row ``i``, ``i`` itself left out, ties to the smaller index."""
    rng = np.random.default_rng(0)
    short = rng.normal(size=(6, 4))
    # a long vector wins by the dot product even when its direction is further away
    long_rows = np.array([[1.0, 0.0], [0.9, 0.1], [5.0, 4.0], [0.8, -0.1], [-1.0, 0.0]])
    tied = np.array([[1.0, 0.0], [1.0, 1.0], [0.5, 0.0], [1.0, -1.0], [0.0, 1.0]])
    cases = [
        ("6 random rows, query 0, topn 3", short, 0, 3),
        ("a long row less aligned than two short ones, query 0, topn 2", long_rows, 0, 2),
        ("rows 1 and 3 tied for query 0, topn 3", tied, 0, 3),
        ("topn equal to all the other rows", short, 4, 5),
    ]
    for name, vectors, i, topn in cases:
        scores = vectors @ vectors[i]
        order = [j for j in np.argsort(-scores, kind="stable") if j != i]
        want = [int(j) for j in order[:topn]]
        got = my_top_by_dot(vectors.copy(), i, topn)
        got = [int(j) for j in got] if isinstance(got, (list, tuple, np.ndarray)) else got
        if got == want:
            continue
        if isinstance(got, list) and i in got:
            hint = "leave the query's own row out"
        elif "long row" in name:
            hint = "rank by the raw dot product, without dividing by the lengths"
        else:
            hint = "largest score first, and on a tie the smaller index first (a stable sort)"
        raise Wrong(f"On {name} you returned {got!r}, expected {want}. Hint: {hint}.")
    return "random rows, a very long row, a tie, and topn covering every other row"


def check_shift_matrix(my_shift_matrix) -> str:
    """2.3: ``my_shift_matrix(k, emb_dim)`` -> ``M`` with ``PE[p + k] = M @ PE[p]``."""
    for k, width in [(5, 64), (1, 2), (0, 8), (37, 16)]:
        table = sinusoidal_positions(100, width).double()  # (T, C)
        got = my_shift_matrix(k, width)
        case = f"k={k}, emb_dim={width}"
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != (width, width):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise Wrong(f"On {case} you returned {shape}; expected a ({width}, {width}) tensor.")
        shifted = table[: 100 - k] @ got.double().T  # row p becomes M PE_p
        err = (shifted - table[k:]).abs().max().item()
        if err < 1e-4:
            continue
        back = (table[k:] @ got.double().T - table[: 100 - k]).abs().max().item()
        hint = (
            "your matrix moves k positions backwards: check the sign of the sine terms"
            if back < 1e-4
            else "pair i holds (sin, cos) of p * w_i with w_i = 10000**(-2i / emb_dim); the "
            "angle-addition formulas give one 2x2 block per pair"
        )
        raise Wrong(f"On {case}, M PE_p misses PE_(p+k) by up to {err:.3f}. Hint: {hint}.")
    return "k = 0, 1, 5 and 37, widths from 2 to 64, on 100 positions"


def _unit(v):
    return v / np.linalg.norm(v)


def check_odd_one_out(my_odd_one_out) -> str:
    """2.4: ``my_odd_one_out(words, vectors)`` -> the word least similar to the mean direction;
    ``vectors[word]`` is the word's vector (a dict here, gensim's ``wv`` in the chapter)."""
    e = np.eye(4)
    cases = {
        "four words, one pointing elsewhere": {
            "a": e[0] + 0.1 * e[1], "b": e[0] + 0.2 * e[2], "c": e[0], "d": e[3]},
        "a long vector that would drag the raw mean towards it": {
            "a": e[0], "b": e[0] + 0.1 * e[2], "c": e[0] + 0.1 * e[1], "d": 30 * e[1] + e[3]},
        "three words": {"x": e[1] + 0.3 * e[0], "y": e[1], "z": e[2] + 0.5 * e[1]},
    }
    for name, vectors in cases.items():
        words = list(vectors)
        units = np.stack([_unit(vectors[w]) for w in words])
        want = words[int(np.argmin(units @ _unit(units.mean(axis=0))))]
        got = my_odd_one_out(list(words), dict(vectors))
        if got == want:
            continue
        hint = (
            "average the unit vectors, so that a long vector counts as much as a short one"
            if "long" in name
            else "return the word whose cosine similarity with the mean is the lowest"
        )
        raise Wrong(f"On {name} ({words}) you said {got!r}, expected {want!r}. Hint: {hint}.")
    return "made-up vectors, one of them very long, with three and four words"


def check_embed_last(my_embed_last) -> str:
    """2.5: ``my_embed_last(module, ids)`` -> the embeddings of the last ``context_length`` ids."""
    gen = torch.Generator().manual_seed(0)
    module = GPTEmbedding(50, 8, 4)
    for name, shape in [("(1, 11)", (1, 11)), ("(2, 9)", (2, 9)), ("(2, 8)", (2, 8)),
                        ("(3, 1)", (3, 1))]:
        ids = torch.randint(0, 50, shape, generator=gen)
        want = module(ids[:, -8:])
        with torch.no_grad():
            got = my_embed_last(module, ids.clone())
        case = f"a batch of shape {name} with context_length 8"
        if isinstance(got, torch.Tensor) and got.shape == want.shape and torch.equal(got, want):
            continue
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise Wrong(
                f"On {case} you returned {shape}, expected {tuple(want.shape)}. Hint: slice the "
                "token dimension (dim 1), and a batch that already fits stays whole."
            )
        raise Wrong(
            f"On {case} your embeddings differ from the module's on the kept tokens. Hint: keep "
            "the most recent tokens, the last ones, and let the module give them positions."
        )
    return "batches longer than, equal to and shorter than the context, one token included"


CHECKS = {
    "2.1": check_table_sizes,
    "2.2": check_top_by_dot,
    "2.3": check_shift_matrix,
    "2.4": check_odd_one_out,
    "2.5": check_embed_last,
}
