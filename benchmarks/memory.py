"""Appendix benchmark: what takes memory in training, computed for GPT-2's presets and checked
against measurements for small models.

Run from the repository root:  .venv/bin/python benchmarks/memory.py
Writes book/tables/memory_presets.md (computed with helpers.memory.training_memory) and
book/tables/memory_measured.md: for small models, the activations autograd really saved (counted
exactly) and the peak resident memory of two AdamW steps in a fresh process, against the formula.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from helpers.memory import training_memory
from helpers.model import PRESETS, GPTConfig, predicted_parameters
from helpers.speed import markdown_table, provenance

GiB, MiB = 2**30, 2**20
MEASURED = [  # (name, config overrides, batch size)
    (
        "emb 64, 1 layer, context 256 (Chapter 6's small size)",
        dict(emb_dim=64, n_layers=1, n_heads=4, context_length=256),
        1,
    ),
    (
        "emb 256, 4 layers (the training-speed model)",
        dict(emb_dim=256, n_layers=4, n_heads=4, context_length=128),
        2,
    ),
    ("GPT-2 small, context 128", dict(context_length=128), 1),
]


def worker(spec: str) -> dict:
    """In a fresh process: build the model, take two AdamW steps, report activations and peak."""
    import torch
    import torch.nn.functional as F

    from helpers.memory import peak_rss_bytes, rss_bytes, saved_activation_bytes
    from helpers.model import GPTModel

    overrides, B = json.loads(spec)
    cfg = GPTConfig.from_preset("gpt2-small", drop_rate=0.0, **overrides)
    ids = torch.randint(
        0, cfg.vocab_size, (B, cfg.context_length + 1), generator=torch.Generator().manual_seed(0)
    )
    x, y = ids[:, :-1].clone(), ids[:, 1:].clone()
    base = rss_bytes()
    torch.manual_seed(0)
    model = GPTModel(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    saved = saved_activation_bytes(model.train(), x, y)
    for _ in range(2):  # the second step has AdamW's state from the first
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        optimizer.step()
    return {"saved": saved, "peak": peak_rss_bytes() - base}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8, help="batch for the presets' totals")
    parser.add_argument("--out-dir", default="book/tables")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in PRESETS:
        cfg = GPTConfig.from_preset(name)
        one, many = training_memory(cfg, 1), training_memory(cfg, args.batch_size)
        rows.append(
            [
                name,
                f"{predicted_parameters(cfg) / 1e6:,.0f}M",
                f"{one['weights'] / GiB:.2f}",
                f"{one['gradients'] / GiB:.2f}",
                f"{one['adamw'] / GiB:.2f}",
                f"{one['activations'] / GiB:.2f}",
                f"{one['total'] / GiB:.1f}",
                f"{many['total'] / GiB:.1f}",
            ]
        )
    (out / "memory_presets.md").write_text(
        "*Computed by `helpers.memory.training_memory` (no measurement): float32 weights, "
        "gradients and AdamW state, activations of one 1024-token sequence with SDPA attention "
        "and no dropout.*\n\n"
        + markdown_table(
            [
                "preset",
                "parameters",
                "weights GiB",
                "gradients GiB",
                "AdamW GiB",
                "activations GiB (batch 1)",
                "total GiB (batch 1)",
                f"total GiB (batch {args.batch_size})",
            ],
            rows,
        ),
        encoding="utf-8",
    )
    header, rows = provenance(), []
    for name, overrides, B in MEASURED:
        r = json.loads(
            subprocess.run(
                [sys.executable, __file__, "--worker", json.dumps([overrides, B])],
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        cfg = GPTConfig.from_preset("gpt2-small", drop_rate=0.0, **overrides)
        m = training_memory(cfg, B)
        rows.append(
            [
                name,
                f"{B} x {cfg.context_length}",
                f"{m['activations'] / MiB:,.1f}",
                f"{r['saved'] / MiB:,.1f}",
                f"{m['total'] / MiB:,.0f}",
                f"{r['peak'] / MiB:,.0f}",
                f"{r['peak'] / m['total']:.2f}",
            ]
        )
        print(rows[-1], flush=True)
    (out / "memory_measured.md").write_text(
        header
        + "\n"
        + markdown_table(
            [
                "model (GPT-2 layout and vocabulary)",
                "batch x tokens",
                "activations MiB, formula",
                "activations MiB, saved by autograd",
                "total MiB, formula",
                "peak MiB, measured",
                "measured / formula",
            ],
            rows,
        )
        + "\nMeasured peak: the most resident memory of a fresh process during two AdamW steps, "
        "minus what it "
        "held before building the model. It is above the formula by the temporaries that live "
        "only for a moment (the logits and their gradient, each batch x tokens x 50257 floats; "
        "the gradient of every activation during the backward pass) and by what the memory "
        "allocator keeps in reserve.\n",
        encoding="utf-8",
    )
    print("wrote", out / "memory_presets.md", out / "memory_measured.md")


if __name__ == "__main__":
    main()
