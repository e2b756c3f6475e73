"""helpers.check, the core of the exercise checks: stubs, unknown exercises, the reader's errors."""

from helpers.check import NOT_ATTEMPTED, Verdict, check


def stub(*args):
    raise NotImplementedError


def divides_by_zero(n_tokens, batch_size, context_length, stride):
    return n_tokens // 0  # the reader's line that the verdict names


def test_a_stub_is_not_attempted_never_a_failure():
    for answer in (stub, ..., NotImplemented):
        verdict = check("1.2", answer)
        assert verdict.passed is None and not verdict
        assert verdict.message == NOT_ATTEMPTED
        assert repr(verdict).startswith("Exercise 1.2: not attempted yet.")


def test_a_value_stub_is_not_attempted():
    assert check("1.4", ...).passed is None


def test_an_unknown_exercise_is_one_sentence():
    no_check = check("1.99", 3)
    assert no_check.passed is False
    assert "no check for this exercise; the checked ones of Chapter 1 are 1.1" in repr(no_check)
    assert "Chapter 42 has no exercise checks" in check("42.1", 3).message
    assert "is not an exercise number" in check("x.1", 3).message


def test_an_exception_in_the_readers_code_names_its_line():
    verdict = check("1.2", divides_by_zero)
    assert verdict.passed is False
    assert "raised ZeroDivisionError" in verdict.message
    assert "of your code: `return n_tokens // 0" in verdict.message
    assert "Traceback" not in verdict.message


def test_a_verdict_is_its_sentence():
    verdict = Verdict("3.2", True, "right. Checked on d_out = 1.")
    assert repr(verdict) == str(verdict) == "Exercise 3.2: right. Checked on d_out = 1."
    assert verdict
