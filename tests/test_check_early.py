"""The checks of Chapters 1 to 4 (helpers.check_ch01..04): each worked solution passes, typical
wrong answers fail with the intended hint, a stub is not attempted, the reader's errors are one
sentence. The solutions are written again here, as in the chapters (they never live in helpers/).
"""

import math
from collections import Counter

import numpy as np
import pytest
import regex
import torch
from torch import nn

from helpers.check import check
from helpers.tokenizer import GPT2_SPLIT_PATTERN


# ----------------------------------------------------------------------------- Chapter 1
def _vocab(merges):
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), new_id in sorted(merges.items(), key=lambda item: item[1]):
        vocab[new_id] = vocab[a] + vocab[b]
    return vocab


def decode(ids, merges):
    return b"".join(_vocab(merges)[i] for i in ids).decode("utf-8", errors="replace")


def decode_token_by_token(ids, merges):
    vocab = _vocab(merges)
    return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)


def decode_strict(ids, merges):
    return b"".join(_vocab(merges)[i] for i in ids).decode("utf-8")


def num_batches(n, batch_size, context_length, stride):
    return len(range(0, n - context_length, stride)) // batch_size


def _pairs(text):
    chunks = regex.findall(GPT2_SPLIT_PATTERN, text)
    return Counter(p for c in chunks for p in zip(c.encode(), c.encode()[1:]))


def first_merge(text):
    counts = _pairs(text)
    return min(counts, key=lambda p: (-counts[p], p))


def first_merge_across_chunks(text):
    counts = Counter(zip(text.encode(), text.encode()[1:]))
    return min(counts, key=lambda p: (-counts[p], p))


def windows(ids, context_length, stride):
    starts = range(0, len(ids) - context_length, stride)
    return [(ids[s : s + context_length], ids[s + 1 : s + context_length + 1]) for s in starts]


# ----------------------------------------------------------------------------- Chapter 2
def top_by_dot(vectors, i, topn):
    return [int(j) for j in np.argsort(-(vectors @ vectors[i]), kind="stable") if j != i][:topn]


def top_with_the_query(vectors, i, topn):
    return [int(j) for j in np.argsort(-(vectors @ vectors[i]), kind="stable")][:topn]


def top_by_cosine(vectors, i, topn):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return top_by_dot(unit, i, topn)


def shift_matrix(k, emb_dim, sign=1.0):
    omegas = 10000 ** (-torch.arange(0, emb_dim, 2, dtype=torch.float64) / emb_dim)
    m = torch.zeros(emb_dim, emb_dim, dtype=torch.float64)
    for i, w in enumerate(omegas.tolist()):
        c, s = math.cos(k * w), sign * math.sin(k * w)
        m[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = torch.tensor([[c, s], [-s, c]])
    return m


def odd_one_out(words, vectors, unit=True, pick=np.argmin):
    rows = np.stack([vectors[w] / (np.linalg.norm(vectors[w]) if unit else 1) for w in words])
    mean = rows.mean(axis=0)
    return words[int(pick(rows @ mean / np.linalg.norm(rows, axis=1)))]


# ----------------------------------------------------------------------------- Chapter 3
def context_vector(rows, i, exp=True, safe=True):
    scores = [sum(a * b for a, b in zip(rows[i], row)) for row in rows]
    top = max(scores) if safe else 0.0
    exps = [math.exp(s - top) if exp else s for s in scores]
    weights = [e / sum(exps) for e in exps]
    return [sum(w * row[c] for w, row in zip(weights, rows)) for c in range(len(rows[i]))]


def head_weights(layer, x, head, scale=True, mask=True, dim=-1):
    rows_h = slice(head * layer.head_dim, (head + 1) * layer.head_dim)

    def project(linear):
        out = x @ linear.weight[rows_h].T
        return out if linear.bias is None else out + linear.bias[rows_h]

    scores = project(layer.W_query) @ project(layer.W_key).transpose(1, 2)
    scores = scores / math.sqrt(layer.head_dim) if scale else scores
    if mask:
        hidden = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).triu(1)
        scores = scores.masked_fill(hidden, float("-inf"))
    return torch.softmax(scores, dim=dim)


def moved_outputs(layer, x, position, clone=True):
    changed = x.clone() if clone else x  # without the copy, x changes too
    changed[0, position] += 1.0
    before, after = layer(x)[0], layer(changed)[0]
    return [i for i in range(x.shape[1]) if not torch.equal(before[i], after[i])]


