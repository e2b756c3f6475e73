"""Appendix benchmark: training speed, one change at a time, on the same model and data.

Run from the repository root:  .venv/bin/python benchmarks/train_speed.py [--repeat 3]
Writes book/tables/train_speed.md. The model is GPT-2's vocabulary and layout at a size a CPU can
step through (--emb-dim 256, --n-layers 4, --n-heads 4, context --num-tokens 128, --batch-size 2);
every row trains the same weights on the same batch. Each row adds one change to the rows above
it and keeps it for the rows below only if it made the step faster here. Every row runs in a fresh
process, so that its peak memory (resident set on CPU, allocated memory on GPU) is its own.
Timings are measurements, not tests: they change from run to run and with the machine's load.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

from helpers.bench import time_call
from helpers.speed import SpeedOptions, cpu_peak_flops, markdown_table, mfu, provenance

CHANGES = [  # (row label, the change it makes)
    ("naive attention, float32, AdamW, eager", {}),
    ("+ SDPA attention", {"sdpa": True}),
    ("+ fused QKV projection", {"fused_qkv": True}),
    ("+ bfloat16 autocast", {"autocast": "bfloat16"}),
    ("+ fused AdamW", {"fused_adamw": True}),
    ("+ torch.compile", {"compile": True}),
    ("+ vocabulary padded to 64", {"pad_vocab_to": 64}),
]


def config(args):
    from helpers.model import GPTConfig

    return GPTConfig.from_preset(
        "gpt2-small",
        emb_dim=args.emb_dim,
        n_layers=args.n_layers,
        n_heads=args.n_heads,
        context_length=args.num_tokens,
        drop_rate=0.0,
    )


def worker(args) -> dict:
    """One row, in this process: build, (compile), warm up, time; print a JSON line."""
    from helpers.memory import peak_rss_bytes, rss_bytes
    from helpers.model import GPTModel
    from helpers.speed import build_variant, make_train_step, try_compile

    switches = json.loads(args.worker)
    compile_model = switches.pop("compile", False)  # torch.compile: applied here, after the build
    options = SpeedOptions(**switches)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = config(args)
    ids = torch.randint(
        0,
        cfg.vocab_size,
        (args.batch_size, cfg.context_length + 1),
        generator=torch.Generator().manual_seed(0),
    ).to(device)
    x, y = ids[:, :-1], ids[:, 1:]
    cuda = device.type == "cuda"
    base = torch.cuda.memory_allocated() if cuda else rss_bytes()
    torch.manual_seed(0)
    model = build_variant(GPTModel(cfg), options).to(device)
    note = None
    if compile_model:
        compiled = {}
        compile_s = time_call(lambda: compiled.update(out=try_compile(model, x)), 1, warmup=0)
        model, note = compiled["out"]
    step = make_train_step(model, x, y, cfg.vocab_size, options)
    slow = options.autocast is not None and not cuda  # emulated bfloat16 matmuls: one step only
    first = {}  # the first step from the same weights: its loss is comparable across rows
    first_s = time_call(lambda: first.update(loss=step()), 1, warmup=0)
    first_loss = first["loss"]
    # a slow row is timed by its first step; the others by their fastest step, since other
    # processes on the machine only ever slow a step down
    seconds = first_s if slow else time_call(step, args.repeat, warmup=0, reduce="min")
    peak = torch.cuda.max_memory_allocated() if cuda else peak_rss_bytes()
    out = {
        "tokens_per_s": x.numel() / seconds,
        "peak_MiB": (peak - base) / 2**20,
        "loss": first_loss,
        "steps_timed": 1 if slow else args.repeat,
        "note": note,
    }
    if compile_model and note is None:
        out["compile_s"] = compile_s
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emb-dim", type=int, default=256)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--n-heads", type=int, default=4)
    parser.add_argument("--num-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="peak FLOP/s of the device in TFLOP/s, for MFU (default on CPU: an estimate)",
    )
    parser.add_argument("--out", default="book/tables/train_speed.md")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.threads:
        torch.set_num_threads(args.threads)  # for the provenance line and the CPU peak estimate
    if args.peak_tflops:
        peak, how = (
            args.peak_tflops * 1e12,
            f"{args.peak_tflops} TFLOP/s, as given with --peak-tflops",
        )
    elif args.device == "cpu":
        peak, how = cpu_peak_flops()
    else:
        peak, how = None, "no peak given (--peak-tflops), so no MFU"
    header = provenance()
    cfg = config(args)
    kept, rows, base_tps, best_tps, base_loss, notes = {}, [], None, None, None, []
    for label, change in CHANGES:
        options = {**kept, **change}
        cmd = [sys.executable, __file__, "--worker", json.dumps(options)] + [
            f"--{k.replace('_', '-')}={v}"
            for k, v in vars(args).items()
            if v is not None
            and k
            in (
                "emb_dim",
                "n_layers",
                "n_heads",
                "num_tokens",
                "batch_size",
                "repeat",
                "device",
                "threads",
            )
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(result.stdout.strip().splitlines()[-1])
        print(label, r, flush=True)
        tps = r["tokens_per_s"]
        base_tps = base_tps or tps
        base_loss = r["loss"] if base_loss is None else base_loss
        faster = best_tps is None or tps > best_tps
        if faster and r["note"] is None:
            kept, best_tps = options, tps
        if r["note"]:
            notes.append(f"{label}: {r['note']}")
        if "compile_s" in r:
            notes.append(f"{label}: compiling took {r['compile_s']:.0f} s before the first step.")
        if r["steps_timed"] == 1:
            notes.append(f"{label}: timed by its first step alone, because it is so slow.")
        util = f"{100 * mfu(cfg, tps, peak, cfg.context_length):.1f}%" if peak else "n/a"
        rows.append(
            [
                label,
                f"{tps:,.0f}",
                f"{tps / base_tps:.2f}x",
                util,
                f"{r['peak_MiB']:,.0f}",
                "yes" if (faster and r["note"] is None) or not rows else "no",
                f"{abs(r['loss'] - base_loss):.1e}" if rows else "0",
                f"{r['loss']:.6f}",
            ]
        )
    device = args.device if args.device == "cpu" else torch.cuda.get_device_name()
    text = (
        header + f"\nModel: GPT-2 layout, vocabulary {cfg.vocab_size}, emb_dim {cfg.emb_dim}, "
        f"{cfg.n_layers} layers, {cfg.n_heads} heads; batch {args.batch_size} x "
        f"{cfg.context_length} tokens; device: {device}; the fastest of {args.repeat} steps after "
        "one warm-up step.\n\n"
        + markdown_table(
            [
                "training step",
                "tokens/s",
                "vs first row",
                "MFU (estimate)",
                "peak MiB",
                "kept below",
                "first-step loss change",
                "first-step loss",
            ],
            rows,
        )
        + "\nMFU: training FLOPs per token (3 x `flops_per_token`) x tokens/s / peak, the peak "
        "an estimate: "
        f"{how}. Peak MiB: the most memory the step's process held beyond what it held before "
        "building the model (on CPU the resident set, which includes the allocator's own "
        "reserve).\n"
    )
    text += "".join(f"\n- {n}" for n in notes) + ("\n" if notes else "")
    best = max(float(r[1].replace(",", "")) for r in rows)
    text += (
        f"\nThe fastest row here trains {best / base_tps:.2f}x as many tokens per second as the "
        f"first; every row was measured on {device}.\n"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
