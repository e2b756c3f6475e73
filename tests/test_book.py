"""The book builds with Jupyter Book 1.x, Sphinx warnings treated as errors (the same command as `make book`)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_book_builds_without_warnings(tmp_path):
    jb = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run(
        [str(jb), "build", str(ROOT), "--path-output", str(tmp_path), "--warningiserror", "--nitpick", "--keep-going"],
        capture_output=True, text=True, timeout=900,
    )
    log = result.stdout[-6000:] + result.stderr[-6000:]
    assert result.returncode == 0, f"jupyter-book build failed:\n{log}"
    html = tmp_path / "_build" / "html"
    for page in ["book/intro.html", "chapters/ch01_tokenization.html", "book/references.html", "search.html"]:
        assert (html / page).exists(), f"{page} was not built"
    ch1 = (html / "chapters/ch01_tokenization.html").read_text()
    assert "colab.research.google.com" in ch1, "the chapter page has no Colab launch button"