def moved_outputs_whole(layer, x, position):
    changed = x.clone()
    changed[0, position] += 1.0
    return list(range(x.shape[1])) if not torch.equal(layer(x), layer(changed)) else []


def predicted_std(weights, p):
    return (p / (1 - p) * weights.square().sum(dim=-1)).sqrt()


# ----------------------------------------------------------------------------- Chapter 4
class RMSNorm(nn.Module):
    def __init__(self, emb_dim, eps=1e-5):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(emb_dim))

    def forward(self, x):
        return x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


class RMSNormEpsOutside(RMSNorm):
    def forward(self, x):
        return x / (torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True)) + self.eps) * self.weight


class RMSNormCentered(RMSNorm):
    def forward(self, x):
        return super().forward(x - x.mean(dim=-1, keepdim=True))


class RMSNormNoWeight(RMSNorm):
    def forward(self, x):
        return x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)


def bisect(f, lo, hi, steps=60, swapped=False):
    for _ in range(steps):
        mid = (lo + hi) / 2
        left = f(mid) < 0
        lo, hi = (mid, hi) if left != swapped else (lo, mid)
    return (lo + hi) / 2


def parallel_block(block, x):
    h = block.norm1(x)
    return x + block.att(h) + block.ff(h)


SOLUTIONS = {
    "1.1": decode, "1.2": num_batches, "1.3": first_merge, "1.4": (7, 1), "1.5": windows,
    "2.1": lambda v, c, e: (v * e, c * e), "2.2": top_by_dot, "2.3": shift_matrix,
    "2.4": odd_one_out, "2.5": lambda module, ids: module(ids[:, -module.context_length :]),
    "3.1": context_vector, "3.2": lambda d: 4 * d * d + 4 * d, "3.3": head_weights,
    "3.4": moved_outputs, "3.5": predicted_std,
    "4.1": RMSNorm, "4.3": bisect, "4.5": parallel_block,
}

