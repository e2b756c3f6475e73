"""helpers.tokenizer (Chapter 1) against tiktoken's GPT-2 encoding and against a hand-worked
example."""

from collections import Counter

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.bench import varied_text
from helpers.bpe import merge_pair
from helpers.offline import gpt2_encoding, gpt2_tokenizer_files
from helpers.tokenizer import (
    ENDOFTEXT,
    GPT2_SPLIT_PATTERN,
    LLAMA3_SPLIT_PATTERN,
    BPETokenizer,
    bytes_to_unicode,
)

# Text without lone surrogates: those cannot be encoded as UTF-8 by any byte-level tokenizer.
unicode_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)


@pytest.fixture(scope="module")
def gpt2():
    files = gpt2_tokenizer_files()
    return BPETokenizer.from_gpt2_files(files["encoder.json"], files["vocab.bpe"])


@pytest.fixture(scope="module")
def tiktoken_gpt2():
    return gpt2_encoding()


@pytest.fixture(scope="module")
def trained(verdict_text):
    return BPETokenizer().train(verdict_text, vocab_size=600)


def naive_train(text, vocab_size, pattern=GPT2_SPLIT_PATTERN):
    """The merge loop as Chapter 1 first writes it: recount all pairs after every merge."""
    chunks = [list(c.encode("utf-8")) for c in regex.findall(pattern, text)]
    merges = {}
    for new_id in range(256, vocab_size):
        counts = Counter(p for ids in chunks for p in zip(ids, ids[1:]))
        best = min(counts, key=lambda p: (-counts[p], p))  # most frequent; ties: smaller ids
        merges[best] = new_id
        chunks = [merge_pair(ids, best, new_id) for ids in chunks]
    return merges


def test_hand_worked_example():
    """The classic example "aaabdaaabac": aa -> 256, then ab -> 257 (tied with (256, a) at 2,
    smaller ids win), then (256, 257) -> 258, giving "XdXac" with X = 258."""
    tok = BPETokenizer().train("aaabdaaabac", vocab_size=259)
    a, b, c, d = map(ord, "abcd")
    assert tok.merges == {(a, a): 256, (a, b): 257, (256, 257): 258}
    assert tok.encode("aaabdaaabac") == [258, d, 258, a, c]
    assert tok.vocab[258] == b"aaab"


def test_fast_training_equals_naive_loop(verdict_text):
    text = verdict_text[:4000]
    assert BPETokenizer().train(text, vocab_size=400).merges == naive_train(text, 400)


def test_llama3_pattern_changes_the_split():
    tok = BPETokenizer(LLAMA3_SPLIT_PATTERN)
    assert regex.findall(tok.pattern, "I'LL pay 12345") == ["I", "'LL", " pay", " ", "123", "45"]
    assert regex.findall(GPT2_SPLIT_PATTERN, "I'LL pay 12345") == ["I", "'", "LL", " pay", " 12345"]


def test_bytes_to_unicode_is_a_bijection():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256)) and len(set(table.values())) == 256
    assert (
        table[ord("A")] == "A" and table[ord(" ")] == "Ġ"
    )  # the space shows as 'Ġ' in GPT-2's files


def test_gpt2_matches_tiktoken_on_a_megabyte_of_varied_text(gpt2, tiktoken_gpt2, verdict_text):
    text = varied_text(verdict_text, 1_100_000)
    assert len(text.encode("utf-8")) >= 1_000_000
    assert gpt2.encode_ordinary(text) == tiktoken_gpt2.encode_ordinary(text)
    assert gpt2.encode(text, allowed_special="all") == tiktoken_gpt2.encode(
        text, allowed_special="all"
    )
    assert gpt2.decode(gpt2.encode(text, allowed_special="all")) == text


@settings(max_examples=300, deadline=None)
@given(unicode_text)
def test_gpt2_matches_tiktoken_on_arbitrary_text(gpt2, tiktoken_gpt2, text):
    assert gpt2.encode_ordinary(text) == tiktoken_gpt2.encode_ordinary(text)


@settings(max_examples=300, deadline=None)
@given(unicode_text)
def test_round_trip_on_arbitrary_unicode(gpt2, trained, text):
    assert gpt2.decode(gpt2.encode_ordinary(text)) == text
    assert trained.decode(trained.encode_ordinary(text)) == text


def test_endoftext(gpt2, tiktoken_gpt2):
    text = f"Hello{ENDOFTEXT} world"
    assert gpt2.encode(text, allowed_special={ENDOFTEXT}) == tiktoken_gpt2.encode(
        text, allowed_special={ENDOFTEXT}
    )
    assert (
        gpt2.special_tokens == {ENDOFTEXT: 50256} and gpt2.n_vocab == tiktoken_gpt2.n_vocab == 50257
    )
    with pytest.raises(
        ValueError, match="contains the special token '<\\|endoftext\\|>'.*allowed_special"
    ):
        gpt2.encode(text)
    with pytest.raises(ValueError):  # tiktoken refuses it too
        tiktoken_gpt2.encode(text)


