"""Timing utilities for the benchmark scripts in ``benchmarks/`` and the chapters that show their results.

Timings are measurements, never assertions: they are printed, and notebook cells that show them are
tagged ``nbval-ignore-output`` because no two runs give the same figures.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable


def time_call(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeat`` runs, after ``warmup`` untimed runs."""
    if repeat < 1:
        raise ValueError(f"repeat={repeat} must be at least 1.")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tokenizer_benchmark(text: str, vocab_size: int = 2000, repeat: int = 5) -> dict[str, float]:
    """Chapter 1's measurements: BPE training time on ``text``, and encoding speed of our GPT-2
    tokenizer against tiktoken on the same text (fresh encode caches for ours on each run)."""
    from helpers.offline import gpt2_encoding, gpt2_tokenizer_files
    from helpers.tokenizer import BPETokenizer

    files = gpt2_tokenizer_files()
    ours = BPETokenizer.from_gpt2_files(files["encoder.json"], files["vocab.bpe"])
    theirs = gpt2_encoding()

    def encode_ours_cold():
        ours._cache.clear()  # measure the full BPE work, not a lookup in the chunk cache
        ours.encode_ordinary(text)

    train_s = time_call(lambda: BPETokenizer().train(text, vocab_size), repeat=repeat)
    ours_s = time_call(encode_ours_cold, repeat=repeat)
    theirs_s = time_call(lambda: theirs.encode_ordinary(text), repeat=repeat)
    n_bytes = len(text.encode("utf-8"))
    return {
        "train_seconds": train_s,
        "ours_encode_seconds": ours_s,
        "tiktoken_encode_seconds": theirs_s,
        "ours_MB_per_s": n_bytes / ours_s / 1e6,
        "tiktoken_MB_per_s": n_bytes / theirs_s / 1e6,
        "slowdown": ours_s / theirs_s,
    }
