"""Run every appendix benchmark and write the tables the book includes (book/tables/*.md).

Run from the repository root:  .venv/bin/python benchmarks/run_all.py [--threads N]   (or: make
benchmarks) One script after another, never two at once (each measures speed or memory). Each
measures a speed-up side by side with its reference in one run and reports ratios. About 15
minutes on an idle 2-core CPU. The fast test suite does not run these; the tests check the same
properties on tiny models.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "tokenizer.py",
    "train_speed.py",
    "train_throughput.py",
    "book_small.py",
    "inference_speed.py",
    "generate.py",
    "op_count.py",
    "weight_layout.py",
    "distributed.py",
    "memory.py",
]
TAKES_THREADS = {
    "train_speed.py",
    "train_throughput.py",
    "book_small.py",
    "inference_speed.py",
    "generate.py",
    "weight_layout.py",
}
EXTRA = {
    "tokenizer.py": ["--markdown", "book/tables/tokenizer.md"],
    "train_throughput.py": ["--markdown", "book/tables/train_vs_transformers.md"],
    "op_count.py": ["--markdown", "book/tables/op_count.md"],
    "book_small.py": ["--markdown", "book/tables/train_book_small.md"],
    "generate.py": ["--repeat", "3", "--skip-no-cache", "--markdown", "book/tables/generate.md"],
}


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
