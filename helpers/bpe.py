"""The byte-pair-encoding algorithm, built step by step in Chapter 1 (Tokenization).

* :func:`merge_pair`: one merge, applied to a list of ids (encoding and training both use it);
* :func:`train_bpe`: what ``BPETokenizer.train`` runs, learning merges from a text.

Tie rule when training: the most frequent adjacent pair wins; among equally frequent pairs the one
with the smaller ``(left, right)`` ids wins. Chapter 1's naive loop uses the same rule, and the
tests check that both give the same merges. ``helpers.tokenizer`` holds the tokenizer itself.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict

import regex


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of ``pair`` in ``ids``, left to right, by
    ``new_id``."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def train_bpe(tok, text: str, vocab_size: int, pattern: str | None = None, verbose: bool = False):
    """``BPETokenizer.train``: learn ``vocab_size - 256`` merges from ``text`` into ``tok`` (its
    byte ids, merges and special tokens are reset first); returns ``tok``. Pair counts are kept per
    distinct pre-split chunk and updated incrementally after each merge."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise ValueError(f"vocab_size={vocab_size!r} must be an integer, 256 or more.")
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}: decode bytes first.")
    if vocab_size < 256:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: a byte-level BPE vocabulary starts with "
            f"the 256 single bytes, so choose vocab_size >= 256 (256 means no merges)."
        )
    if not text:
        raise ValueError(
            "cannot train on an empty text: pass the training corpus as a non-empty string."
        )
    if pattern is not None:
        tok.pattern = pattern
    tok.byte_ids, tok.merges, tok.special_tokens = list(range(256)), {}, {}
    chunk_counts = Counter(regex.findall(tok.pattern, text))
    words = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
    freqs = list(chunk_counts.values())

    pair_counts: Counter = Counter()
    where: dict[tuple[int, int], set[int]] = defaultdict(set)
    for wi, word in enumerate(words):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freqs[wi]
            where[pair].add(wi)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    for new_id in range(256, vocab_size):
        best = _pop_most_frequent(heap, pair_counts)
        if best is None:
            raise ValueError(
                f"the training text runs out of pairs to merge after {new_id - 256} merges, so "
                f"vocab_size={vocab_size} cannot be reached: use vocab_size <= {new_id} or a "
                f"longer text."
            )
        tok.merges[best] = new_id
        _merge_everywhere(best, new_id, words, freqs, where, pair_counts, heap)
        if verbose:
            print(f"merge {new_id - 255}/{vocab_size - 256}: {best} -> {new_id}")
    tok._rebuild()
    return tok


def _pop_most_frequent(heap: list, pair_counts: Counter) -> tuple[int, int] | None:
    """Pop the heap until its top entry is a pair's current (positive) count; None when empty.
    Entries go stale when a merge changes a count; the fresh count was pushed as a new entry."""
    while heap:
        neg_count, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) == -neg_count and neg_count < 0:
            return pair
    return None


def _merge_everywhere(best, new_id, words, freqs, where, pair_counts, heap) -> None:
    """Replace ``best`` by ``new_id`` in every chunk that holds it, updating the pair counts, the
    chunks each pair occurs in, and the heap (one fresh entry per changed pair)."""
    changed: set[tuple[int, int]] = set()
    for wi in where.pop(best):
        word, freq = words[wi], freqs[wi]
        for pair in zip(word, word[1:]):
            pair_counts[pair] -= freq
            changed.add(pair)
        word = words[wi] = merge_pair(word, best, new_id)
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freq
            where[pair].add(wi)
            changed.add(pair)
    for pair in changed:
        if pair_counts[pair] <= 0:
            del pair_counts[pair]
        else:
            heapq.heappush(heap, (-pair_counts[pair], pair))
