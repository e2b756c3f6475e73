"""Checks for the reader's own answers to the exercises (every chapter).

In a chapter, each exercise with a code or value answer has a stub that is the reader's to fill in
and a cell that checks it::

    def my_causal_attention(q, k, v):
        raise NotImplementedError  # your answer here

    check("3.2", my_causal_attention)

:func:`check` runs the answer on the exercise's cases (the edge cases that matter included) and
answers in one or two sentences: not attempted yet, what is wrong on which case with a hint, or
right with what it was checked on. It never raises on the reader's code: an exception inside their
function is reported in one sentence with the line of their code that raised it.

The cases live in one module per chapter, ``helpers.check_chNN``, as a dict ``CHECKS`` from the
exercise's number to a function that takes the answer, raises :class:`Wrong` with a message when
the answer fails a case, and returns what it was checked on when every case passes. Those modules
never show a solution's code; they compare the answer's results with the library's own.
"""

from __future__ import annotations

import importlib
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

HELPERS_DIR = Path(__file__).resolve().parent


class Wrong(Exception):
    """The answer failed a case: the message says what is wrong, on which case, and a hint."""


def as_number(x) -> float:
    """``x`` as a float if it is one number (a Python int or float, or a one-element tensor),
    else :class:`Wrong` saying what it is instead."""
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        return x.item()
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    raise Wrong(f"The answer should be a number, not {type(x).__name__}.")


@dataclass(frozen=True)
class Verdict:
    """What :func:`check` found: ``passed`` is True, False, or None for not attempted yet."""

    exercise: str
    passed: bool | None
    message: str

    def __str__(self) -> str:
        return f"Exercise {self.exercise}: {self.message}"

    def __repr__(self) -> str:  # a notebook shows the sentence, not the dataclass
        return str(self)

    def __bool__(self) -> bool:
        return bool(self.passed)


NOT_ATTEMPTED = (
    "not attempted yet. Write your answer in the cell above (replace the "
    "`raise NotImplementedError` or the `...`), then run this cell again."
)


def _is_stub(answer: object) -> bool:
    return answer is Ellipsis or answer is NotImplemented


def _where_in_readers_code(exc: BaseException) -> str:
    """'line N of your code: `text`' for the innermost frame of the traceback outside helpers/."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__)
        if not Path(f.filename).resolve().is_relative_to(HELPERS_DIR)
    ]
    if not frames:
        return ""
    frame = frames[-1]
    code = f": `{frame.line.strip()}`" if frame.line else ""
    return f" at line {frame.lineno} of your code{code}"


def find_check(exercise: str):
    """The function that runs exercise ``exercise``'s cases (``KeyError`` if it has none)."""
    chapter = exercise.split(".")[0]
    if not chapter.isdigit():
        raise KeyError(f"{exercise!r} is not an exercise number such as '3.2'.")
    try:
        module = importlib.import_module(f"helpers.check_ch{int(chapter):02d}")
    except ModuleNotFoundError:
        raise KeyError(f"Chapter {chapter} has no exercise checks.") from None
    if exercise not in module.CHECKS:
        raise KeyError(
            f"no check for this exercise; the checked ones of Chapter {chapter} are "
            f"{', '.join(sorted(module.CHECKS))}."
        )
    return module.CHECKS[exercise]


def check(exercise: str, answer: object) -> Verdict:
    """Check the reader's answer to exercise ``exercise`` (e.g. ``"3.2"``); one or two sentences.

    A stub (``...``, or a function that raises ``NotImplementedError``) is "not attempted yet",
    never a failure. An exception raised inside the reader's code is reported with its line."""
    try:
        cases = find_check(exercise)
    except KeyError as missing:
        return Verdict(exercise, False, str(missing.args[0]))
    if _is_stub(answer):
        return Verdict(exercise, None, NOT_ATTEMPTED)
    try:
        checked_on = cases(answer)
    except NotImplementedError:
        return Verdict(exercise, None, NOT_ATTEMPTED)
    except Wrong as wrong:
        return Verdict(exercise, False, f"not yet. {wrong}")
    except Exception as exc:  # the reader's code raised: one sentence, never a traceback
        return Verdict(
            exercise,
            False,
            f"your code raised {type(exc).__name__}{_where_in_readers_code(exc)} "
            f"({exc}). Run it on the smallest case by hand to see where it goes wrong.",
        )
    return Verdict(exercise, True, f"right. Checked on {checked_on}.")
