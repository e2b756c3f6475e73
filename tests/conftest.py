"""Shared fixtures. The test machines have no network: data comes from data/ (see
data/README.md)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.data import fetch_the_verdict

# One thread: the test machines are shared, and the CPU budget of the fast suite (STYLE.md) is
# counted in CPU seconds; more threads only add synchronisation work at these tiny sizes.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]


def pytest_report_header(config):
    """Say which processor the stored outputs come from, and warn when it is not this one: the
    training chapters' numbers depend on the processor's float kernels (see book/running.md)."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import execute
    finally:
        sys.path.pop(0)
    table = execute.TIMES.read_text(encoding="utf-8") if execute.TIMES.exists() else ""
    stored = {m[3] for m in map(execute.ROW.match, table.splitlines()) if m}
    here = execute.processor()
    if stored and stored != {here}:
        return (
            f"stored outputs were made on {', '.join(sorted(stored))}; this machine is {here}. "
            "The training chapters' numbers depend on the processor: if strict nbval fails "
            "there, re-execute the chapters here (tools/execute.py)."
        )
    return f"stored outputs were made on this processor ({here})"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def verdict_text() -> str:
    return fetch_the_verdict(ROOT / "data").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """The book built once per test session, as `make book` builds it (Sphinx warnings are errors).
    Returns the folder of the HTML pages."""
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run(
        [
            str(jb),
            "build",
            str(ROOT),
            "--path-output",
            str(out),
            "--warningiserror",
            "--nitpick",
            "--keep-going",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        pytest.fail(f"jupyter-book build failed:\n{result.stdout[-6000:]}{result.stderr[-6000:]}")
    return out / "_build" / "html"
