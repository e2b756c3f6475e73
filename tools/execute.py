"""Execute chapter notebooks top to bottom in a fresh kernel and store their outputs.

    .venv/bin/python tools/execute.py chapters/ch01_tokenization.ipynb [more.ipynb ...]

The notebook is first refreshed from its py:percent twin when the twin is newer (so you may edit
either file), then run in a new kernel with the chapter folder as working directory, then saved,
and its twin rewritten from it. Prints the wall-clock time of each run (the budgets in README.md).
"""

import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

BIN = Path(sys.executable).parent


def execute(path: Path, timeout: int = 600) -> float:
    twin = path.with_suffix(".py")
    if twin.exists() and (not path.exists() or twin.stat().st_mtime > path.stat().st_mtime):
        subprocess.run(
            [str(BIN / "jupytext"), "--sync", str(twin)], check=True, capture_output=True
        )
    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    start = time.perf_counter()
    NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    seconds = time.perf_counter() - start
    nbformat.write(nb, path)
    subprocess.run([str(BIN / "jupytext"), "--sync", str(path)], check=True, capture_output=True)
    return seconds


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for arg in sys.argv[1:]:
        print(f"{arg}: executed in {execute(Path(arg)):.1f} s")
