"""Byte-level byte-pair encoding (BPE), built step by step in Chapter 1 (Tokenization).

One class, :class:`BPETokenizer`, serves both halves of the chapter:

* ``BPETokenizer().train(text, vocab_size, pattern)`` learns merges from scratch, and
* ``BPETokenizer.from_gpt2_files(encoder_json, vocab_bpe)`` loads OpenAI's GPT-2 merges, after
  which ``encode`` gives exactly the ids of ``tiktoken.get_encoding("gpt2")``.

Vocabulary layout. Token ids ``0..255`` (in some order) stand for the 256 single bytes; every
merge ``(left, right) -> new_id`` adds one token whose bytes are ``left`` + ``right``. A merge
learned earlier has a smaller ``new_id``, so "lowest new id first" is the merge priority when
encoding. Trained tokenizers give byte ``b`` the id ``b``; GPT-2 permutes the 256 byte ids (see
:func:`bytes_to_unicode`), which ``byte_ids`` records.

Training and the merge itself are ``helpers.bpe``'s (:func:`helpers.bpe.train_bpe`, with its tie
rule).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import regex

from helpers.bpe import train_bpe

# GPT-2's pre-tokenization pattern, as tiktoken's "gpt2" encoding spells it.
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# Llama 3's pattern (also GPT-4's cl100k_base): case-insensitive contractions, digits in groups
# of 3.
LLAMA3_SPLIT_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
ENDOFTEXT = "<|endoftext|>"
FORMAT_VERSION = 1


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable unicode characters.

    ``encoder.json`` and ``vocab.bpe`` store tokens as strings of these characters, so that no
    token is whitespace or a control character. Printable bytes map to themselves; the other 68
    are moved to code points 256 and up, in byte order.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def _check_text(text) -> None:
    if not isinstance(text, str):
        raise ValueError(
            f"text must be a str, got {type(text).__name__}: decode bytes first, "
            f"e.g. data.decode('utf-8')."
        )


def _token_id(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a token id")
    return value


class BPETokenizer:
    """A byte-level BPE tokenizer with regex pre-splitting and special tokens."""

    def __init__(self, pattern: str = GPT2_SPLIT_PATTERN, cache: bool = True):
        self.pattern = pattern
        # chunk -> its ids, filled by encoding and kept between calls (None: no cache); see
        # encode_ordinary
        self.cache: dict[str, list[int]] | None = {} if cache else None
        self.byte_ids: list[int] = list(range(256))  # byte value -> token id
        self.merges: dict[tuple[int, int], int] = {}  # (left id, right id) -> new id
        self.special_tokens: dict[str, int] = {}  # "<|endoftext|>" -> id
        self._rebuild()

    # ------------------------------------------------------------------ state
    def _rebuild(self) -> None:
        """Recompute the derived tables after ``pattern``, ``byte_ids``, ``merges`` or specials
        change."""
        self._split = regex.compile(self.pattern)
        self.vocab: dict[int, bytes] = {tid: bytes([b]) for b, tid in enumerate(self.byte_ids)}
        for (left, right), new_id in sorted(self.merges.items(), key=lambda kv: kv[1]):
            self.vocab[new_id] = self.vocab[left] + self.vocab[right]
        for text, tid in self.special_tokens.items():
            self.vocab[tid] = text.encode("utf-8")
        self._special_split = (
            regex.compile(
                "("
                + "|".join(
                    regex.escape(s) for s in sorted(self.special_tokens, key=len, reverse=True)
                )
                + ")"
            )
            if self.special_tokens
            else None
        )
        # the bytes of every regular token -> its id, for the one-token shortcut of _bpe
        self._token_of: dict[bytes, int] = {
            b: tid for tid, b in self.vocab.items() if tid not in self.special_tokens.values()
        }
        self._pair_of = {new_id: pair for pair, new_id in self.merges.items()}
        if self.cache is not None:
            self.cache.clear()  # the merges may have changed

    @property
    def n_vocab(self) -> int:
        """Number of token ids, special tokens included."""
        return len(self.vocab)

    def __len__(self) -> int:
        return self.n_vocab

    def __repr__(self) -> str:
        return (
            f"BPETokenizer(n_vocab={self.n_vocab}, merges={len(self.merges)}, "
            f"special={list(self.special_tokens)})"
        )

    # --------------------------------------------------------------- training
    def train(
        self, text: str, vocab_size: int, pattern: str | None = None, verbose: bool = False
    ) -> "BPETokenizer":
        """Learn ``vocab_size - 256`` merges from ``text`` (special tokens are added afterwards).

        Pair counts are kept per distinct pre-split chunk and updated incrementally after each
        merge, so training a 2,000-token vocabulary on a short story takes about a second.
        """
        return train_bpe(self, text, vocab_size, pattern, verbose)

    def register_special_tokens(self, special_tokens: dict[str, int] | list[str]) -> "BPETokenizer":
        """Add special tokens. A list gets the next free ids, in order; a dict gives explicit
        ids."""
        if not isinstance(special_tokens, dict):
            start = max(self.vocab) + 1
            special_tokens = {s: start + i for i, s in enumerate(special_tokens)}
        for text, tid in special_tokens.items():
            if tid in self.vocab and self.vocab[tid] != text.encode("utf-8"):
                raise ValueError(
                    f"special token {text!r} cannot take id {tid}: that id is already a regular "
                    f"token."
                )
        self.special_tokens = {**self.special_tokens, **special_tokens}
        self._rebuild()
        return self

    # --------------------------------------------------------------- encoding
    def _bpe(self, chunk: bytes) -> list[int]:
        """The ids of one pre-split chunk: its bytes, merged pair by pair.

        A chunk that is itself a token becomes that token at once, as in tiktoken: merging it
        pair by pair ends there too (the tests check every GPT-2 token, and every token a trained
        tokenizer learns)."""
        token = self._token_of.get(chunk)
        if token is not None:
            return [token]
        ids = [self.byte_ids[b] for b in chunk]
        get, never = self.merges.get, 1 << 62  # never: the rank of a pair with no merge
        # ranks[i]: the new id of the pair (ids[i], ids[i + 1]), the merge's rank
        ranks = [get(pair, never) for pair in zip(ids, ids[1:])]
        while ranks:
            # The pair that was merged earliest during training (smallest new id) goes first,
            # the leftmost if it occurs more than once.
            new_id = min(ranks)
            if new_id == never:
                break
            i = ranks.index(new_id)
            ids[i : i + 2] = [new_id]
            del ranks[i]  # and the ranks of the merged token's two neighbouring pairs change:
            if i > 0:
                ranks[i - 1] = get((ids[i - 1], new_id), never)
            if i < len(ranks):
                ranks[i] = get((new_id, ids[i + 1]), never)
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text``, treating special-token strings as ordinary text.

        Words repeat, so each distinct chunk is merged once: its ids go into
        ``self.cache`` (chunk -> ids, kept between calls, as in OpenAI's
        ``encoder.py``), and every later occurrence is a dictionary lookup.
        ``BPETokenizer(cache=False)`` merges every chunk."""
        _check_text(text)
        ids: list[int] = []
        cache = self.cache
        for chunk in self._split.findall(text):
            chunk_ids = None if cache is None else cache.get(chunk)
            if chunk_ids is None:  # a chunk not seen before: run the merges
                chunk_ids = self._bpe(chunk.encode("utf-8"))
                if cache is not None:
                    cache[chunk] = chunk_ids
            ids += chunk_ids
        return ids

    def encode(
        self, text: str, allowed_special: str | set[str] | frozenset[str] = frozenset()
    ) -> list[int]:
        """Encode ``text``. Special tokens become single ids only when listed in
        ``allowed_special`` (or ``allowed_special="all"``); finding any other special-token string
        is an error, as in tiktoken."""
        _check_text(text)
        allowed = set(self.special_tokens) if allowed_special == "all" else set(allowed_special)
        unknown = allowed - set(self.special_tokens)
        if unknown:
            raise ValueError(
                f"allowed_special names {sorted(unknown)}, which are not special tokens of this "
                f"tokenizer: register them first."
            )
        if self._special_split is None:
            return self.encode_ordinary(text)
        ids: list[int] = []
        for i, part in enumerate(self._special_split.split(text)):
            if i % 2 == 1:  # the separators captured by the split are the special tokens
                if part not in allowed:
                    raise ValueError(
                        f"the text contains the special token {part!r}: pass "
                        f"allowed_special={{{part!r}}} to encode it as one token, or call "
                        f"encode_ordinary to encode it as plain text."
                    )
                ids.append(self.special_tokens[part])
            elif part:
                ids.extend(self.encode_ordinary(part))
        return ids

    def decode_bytes(self, ids) -> bytes:
        """The raw bytes of ``ids`` (a token may hold part of a multi-byte character)."""
        try:
            return b"".join(self.vocab[int(i)] for i in ids)
        except KeyError as err:
            raise ValueError(
                f"token id {err.args[0]} is not in this tokenizer's vocabulary (valid ids are "
                f"0..{self.n_vocab - 1}): were these ids made by a different tokenizer?"
            ) from None

    def decode(self, ids) -> str:
        """Text of ``ids``; bytes that are not valid UTF-8 on their own become U+FFFD, as in
        tiktoken."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    # ----------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Write the tokenizer as JSON (pattern, byte ids, merges in order, special tokens)."""
        path = Path(path)
        merges = [
            [left, right, new_id]
            for (left, right), new_id in sorted(self.merges.items(), key=lambda kv: kv[1])
        ]
        data = {
            "format": "helpers.BPETokenizer",
            "version": FORMAT_VERSION,
            "pattern": self.pattern,
            "byte_ids": self.byte_ids,
            "merges": merges,
            "special_tokens": self.special_tokens,
        }
        text = json.dumps(data)
        # a fresh temporary file beside it, renamed when complete: a failed write keeps the old file
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except OSError as err:
            raise OSError(
                err.errno,
                f"could not write the tokenizer to {path} "
                f"({err.strerror or err}): give a file path in an existing, "
                f"writable folder with free space; {path} is unchanged.",
            ) from None
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "BPETokenizer":
        """Read a tokenizer written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
            raise ValueError(
                f"cannot read a tokenizer from {path}: {err}. Pass a file written by "
                f"BPETokenizer.save."
            ) from None
        if not isinstance(data, dict) or data.get("format") != "helpers.BPETokenizer":
            raise ValueError(
                f"{path} is not a file written by BPETokenizer.save (no 'format' marker)."
            )
        try:
            tok = cls(data["pattern"])
            byte_ids = [_token_id(i) for i in data["byte_ids"]]
            if sorted(byte_ids) != list(range(256)):
                raise ValueError("byte_ids is not a permutation of 0..255")
            tok.byte_ids = byte_ids
            tok.merges = {
                (_token_id(left), _token_id(right)): _token_id(new_id)
                for left, right, new_id in data["merges"]
            }
            specials = dict(data["special_tokens"])
            tok.special_tokens = {str(k): _token_id(v) for k, v in specials.items()}
            tok._rebuild()
        except (KeyError, TypeError, ValueError, regex.error, RecursionError) as err:
            what = f"missing {err}" if isinstance(err, KeyError) else f"{type(err).__name__}: {err}"
            raise ValueError(
                f"{path} is a corrupt tokenizer file ({what}): save it again with "
                f"BPETokenizer.save."
            ) from None
        return tok

    @classmethod
    def from_gpt2_files(cls, encoder_json: str | Path, vocab_bpe: str | Path) -> "BPETokenizer":
        """Load OpenAI's GPT-2 tokenizer from its two files (``encoder.json`` and ``vocab.bpe``)."""
        encoder = json.loads(Path(encoder_json).read_text(encoding="utf-8"))
        lines = Path(vocab_bpe).read_text(encoding="utf-8").split("\n")
        merge_lines = [line for line in lines[1:] if line]  # the first line is "#version: 0.2"
        byte_to_char = bytes_to_unicode()
        tok = cls(GPT2_SPLIT_PATTERN)
        tok.byte_ids = [encoder[byte_to_char[b]] for b in range(256)]
        for rank, line in enumerate(merge_lines):
            left, right = line.split(" ")
            new_id = encoder[left + right]
            if new_id != 256 + rank:  # GPT-2's ids for merged tokens follow merge order
                raise ValueError(
                    f"{vocab_bpe}: merge {rank} ({line!r}) has id {new_id}, expected {256 + rank}."
                )
            tok.merges[(encoder[left], encoder[right])] = new_id
        tok.special_tokens = {ENDOFTEXT: encoder[ENDOFTEXT]}
        tok._rebuild()
        return tok
