"""Run every appendix benchmark and write the tables the book includes (book/tables/*.md).

Run from the repository root:  .venv/bin/python benchmarks/run_all.py [--threads N]   (or: make
benchmarks) One script after another, never two at once (each measures speed or memory). About 8
minutes on a 2-core CPU. The fast test suite does not run these; the tests check the same
properties on tiny models.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "train_speed.py",
    "inference_speed.py",
    "generate.py",
    "weight_layout.py",
    "distributed.py",
    "memory.py",
]
TAKES_THREADS = {"train_speed.py", "inference_speed.py", "generate.py", "weight_layout.py"}
EXTRA = {
    "generate.py": ["--repeat", "2", "--markdown", "book/tables/generate.md"]
}  # Chapter 7's 256-token run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads for the speed tables (default: torch's choice, one per core)",
    )
    parser.add_argument("--only", nargs="*", choices=SCRIPTS, default=SCRIPTS)
    args = parser.parse_args()
    for script in args.only:
        cmd = [sys.executable, str(HERE / script), *EXTRA.get(script, [])]
        if args.threads and script in TAKES_THREADS:
            cmd += ["--threads", str(args.threads)]
        start = time.perf_counter()
        print(f"== {script}", flush=True)
        subprocess.run(cmd, check=True, cwd=HERE.parent)
        print(f"== {script} took {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
