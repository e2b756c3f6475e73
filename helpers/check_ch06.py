"""The checks of Chapter 6's exercises (pretraining); see :mod:`helpers.check`.

The cases are small lists and tensors, compared with :mod:`helpers.train`'s own results or with
values worked out in advance; no check trains a model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from helpers.check import Wrong
from helpers.train import warmup_cosine


def _number(x) -> float:
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        return x.item()
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    raise Wrong(f"The answer should be a number, not {type(x).__name__}.")


def check_6_1(fn) -> str:
    train_ids, vocab = [0, 1, 1, 2, 2, 2, 3, 3, 3, 3], 6
    cases = [("targets all seen in training, k = 1", [1, 2, 3, 3], 1.0),
             ("a target never seen in training (token 5), k = 0.01", [5, 3, 0], 0.01),
             ("a single target, k = 0.1", [2], 0.1)]
    for name, targets, k in cases:
        counts = torch.bincount(torch.tensor(train_ids), minlength=vocab).double()
        probs = (counts + k) / (len(train_ids) + k * vocab)
        expected = -probs[targets].log().mean().item()
        got = _number(fn(list(train_ids), list(targets), vocab, k))
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


def check_6_2(fn) -> str:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 7, generator=gen)  # (B, T, V)
    pad = 6
    cases = {"a padded batch": torch.tensor([[1, 2, 3, 0], [4, 5, pad, pad], [2, pad, pad, pad]]),
             "a batch with no padding": torch.tensor([[1, 2, 3, 0], [4, 5, 1, 1], [2, 0, 0, 3]])}
    for name, targets in cases.items():
        expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=pad)
        got = _number(fn(logits.clone(), targets.clone(), pad))
        per_token = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
        keep = targets.flatten() != pad
        if math.isclose(got, per_token.mean().item(), rel_tol=1e-5) and not keep.all():
            raise Wrong(f"On {name}, your loss counts the padding targets. Hint: leave the "
                        "positions whose target is the pad id out of the mean.")
        if math.isclose(got, (per_token * keep).mean().item(), rel_tol=1e-5) and not keep.all():
            raise Wrong(f"On {name}, your loss divides by every position, padding included, so "
                        "padding dilutes it. Hint: divide by the number of real targets.")
        if not math.isclose(got, expected.item(), rel_tol=1e-5):
            raise Wrong(f"On {name}, you gave {got:.4f}, not the loss without padding. Hint: "
                        "the cross-entropy of each real target, averaged over them.")
    return "a padded batch (a row of one real target included) and a batch without padding"


def check_6_3(answer) -> str:
    if not isinstance(answer, bool):
        raise Wrong("Answer True (the same losses) or False (different losses).")
    if answer:
        raise Wrong("The weights and the optimizer are restored, but is that all a loss "
                    "depends on? Hint: which batches come next, and which activations dropout "
                    "zeroes, come from random generators.")
    return "the prediction (the run in the cell below shows it)"


def check_6_4(answer) -> str:
    if answer not in (0.5, 1.0, 2.0):
        raise Wrong("Answer one of the temperatures 0.5, 1.0 or 2.0.")
    if answer != 0.5:
        raise Wrong(f"At temperature {answer} the distribution is flatter than at 0.5. Hint: "
                    "which temperature sticks closest to the letters the model has seen most?")
    return "the prediction (the run in the cell below shows it)"


CASES_6_5 = [  # (validation losses, patience, (best, stop)) worked out by hand
    ([5.0, 4.0, 3.0, 2.0, 1.0], 2, (4, 4), "losses that fall to the end (the last evaluation)"),
    ([3.0, 2.0, 5.0, 6.0, 7.0, 1.0], 3, (1, 4), "a rise that lasts exactly the patience"),
    ([5.0, 4.0, 4.0, 4.0, 3.0], 2, (1, 3), "a tie with the best loss (not an improvement)"),
    ([2.0], 1, (0, 0), "a single evaluation"),
]


def check_6_5(fn) -> str:
    for losses, patience, expected, name in CASES_6_5:
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


def check_6_6(fn) -> str:
    settings = [(1e-3, 20, 4, 1e-4), (5e-4, 9, 1, 5e-5), (1e-3, 10, 0, 0.0)]
    for peak, total, warmup, floor in settings:
        reference = warmup_cosine(peak, total, warmup, floor)
        name = f"peak {peak}, {total} steps, {warmup} warmup, floor {floor}"
        got = [_number(fn(step, peak, total, warmup, floor)) for step in range(total)]
        wrong = [s for s in range(total)
                 if not math.isclose(got[s], reference(s), rel_tol=1e-9, abs_tol=1e-15)]
        if not wrong:
            continue
        step = wrong[0]
        case = f"At step {step} of {name}"
        if step < warmup and math.isclose(got[step], peak * step / warmup, abs_tol=1e-15):
            raise Wrong(f"{case}, your rate is one warmup step behind. Hint: step 0 is the "
                        "first step and already uses one step's worth of the peak.")
        if got[-1] > floor + 1e-15:
            raise Wrong(f"At the last step of {name}, your rate {got[-1]:.3g} is above the "
                        "floor. Hint: the decay spans total - warmup - 1 step intervals.")
        raise Wrong(f"{case}, your rate {got[step]:.6g} differs from {reference(step):.6g}. "
                    "Hint: the cosine goes from the peak to the floor, not to zero.")
    return "every step of three schedules (one warmup step, and no warmup at all, included)"


CHECKS = {"6.1": check_6_1, "6.2": check_6_2, "6.3": check_6_3, "6.4": check_6_4,
          "6.5": check_6_5, "6.6": check_6_6}
