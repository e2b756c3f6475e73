"""Appendix B benchmark: why transformers' generate is a little ahead of ours on a CPU.

Run from the repository root:  .venv/bin/python benchmarks/weight_layout.py [--threads N]
Writes book/tables/weight_layout.md. Generating one token multiplies a single row vector by every
weight matrix of the model, and those matrices (about 500 MB for GPT-2 small) do not fit in the
CPU's caches, so each product streams its matrix from memory. Our layers are nn.Linear, which
stores a weight as (out, in) and computes x @ W.T; GPT-2's checkpoint, and transformers' Conv1D,
store it as (in, out) and compute x @ W. This script times one-row products with GPT-2 small's
shapes in both layouts, cycling through as many distinct matrices as GPT-2 small has (12 layers),
so that every product reads its matrix from memory as it does during generation. The fastest of
--repeat rounds. Timings are measurements, not tests.
"""

import argparse
from pathlib import Path

import torch

from helpers.bench import time_turns
from helpers.speed import markdown_table, provenance

SHAPES = {  # GPT-2 small, per block: name -> (in, out, matrices)
    "query, key, value: three 768 x 768 (ours) / one 768 x 2304 (GPT-2)": None,
    "feed-forward up: 768 -> 3072": (768, 3072),
    "feed-forward down: 3072 -> 768": (3072, 768),
    "attention output: 768 -> 768": (768, 768),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("book/tables/weight_layout.md"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x_small, x_big = torch.randn(1, 768), torch.randn(1, 3072)
    rows, total = [], {"linear": 0.0, "gpt2": 0.0}
    with torch.no_grad():
        for name, shape in SHAPES.items():
            if shape is None:  # ours: three (out, in) matrices; GPT-2: one fused (in, out) matrix
                ours = [torch.randn(768, 768) for _ in range(3 * args.layers)]
                theirs = [torch.randn(768, 2304) for _ in range(args.layers)]
                x = x_small
            else:
                d_in, d_out = shape
                ours = [torch.randn(d_out, d_in) for _ in range(args.layers)]
                theirs = [w.t().contiguous() for w in ours]
                x = x_small if d_in == 768 else x_big
            fns = {
                "ours": lambda: [torch.nn.functional.linear(x, w) for w in ours],  # w: (out, in)
                "theirs": lambda: [x @ w for w in theirs],  # w: (in, out)
            }
            best = time_turns(fns, repeat=args.repeat, warmup=1, reduce="min")  # fastest run
            t_ours, t_theirs = best["ours"] / args.layers, best["theirs"] / args.layers
            total["linear"] += t_ours
            total["gpt2"] += t_theirs
            rows.append(
                [name, f"{t_ours * 1e6:.0f}", f"{t_theirs * 1e6:.0f}", f"{t_ours / t_theirs:.2f}x"]
            )
    rows.append(
        [
            "**one block, all four**",
            f"{total['linear'] * 1e6:.0f}",
            f"{total['gpt2'] * 1e6:.0f}",
            f"{total['linear'] / total['gpt2']:.2f}x",
        ]
    )
    text = (
        provenance()
        + "\n"
        + "One-row products (one new token) with GPT-2 small's weight shapes, float32, cycling "
        "through "
        f"{args.layers} blocks' worth of distinct matrices so that each is read from memory; "
        f"microseconds per block, the fastest of {args.repeat} rounds.\n\n"
        + markdown_table(
            [
                "product",
                "nn.Linear, weight (out, in), us",
                "GPT-2's layout, weight (in, out), us",
                "ours / GPT-2's",
            ],
            rows,
        )
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