def test_special_tokens_on_a_trained_tokenizer(trained, tmp_path):
    tok = BPETokenizer.load(trained.save(tmp_path / "t.json"))
    tok.register_special_tokens([ENDOFTEXT, "<|pad|>"])
    assert tok.special_tokens == {ENDOFTEXT: 600, "<|pad|>": 601}
    assert tok.encode(f"a{ENDOFTEXT}b<|pad|>", allowed_special="all")[-3:] == [
        600,
        tok.encode("b")[0],
        601,
    ]


def test_save_and_load(trained, tmp_path, verdict_text):
    tok = BPETokenizer.load(trained.save(tmp_path / "plain.json")).register_special_tokens(
        [ENDOFTEXT]
    )
    loaded = BPETokenizer.load(tok.save(tmp_path / "tok.json"))
    assert (
        loaded.merges == tok.merges == trained.merges
        and loaded.special_tokens == tok.special_tokens == {ENDOFTEXT: 600}
    )
    assert loaded.pattern == tok.pattern and loaded.vocab == tok.vocab
    assert loaded.encode(verdict_text + ENDOFTEXT, allowed_special="all") == tok.encode(
        verdict_text + ENDOFTEXT, allowed_special="all"
    )


def test_save_and_load_gpt2(gpt2, tmp_path):
    loaded = BPETokenizer.load(gpt2.save(tmp_path / "gpt2.json"))
    assert loaded.byte_ids == gpt2.byte_ids and loaded.encode_ordinary(
        "naïve café ☕"
    ) == gpt2.encode_ordinary("naïve café ☕")


def test_bad_input(gpt2, tmp_path):
    with pytest.raises(ValueError, match=r"vocab_size=100 is too small.*vocab_size >= 256"):
        BPETokenizer().train("some text", vocab_size=100)
    with pytest.raises(ValueError, match="empty text"):
        BPETokenizer().train("", vocab_size=300)
    with pytest.raises(
        ValueError,
        match=r"token id 60000 is not in this tokenizer's vocabulary \(valid ids are 0..50256\)",
    ):
        gpt2.decode([464, 60000])
    with pytest.raises(
        ValueError, match=r"runs out of pairs to merge after \d+ merges.*vocab_size <="
    ):
        BPETokenizer().train("abc", vocab_size=300)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="not a file written by BPETokenizer.save"):
        BPETokenizer.load(bad)


def merged_pair_by_pair(tok, chunk: bytes) -> list[int]:
    """The merge loop alone, without the one-token shortcut or the cache."""
    ids = [tok.byte_ids[b] for b in chunk]
    while len(ids) >= 2:
        pair = min(zip(ids, ids[1:]), key=lambda p: tok.merges.get(p, float("inf")))
        if pair not in tok.merges:
            break
        ids = merge_pair(ids, pair, tok.merges[pair])
    return ids


def test_every_token_merges_to_itself(gpt2, trained):
    """The one-token shortcut of ``_bpe`` (a chunk that is a token becomes it at once, as in
    tiktoken) gives what the merges give: checked for all 50,256 regular GPT-2 tokens and every
    token of a trained tokenizer."""
    for tok in (gpt2, trained):
        specials = set(tok.special_tokens.values())
        for tid, token_bytes in tok.vocab.items():
            if tid not in specials:
                assert merged_pair_by_pair(tok, token_bytes) == [tid], (tid, token_bytes)


def test_the_chunk_cache(gpt2, verdict_text, tmp_path):
    """The cache changes no id, holds one entry per distinct chunk, and can be switched off."""
    gpt2.cache.clear()
    ids = gpt2.encode_ordinary(verdict_text)
    chunks = regex.findall(gpt2.pattern, verdict_text)
    assert len(gpt2.cache) == len(set(chunks)) < len(chunks)
    assert gpt2.encode_ordinary(verdict_text) == ids  # the second time from the cache
    plain = BPETokenizer.load(gpt2.save(tmp_path / "gpt2.json"))
    plain.cache = None
    assert plain.encode_ordinary(verdict_text) == ids
    small = BPETokenizer(cache=False).train(verdict_text[:3000], 300)
    assert small.cache is None
    cached = BPETokenizer.load(small.save(tmp_path / "small.json"))
    assert cached.encode(verdict_text) == small.encode(verdict_text)


def test_the_merge_loop_equals_the_plain_one(gpt2, trained, verdict_text):
    """``_bpe`` (a list of ranks updated at the merged pair's neighbours) merges every chunk as the
    plain loop does, on prose and on random strings over several alphabets."""
    text = varied_text(verdict_text, 60_000)
    for tok in (gpt2, trained):
        for chunk in set(regex.findall(tok.pattern, text)):
            data = chunk.encode("utf-8")
            assert tok._bpe(data) == merged_pair_by_pair(tok, data), chunk
