"""Chapter 6 benchmark: training throughput of our GPTModel against transformers' GPT2LMHeadModel.

Run from the repository root:  .venv/bin/python benchmarks/train_throughput.py [--preset gpt2-small]
Both models are built from one configuration (the book's small pretraining model by default, or
GPT-2 small with context 256), train on the same random batch with AdamW, and the script prints
tokens per second for each (median of --repeat steps) and their ratio. Timings, not assertions.
"""

import argparse
import dataclasses
import platform

import torch

from helpers.bench import throughput_comparison
from helpers.model import GPTConfig
from helpers.pretrain import BOOK_SMALL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=["book-small", "gpt2-small"], default="book-small")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: the chapter's (1 or 2)"
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    s = BOOK_SMALL
    small = dict(emb_dim=s.model.emb_dim, n_layers=s.model.n_layers, n_heads=s.model.n_heads)
    shape = small if args.preset == "book-small" else {}
    cfg = GPTConfig.from_preset(
        "gpt2-small", context_length=256, qkv_bias=True, tie_weights=False, **shape
    )
    batch_size = args.batch_size or (s.batch_size if args.preset == "book-small" else 2)
    with torch.device(args.device):
        r = throughput_comparison(cfg, batch_size, repeat=args.repeat)
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}, {args.device}"
    )
    print(f"model: {dataclasses.asdict(cfg)}, batch {batch_size}")
    print(f"ours:         {r['ours_tokens_per_s']:10,.0f} tokens/s")
    print(f"transformers: {r['transformers_tokens_per_s']:10,.0f} tokens/s")
    print(f"ours / transformers: {r['ratio']:.2f}")


if __name__ == "__main__":
    main()