WRONG = [  # (exercise, a typical wrong answer, a distinctive part of the intended message)
    ("1.1", decode_token_by_token, "decode once at the end"),
    ("1.1", decode_strict, "raised UnicodeDecodeError at line"),
    ("1.2", lambda n, b, t, s: (n - t) // s // b, "the last window counts too"),
    ("1.2", lambda n, b, t, s: -(-len(range(0, n - t, s)) // b), "drop_last=True"),
    ("1.3", first_merge_across_chunks, "never across two"),
    ("1.3", lambda text: _pairs(text).most_common(1)[0][0], "on a tie BPE takes the smaller"),
    ("1.4", (13, 1), "spelled with ordinary merges"),
    ("1.4", (7, 13), "one entry of the vocabulary"),
    ("1.5", lambda ids, t, s: windows(ids, t, s)[:-1], "the last window that fits counts"),
    ("1.5", lambda ids, t, s: [(x, x) for x, _ in windows(ids, t, s)], "shifted one token"),
    ("2.1", lambda v, c, e: (v * e, v * e), "one row per token (or per position)"),
    ("2.1", lambda v, c, e: v * e + c * e, "answer (token count, position count)"),
    ("2.2", top_with_the_query, "leave the query's own row out"),
    ("2.2", top_by_cosine, "without dividing by the lengths"),
    ("2.3", lambda k, c: shift_matrix(k, c, sign=-1.0), "moves k positions backwards"),
    ("2.3", lambda k, c: shift_matrix(k, c).T @ shift_matrix(1, c), "angle-addition formulas"),
    ("2.4", lambda w, v: odd_one_out(w, v, unit=False), "average the unit vectors"),
    ("2.4", lambda w, v: odd_one_out(w, v, pick=np.argmax), "cosine similarity with the mean is"),
    ("2.5", lambda module, ids: module(ids[:, : module.context_length]), "keep the most recent"),
    ("2.5", lambda module, ids: module(ids[:, -module.context_length + 1 :]), "slice the token"),
    ("3.1", lambda rows, i: context_vector(rows, i, exp=False), "exp(score) divided by the sum"),
    ("3.1", lambda rows, i: context_vector(rows, i, safe=False), "raised OverflowError at line"),
    ("3.2", lambda d: 3 * d * d + 3 * d, "the output projection's included"),
    ("3.2", lambda d: 4 * d * d, "every bias vector"),
    ("3.3", lambda lyr, x, h: head_weights(lyr, x, h, scale=False), "scale them as Section 3.5"),
    ("3.3", lambda lyr, x, h: head_weights(lyr, x, h, mask=False), "mask the scores above"),
    ("3.3", lambda lyr, x, h: head_weights(lyr, x, h, dim=-2), "softmax over the last axis"),
    ("3.3", lambda lyr, x, h: head_weights(lyr, x, (h + 1) % lyr.num_heads), "its own block"),
    ("3.4", lambda lyr, x, p: moved_outputs(lyr, x, p, clone=False), "change a copy of x"),
    ("3.4", moved_outputs_whole, "not by those before"),
    ("3.5", lambda w, p: (p * w.square().sum(dim=-1)).sqrt(), "work out its variance"),
    ("3.5", lambda w, p: p / (1 - p) * w.square().sum(dim=-1), "take the square root"),
    ("4.1", RMSNormEpsOutside, "eps goes inside the square root"),
    ("4.1", RMSNormCentered, "no mean is subtracted"),
    ("4.1", RMSNormNoWeight, "multiply by the weight gamma"),
    ("4.3", lambda f, lo, hi: bisect(f, lo, hi, steps=15), "run enough steps"),
    ("4.3", lambda f, lo, hi: bisect(f, lo, hi, swapped=True), "mid becomes the new lo"),
    ("4.5", lambda block, x: block(x), "that is the sequential block"),
    ("4.5", lambda block, x: parallel_block(block, x) - x, "keep the shortcut"),
]


@pytest.mark.parametrize("exercise", sorted(SOLUTIONS))
def test_the_worked_solution_passes(exercise):
    verdict = check(exercise, SOLUTIONS[exercise])
    assert verdict.passed is True, verdict.message
    assert verdict.message.startswith("right. Checked on ")


@pytest.mark.parametrize("exercise,answer,fragment", WRONG, ids=[f"{w[0]}-{w[2]}" for w in WRONG])
def test_a_typical_wrong_answer_gets_its_hint(exercise, answer, fragment):
    verdict = check(exercise, answer)
    assert verdict.passed is False
    assert fragment in verdict.message, verdict.message
    assert "Traceback" not in verdict.message


def test_every_checked_exercise_has_two_wrong_answers():
    counts = Counter(exercise for exercise, _, _ in WRONG)
    assert {e for e, n in counts.items() if n >= 2} == set(SOLUTIONS)


def _raises(*args):
    return 1 / 0


class _Stub(nn.Module):
    def __init__(self, emb_dim, eps=1e-5):
        super().__init__()

    def forward(self, x):
        raise NotImplementedError


class _Broken(RMSNorm):
    def forward(self, x):
        return x / 0 + self.missing  # AttributeError on the reader's line


@pytest.mark.parametrize("exercise", sorted(SOLUTIONS))
def test_a_stub_is_not_attempted_and_an_error_names_the_line(exercise):
    stub = ... if exercise == "1.4" else _Stub if exercise == "4.1" else _stub
    assert check(exercise, stub).passed is None
    if exercise == "1.4":
        assert "not a pair" in check(exercise, 7).message
        return
    broken = check(exercise, _Broken if exercise == "4.1" else _raises)
    assert broken.passed is False
    assert "at line" in broken.message and "of your code: `" in broken.message, broken.message


def _stub(*args):
    raise NotImplementedError


@pytest.mark.parametrize("twin", ["ch01_tokenization", "ch02_embeddings", "ch03_attention",
                                  "ch04_block"])
def test_each_exercise_has_its_stub_and_check_or_says_it_is_a_discussion(root, twin):
    source = (root / "chapters" / f"{twin}.py").read_text()
    exercises = regex.findall(r"\*\*Exercise (\d+\.\d+)\.\*\*", source)
    chapter = exercises[0].split(".")[0]
    checks = __import__(f"helpers.check_ch{int(chapter):02d}", fromlist=["CHECKS"]).CHECKS
    for number in exercises:
        part = source.split(f"**Exercise {number}.**")[1].split("# %% tags=[\"hide-cell\"]")[0]
        if number in checks:
            assert "# your answer" in part.lower(), number
            assert regex.search(rf'\n# %%\ncheck\("{number}", [Mm]y_?[A-Za-z_]+\)\n', part), number
        else:
            assert "A discussion" in part or "An experiment" in part, number
