"""Chapter 1 benchmark: BPE training time and encoding speed of ours against tiktoken.

Run from the repository root:  .venv/bin/python benchmarks/tokenizer.py
It measures on the-verdict (data/the-verdict.txt, fetched if missing) and prints one line per
figure.
"""

import argparse
import platform

import torch

from helpers.bench import tokenizer_benchmark
from helpers.data import fetch_the_verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    text = fetch_the_verdict(args.data_dir).read_text(encoding="utf-8")
    r = tokenizer_benchmark(text, vocab_size=args.vocab_size, repeat=args.repeat)
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} threads, Python "
        f"{platform.python_version()}"
    )
    print(
        f"train BPE, vocab {args.vocab_size}, {len(text):,} characters: {r['train_seconds']:.3f} "
        f"s (median of {args.repeat})"
    )
    print(
        f"encode, ours:     {r['ours_encode_seconds'] * 1e3:8.1f} ms  ({r['ours_MB_per_s']:.2f} "
        "MB/s)"
    )
    print(
        f"encode, tiktoken: {r['tiktoken_encode_seconds'] * 1e3:8.1f} ms  "
        f"({r['tiktoken_MB_per_s']:.2f} MB/s)"
    )
    print(f"ours is {r['slowdown']:.1f}x slower than tiktoken")


if __name__ == "__main__":
    main()
