"""The checks of Chapter 6's exercises (pretraining); see :mod:`helpers.check`.

The cases are small lists and tensors, compared with :mod:`helpers.train`'s own results or with
values worked out in advance; no check trains a model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from helpers.check import Wrong, as_number
from helpers.data import create_dataloader


def check_6_1(fn) -> str:
    train_ids, vocab = [0, 1, 1, 2, 2, 2, 3, 3, 3, 3], 6
    cases = [("targets all seen in training, k = 1", [1, 2, 3, 3], 1.0),
             ("a target never seen in training (token 5), k = 0.01", [5, 3, 0], 0.01),
             ("a single target, k = 0.1", [2], 0.1)]
    for name, targets, k in cases:
        counts = torch.bincount(torch.tensor(train_ids), minlength=vocab).double()
        probs = (counts + k) / (len(train_ids) + k * vocab)
        expected = -probs[targets].log().mean().item()
        got = as_number(fn(list(train_ids), list(targets), vocab, k))
        if math.isclose(got, -expected, rel_tol=1e-6):
            raise Wrong(f"On {name}, your loss has the wrong sign. Hint: a loss is the mean "
                        "*negative* log-probability.")
        if math.isclose(got, expected / math.log(2), rel_tol=1e-6):
            raise Wrong(f"On {name}, your loss is in bits. Hint: the model's loss uses the "
                        "natural logarithm.")
        if not math.isclose(got, expected, rel_tol=1e-6):
            raise Wrong(f"On {name}, you gave {got:.4f}, not the unigram loss. Hint: with k "
                        "added to every one of the V counts, the denominator must grow too, so "
                        "that the probabilities still add up to one.")
    return "seen and unseen targets, one target, and k = 1, 0.1, 0.01"


CASES_6_2 = [  # (validation losses, patience, (best, stop)) worked out by hand
    ([5.0, 4.0, 3.0, 2.0, 1.0], 2, (4, 4), "losses that fall to the end (the last evaluation)"),
    ([3.0, 2.0, 5.0, 6.0, 7.0, 1.0], 3, (1, 4), "a rise that lasts exactly the patience"),
    ([5.0, 4.0, 4.0, 4.0, 3.0], 2, (1, 3), "a tie with the best loss (not an improvement)"),
    ([2.0], 1, (0, 0), "a single evaluation"),
]


def check_6_2(fn) -> str:
    for losses, patience, expected, name in CASES_6_2:
        got = fn(list(losses), patience)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise Wrong("Your function should return a pair (best, stop) of indices.")
        best, stop = got
        case = f"{name}, {losses} with patience {patience}"
        if (best, stop) == expected:
            continue
        if name.startswith("a tie") and best > expected[0] and stop > expected[1]:
            raise Wrong(f"On {case}, you gave {got}: an equal loss is not an improvement. "
                        "Hint: compare with <, not <=.")
        if best == stop == expected[1] != expected[0]:
            raise Wrong(f"On {case}, you keep the last checkpoint. Hint: keep the one with the "
                        "lowest validation loss, not the latest.")
        if stop != expected[1]:
            raise Wrong(f"On {case}, you stop at evaluation {stop}, expected {expected[1]}. "
                        "Hint: stop at the evaluation that makes `patience` in a row without "
                        "improvement (or at the last one).")
        raise Wrong(f"On {case}, you gave {got}, expected (best, stop) = {expected}. Hint: "
                    "follow the lowest loss so far, and count the evaluations since it.")
    return "a falling curve, a tie, a rise of exactly the patience and a single evaluation"


def check_6_3(fn) -> str:
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(4, 9, generator=gen)  # (N, V)
    targets = torch.tensor([0, 3, 8, 3])
    cases = [("random logits", base, targets),
             ("logits times 1,000 (a naive softmax rounds most probabilities to 0)", 1000 * base,
              targets),
             ("one row whose target is not the largest logit", torch.tensor([[5.0, -200.0, 0.0]]),
              torch.tensor([1]))]
    for name, logits, t in cases:
        expected = F.cross_entropy(logits, t)
        got = fn(logits.clone(), t.clone())
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            raise Wrong(f"On {name}, return the mean loss as a one-number tensor, not "
                        f"{type(got).__name__}.")
        if not torch.isfinite(got):
            raise Wrong(f"On {name}, your loss is {got.item()}. Hint: subtract each row's largest "
                        "logit before exponentiating, and take the log of the sum, not of a "
                        "rounded probability.")
        if torch.isclose(got, -expected, rtol=1e-5):
            raise Wrong(f"On {name}, your loss has the wrong sign. Hint: a loss is the mean "
                        "*negative* log-probability.")
        if not torch.isclose(got.float(), expected, rtol=1e-5, atol=1e-5):
            raise Wrong(f"On {name}, you gave {got.item():.4f}, F.cross_entropy gives "
                        f"{expected.item():.4f}. Hint: the row's log-normalizer is "
                        "m + log(sum(exp(z - m))), and the loss is its mean minus the target's "
                        "logit.")
    return "random logits, logits in the thousands, and a target far below the largest logit"


def _loader_length(n_tokens, batch_size, context_length, stride, drop_last) -> int:
    return len(create_dataloader(list(range(n_tokens)), batch_size, context_length, stride=stride,
                                 shuffle=False, drop_last=drop_last))


def check_6_4(fn) -> str:
    cases = [(257, 1, 256, 256, True, "exactly one window (context_length + 1 tokens)"),
             (512, 1, 256, 256, True, "512 tokens: one token short of a second window"),
             (5000, 1, 256, 128, True, "overlapping windows (stride 128)"),
             (5000, 4, 256, 256, True, "batches of 4 with the smaller last batch dropped"),
             (5000, 4, 256, 256, False, "batches of 4 with the smaller last batch kept"),
             (1000, 3, 10, 7, False, "a stride that does not divide anything")]
    for n, b, ctx, stride, drop, name in cases:
        expected = _loader_length(n, b, ctx, stride, drop)
        got = fn(n, b, ctx, stride, drop)
        if isinstance(got, bool) or not isinstance(got, int):
            raise Wrong(f"The answer should be a whole number of steps, not {type(got).__name__}.")
        if got == expected:
            continue
        case = (f"On {name} (n_tokens={n}, batch_size={b}, context_length={ctx}, "
                f"stride={stride}, drop_last={drop})")
        windows = (n - ctx - 1) // stride + 1
        if got in (windows, -(-windows // b), windows // b):
            raise Wrong(f"{case}, you gave {got}, the loader makes {expected}. Hint: count "
                        "windows first, then batches: rounded down when drop_last drops the "
                        "smaller last batch, up when it keeps it.")
        if got == ((n - ctx) // stride + 1) // b or got == -(-((n - ctx) // stride + 1) // b):
            raise Wrong(f"{case}, you gave {got}, the loader makes {expected}. Hint: a window "
                        "needs context_length + 1 tokens, the last one being its last target.")
        raise Wrong(f"{case}, you gave {got}, the loader makes {expected}. Hint: windows start at "
                    "0, stride, 2 * stride, ... as long as context_length + 1 tokens remain.")
    return "one window, one token short, overlapping windows, drop_last both ways, odd strides"


CHECKS = {"6.1": check_6_1, "6.2": check_6_2, "6.3": check_6_3, "6.4": check_6_4}
