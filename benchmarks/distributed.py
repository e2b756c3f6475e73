"""Appendix benchmark: the training loop on 1 process with the whole batch against 2 DDP processes
(gloo, CPU) with half the batch each.

Run from the repository root:  .venv/bin/python benchmarks/distributed.py [--steps 20]
Writes book/tables/distributed.md. Both runs go through torchrun (`python -m torch.distributed.run`)
and helpers.distributed, from the same seed and the same data (the-verdict). The script asserts that
the losses agree within --atol, and reports the losses, the largest difference and tokens per
second. Timings are measurements, not tests.
"""

import argparse
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from helpers.speed import markdown_table, provenance


def run(nproc: int, batch_size: int, args, out: Path) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={port}",
        "-m",
        "helpers.distributed",
        "--backend",
        "gloo",
        "--batch-size",
        str(batch_size),
        "--steps",
        str(args.steps),
        "--context-length",
        str(args.context_length),
        "--emb-dim",
        str(args.emb_dim),
        "--n-layers",
        str(args.n_layers),
        "--n-heads",
        str(args.n_heads),
        "--out",
        str(out),
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads((out / "summary.json").read_text())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--batch-size", type=int, default=8, help="the whole batch; each of 2 processes takes half"
    )
    parser.add_argument("--context-length", type=int, default=64)
    parser.add_argument("--emb-dim", type=int, default=64)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--n-heads", type=int, default=4)
    parser.add_argument("--atol", type=float, default=1e-4)
    parser.add_argument("--out", default="book/tables/distributed.md")
    args = parser.parse_args()
    header = provenance()
    with tempfile.TemporaryDirectory() as tmp:
        one = run(1, args.batch_size, args, Path(tmp) / "one")
        two = run(2, args.batch_size // 2, args, Path(tmp) / "two")
        written = sorted(p.name for p in (Path(tmp) / "two").iterdir())
    diffs = [abs(a - b) for a, b in zip(one["losses"], two["losses"])]
    assert len(one["losses"]) == len(two["losses"]) and max(diffs) <= args.atol, diffs
    shown = sorted({0, 1, 2, 4, 9, 14, len(diffs) - 1} & set(range(len(diffs))))
    rows = [
        [i + 1, f"{one['losses'][i]:.6f}", f"{two['losses'][i]:.6f}", f"{diffs[i]:.1e}"]
        for i in shown
    ]
    speed = [
        ["1 process, batch " + str(args.batch_size), one["threads"], f"{one['tokens_per_s']:,.0f}"],
        [
            f"2 processes (gloo), batch {args.batch_size // 2} each",
            two["threads"],
            f"{two['tokens_per_s']:,.0f}",
        ],
    ]
    text = (
        header
        + f"\nModel: emb_dim {args.emb_dim}, {args.n_layers} layers, {args.n_heads} heads, GPT-2's "
        f"vocabulary, context {args.context_length}, no dropout; AdamW, lr 1e-3; the-verdict; "
        f"{args.steps} steps.\n\n"
        + markdown_table(["step", "loss, 1 process", "loss, 2 processes", "difference"], rows)
        + f"\nThe largest difference over all {len(diffs)} steps is {max(diffs):.1e} (the script "
        "asserts at "
        f"most {args.atol:g}). The 2-process run's folder holds {', '.join(written)}, written by "
        "rank 0 alone.\n\n"
        + markdown_table(
            ["run", "threads per process", "tokens/s (whole run, first step included)"], speed
        )
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
