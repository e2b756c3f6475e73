"""Chapter 7 benchmark: training throughput of our GPTModel against transformers' GPT2LMHeadModel.

Run from the repository root:  .venv/bin/python benchmarks/train_throughput.py [--preset gpt2-small
book-small] [--markdown PATH]. For each preset, both models are built from one configuration
(GPT-2 small with context 256, or the book's small pretraining model), train on the same random
batch with AdamW taking turns (``helpers.bench.throughput_comparison``), and the script prints
tokens per second for each (median of --repeat steps) and their ratio. Timings, not assertions.
"""

import argparse
from pathlib import Path

import torch

from helpers.bench import throughput_comparison
from helpers.model import GPTConfig, count_parameters
from helpers.pretrain import BOOK_SMALL
from helpers.speed import markdown_table, provenance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preset", nargs="+", choices=["gpt2-small", "book-small"], default=["gpt2-small"]
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: 2 (gpt2-small), the chapter's"
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--markdown", type=Path, default=None, help="also write a markdown table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    header = provenance()
    s = BOOK_SMALL
    rows = []
    for preset in args.preset:
        small = dict(emb_dim=s.model.emb_dim, n_layers=s.model.n_layers, n_heads=s.model.n_heads)
        shape = small if preset == "book-small" else {}
        cfg = GPTConfig.from_preset(
            "gpt2-small", context_length=256, qkv_bias=True, tie_weights=False, **shape
        )
        batch_size = args.batch_size or (s.batch_size if preset == "book-small" else 2)
        with torch.device(args.device):
            r = throughput_comparison(cfg, batch_size, repeat=args.repeat)
        n_params = count_parameters(_dummy(cfg))
        print(f"{preset}: ({n_params:,} parameters), batch {batch_size} x 256")
        print(f"  ours:         {r['ours_tokens_per_s']:10,.0f} tokens/s")
        print(f"  transformers: {r['transformers_tokens_per_s']:10,.0f} tokens/s")
        print(f"  ours / transformers: {r['ratio']:.2f}")
        rows.append(
            [
                f"{preset} ({n_params / 1e6:.0f}M parameters), batch {batch_size} x 256",
                f"{r['ours_tokens_per_s']:,.0f}",
                f"{r['transformers_tokens_per_s']:,.0f}",
                f"{r['ratio']:.2f}x",
            ]
        )
    text = (
        header + f"\nOne training step (forward, cross-entropy, backward, AdamW), float32, on "
        f"{args.device}; the same weights and the same random batch for both models, which take "
        f"turns; the median of {args.repeat} steps after a warm-up step.\n\n"
        + markdown_table(
            ["model", "ours, tokens/s", "transformers, tokens/s", "ours / transformers"], rows
        )
    )
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
        print(f"wrote {args.markdown}")


def _dummy(cfg):
    from helpers.model import GPTModel

    with torch.device("meta"):
        return GPTModel(cfg)


if __name__ == "__main__":
    main()
