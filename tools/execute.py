"""Execute chapter notebooks top to bottom in a fresh kernel and store their outputs.

    .venv/bin/python tools/execute.py chapters/ch01_tokenization.ipynb [more.ipynb ...]

The notebook is first refreshed from its py:percent twin when the twin is newer (so you may edit
either file), then run in a new kernel with the chapter folder as working directory, then saved,
and its twin rewritten from it. Progress bars are stored as their final state only (see
`coalesce_streams`). Prints the wall-clock time of each run (the budgets in README.md) and
records it, with the processor it ran on, in `book/tables/chapter_times.md`, the table that
`book/running.md` shows.
"""

import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
TIMES = ROOT / "book" / "tables" / "chapter_times.md"
ROW = re.compile(r"^\| `(ch\d\d_\w+)` \| ([\d.]+) \| (.*) \|$")


def processor() -> str:
    """The CPU's model name and core count, as /proc/cpuinfo gives them (or the platform's)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    names = re.findall(r"^model name\s*:\s*(.+)$", info, flags=re.M)
    return f"{names[0].strip()}, {len(names)} cores" if names else platform.machine()


def record_time(stem: str, seconds: float, cpu: str, table: Path = TIMES) -> None:
    """Put `stem`'s execution time in the table: one row per chapter, in book order, a total."""
    rows = {}
    if table.exists():
        for line in table.read_text(encoding="utf-8").splitlines():
            match = ROW.match(line)
            if match:
                rows[match[1]] = (float(match[2]), match[3])
    rows[stem] = (seconds, cpu)
    total = sum(s for s, _ in rows.values())
    lines = [
        "| Chapter | Seconds | Processor |",
        "|---|---|---|",
        *(f"| `{name}` | {s:.0f} | {c} |" for name, (s, c) in sorted(rows.items())),
        f"| all {len(rows)} | {total:.0f} | |",
    ]
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")


def terminal_text(text: str) -> str:
    """What a terminal shows of `text`: each line keeps what follows its last carriage return."""
    lines = []
    for line in text.split("\n"):
        parts = [part for part in line.split("\r") if part]
        lines.append(parts[-1] if parts else "")
    return "\n".join(lines)


def coalesce_streams(nb) -> None:
    """Store every progress bar (stdout or stderr) as its final state: merge neighbouring outputs of
    one stream, keep what a terminal shows, and drop an unfinished line that a later output of the
    same stream overwrites with a carriage return (a bar interrupted by a print)."""
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        merged = []
        for out in cell["outputs"]:
            if (
                out["output_type"] == "stream"
                and merged
                and merged[-1]["output_type"] == "stream"
                and merged[-1]["name"] == out["name"]
            ):
                merged[-1]["text"] += out["text"]
            else:
                merged.append(out)
        last = {}  # stream name -> its latest output
        for out in merged:
            if out["output_type"] != "stream":
                continue
            raw = out["text"]
            out["text"] = terminal_text(raw)
            before = last.get(out["name"])
            if raw.startswith("\r") and before is not None and not before["text"].endswith("\n"):
                before["text"] = before["text"][: before["text"].rfind("\n") + 1]
            last[out["name"]] = out
        cell["outputs"] = [o for o in merged if o["output_type"] != "stream" or o["text"]]


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
    coalesce_streams(nb)
    nbformat.write(nb, path)
    subprocess.run([str(BIN / "jupytext"), "--sync", str(path)], check=True, capture_output=True)
    return seconds


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cpu = processor()
    for arg in sys.argv[1:]:
        seconds = execute(Path(arg))
        record_time(Path(arg).stem, seconds, cpu)
        print(f"{arg}: executed in {seconds:.1f} s")
