"""The checks of Chapter 7's exercises (training well); see :mod:`helpers.check`.

The cases are small lists and tensors, compared with :mod:`helpers.train`'s own results or with
values worked out in advance; no check trains a model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from helpers.check import Wrong, as_number
from helpers.train import warmup_cosine


def check_7_1(fn) -> str:
    settings = [(1e-3, 20, 4, 1e-4), (5e-4, 9, 1, 5e-5), (1e-3, 10, 0, 0.0)]
    for peak, total, warmup, floor in settings:
        reference = warmup_cosine(peak, total, warmup, floor)
        name = f"peak {peak}, {total} steps, {warmup} warmup, floor {floor}"
        got = [as_number(fn(step, peak, total, warmup, floor)) for step in range(total)]
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


def check_7_2(answer) -> str:
    if not isinstance(answer, bool):
        raise Wrong("Answer True (the same losses) or False (different losses).")
    if answer:
        raise Wrong("The weights and the optimizer are restored, but is that all a loss "
                    "depends on? Hint: which batches come next, and which activations dropout "
                    "zeroes, come from random generators.")
    return "the prediction (the run in the cell below shows it)"


def check_7_3(fn) -> str:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 7, generator=gen)  # (B, T, V)
    pad = 6
    cases = {"a padded batch": torch.tensor([[1, 2, 3, 0], [4, 5, pad, pad], [2, pad, pad, pad]]),
             "a batch with no padding": torch.tensor([[1, 2, 3, 0], [4, 5, 1, 1], [2, 0, 0, 3]])}
    for name, targets in cases.items():
        expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=pad)
        got = as_number(fn(logits.clone(), targets.clone(), pad))
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


def check_7_4(answer) -> str:
    if answer not in (0.5, 1.0, 2.0):
        raise Wrong("Answer one of the temperatures 0.5, 1.0 or 2.0.")
    if answer != 0.5:
        raise Wrong(f"At temperature {answer} the distribution is flatter than at 0.5. Hint: "
                    "which temperature sticks closest to the letters the model has seen most?")
    return "the prediction (the run in the cell below shows it)"



CHECKS = {"7.1": check_7_1, "7.2": check_7_2, "7.3": check_7_3, "7.4": check_7_4}
