"""The checks of Chapter 1's exercises (tokenization): ``check("1.2", my_num_batches)``.

Each check runs the reader's answer on a few cases, the edge cases included, and compares it with
what ``helpers.tokenizer``, ``helpers.data`` and tiktoken compute; see :mod:`helpers.check`.
"""

from __future__ import annotations

from helpers.check import Wrong
from helpers.data import SlidingWindowDataset, create_dataloader
from helpers.tokenizer import BPETokenizer

_TRAIN_TEXT = (
    "the cat sat on the mat; the cats sat on the mats. A café, a cafe, the café's cat: "
    "thé, théâtre, the theatre. "
) * 3


def _tokenizer(vocab_size: int) -> BPETokenizer:
    return BPETokenizer().train(_TRAIN_TEXT, vocab_size=vocab_size)


def check_decode(my_decode) -> str:
    """1.1: ``my_decode(ids, merges)`` -> text, from the merges alone."""
    tok = _tokenizer(280)
    nested = max(tok.merges.values())  # the last merge is built from earlier merges
    e_acute = list("é".encode())  # two bytes, two ids
    cases = [
        ("an empty list", []),
        ("plain bytes only ('cat' as ids 99, 97, 116)", list(b"cat")),
        (f"the single id {nested}, a merge of merges", [nested]),
        ("a whole sentence", tok.encode("the café's cat sat on the théâtre mats")),
        ("the two bytes of 'é' as two separate ids", tok.encode("caf") + e_acute),
        ("one byte of 'é' alone, [195]", e_acute[:1]),
    ]
    for name, ids in cases:
        got, want = my_decode(list(ids), dict(tok.merges)), tok.decode(ids)
        if got == want:
            continue
        if not isinstance(got, str):
            raise Wrong(f"On {name} it returned a {type(got).__name__}, not a str.")
        hint = (
            "join the bytes of all the ids first and decode once at the end, with "
            "errors=\"replace\": one character's bytes can sit in two tokens"
            if "é" in name or "[195]" in name
            else "an id above 255 stands for the bytes of both ids of its pair, and each of "
            "those may itself be a merge: expand until only bytes are left"
        )
        raise Wrong(f"On {name} it returned {got!r}, expected {want!r}. Hint: {hint}.")
    return "empty input, nested merges, and a character split across two tokens"


def check_num_batches(my_num_batches) -> str:
    """1.2: ``my_num_batches(n_tokens, batch_size, context_length, stride)`` -> int."""
    cases = [  # (n_tokens, batch_size, context_length, stride)
        (5145, 8, 2, 2), (5145, 8, 4, 4), (101, 4, 10, 10), (100, 4, 10, 10),
        (11, 1, 10, 3), (12, 1, 10, 5), (50, 3, 4, 7), (40, 4, 3, 1),
    ]
    for n, b, t, s in cases:
        want = len(create_dataloader(list(range(n)), batch_size=b, context_length=t, stride=s))
        got = my_num_batches(n, b, t, s)
        if got == want:
            continue
        case = f"n_tokens={n}, batch_size={b}, context_length={t}, stride={s}"
        windows = len(SlidingWindowDataset(list(range(n)), t, s))
        if isinstance(got, int) and got in (-(-windows // b), windows // b + 1):
            hint = "the loader drops a last batch that is not full (drop_last=True)"
        else:
            hint = (
                f"{windows} windows fit here: a window needs context_length + 1 tokens, "
                "and the last window counts too"
            )
        raise Wrong(f"On {case} you said {got!r}, the loader makes {want}. Hint: {hint}.")
    return f"{len(cases)} loaders, with a last window that just fits and a last batch that is short"


def _first_pair(text: str) -> tuple[int, int]:
    tok = BPETokenizer().train(text, vocab_size=257)
    return next(pair for pair, new_id in tok.merges.items() if new_id == 256)


def check_first_merge(my_first_merge) -> str:
    """1.3: ``my_first_merge(text)`` -> the pair of byte ids that BPE merges first."""
    cases = [
        ("the opening of a sentence", "I had always thought Jack Gisburn rather a cheap genius"),
        ("'a.a.a.a.bc' (its most frequent pairs cross chunk boundaries)", "a.a.a.a.bc"),
        ("'zyab' (a tie between three pairs)", "zyab"),
        ("text with a two-byte character", "été été étè"),
    ]
    for name, text in cases:
        want, got = _first_pair(text), my_first_merge(text)
        if isinstance(got, (tuple, list)) and tuple(got) == want:
            continue
        chunks_hint = "count pairs inside the chunks of GPT2_SPLIT_PATTERN only, never across two"
        hint = {
            "'a": chunks_hint,
            "'z": "on a tie BPE takes the smaller pair, (97, 98) before (122, 121)",
        }.get(name[:2], "count the pairs of the UTF-8 bytes, not of the characters")
        raise Wrong(f"On {name} you said {got!r}, BPE merges {want} first. Hint: {hint}.")
    return "ordinary text, a pair that crosses chunks, a tie and a two-byte character"


def check_endoftext_counts(my_counts) -> str:
    """1.4: ``my_counts`` = (tokens with encode_ordinary, tokens with allowed_special="all")."""
    from helpers.offline import gpt2_encoding

    enc = gpt2_encoding()
    plain = len(enc.encode_ordinary("<|endoftext|>"))
    special = len(enc.encode("<|endoftext|>", allowed_special="all"))
    if not (isinstance(my_counts, (tuple, list)) and len(my_counts) == 2):
        raise Wrong(f"Your answer {my_counts!r} is not a pair (plain count, special count).")
    if my_counts[1] != special:
        raise Wrong(
            f"With allowed_special=\"all\" you said {my_counts[1]!r} tokens. Hint: a special "
            "token is one entry of the vocabulary, whatever its length."
        )
    if my_counts[0] != plain:
        raise Wrong(
            f"With encode_ordinary you said {my_counts[0]!r} tokens. Hint: as plain text the "
            "marker is split by the pattern and spelled with ordinary merges, not one per "
            "character."
        )
    return "GPT-2's own tokenizer"


def check_windows(my_windows) -> str:
    """1.5: ``my_windows(token_ids, context_length, stride)`` -> list of (inputs, targets)."""
    cases = [(20, 4, 4), (21, 4, 4), (10, 3, 1), (12, 3, 5), (5, 4, 2), (9, 2, 9)]
    for n, t, s in cases:
        ids = list(range(100, 100 + n))
        data = SlidingWindowDataset(ids, t, s)
        want = [(x.tolist(), y.tolist()) for x, y in (data[i] for i in range(len(data)))]
        got = my_windows(list(ids), t, s)
        got = [(list(x), list(y)) for x, y in got] if isinstance(got, (list, tuple)) else got
        if got == want:
            continue
        case = f"{n} tokens 100..{99 + n}, context_length={t}, stride={s}"
        if not isinstance(got, list) or len(got) != len(want):
            n_got = len(got) if isinstance(got, list) else got
            hint = (
                "a window needs context_length + 1 tokens, and the last window that fits counts"
            )
            raise Wrong(f"On {case} you made {n_got} windows, expected {len(want)}. Hint: {hint}.")
        i = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
        raise Wrong(
            f"On {case} window {i} is {got[i]}, expected {want[i]}. Hint: the targets are the "
            "inputs shifted one token to the right, and window i starts at i * stride."
        )
    return "windows that end exactly at the last token, a stride above the context, one window"


CHECKS = {
    "1.1": check_decode,
    "1.2": check_num_batches,
    "1.3": check_first_merge,
    "1.4": check_endoftext_counts,
    "1.5": check_windows,
}
