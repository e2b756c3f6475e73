"""Token ids to vectors: embeddings, word vectors and position encodings (Chapter 2: Embeddings).

* :class:`GPTEmbedding` is GPT-2's input layer: a learned token table ``(vocab_size, emb_dim)`` plus a
  learned absolute position table ``(context_length, emb_dim)``, with clear errors for token ids
  outside the vocabulary and sequences longer than the position table.
* :func:`sinusoidal_positions` is the fixed encoding of the original Transformer (Vaswani et al., 2017).
* Word vectors with gensim: :func:`offline_corpus` reads the English text that ships inside the gensim
  package (a Wikipedia excerpt and the Lee news corpus), :func:`train_word_vectors` trains a
  deterministic Word2Vec on it, :func:`load_pretrained_vectors` downloads pretrained vectors only after
  a short reachability check, and :func:`analogy` / :func:`nearest_words` query any ``KeyedVectors``.

Nothing runs on import: no seeds, no downloads, no training.
"""

from __future__ import annotations

import bz2
import zlib
import os
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

# Files inside the gensim package (gensim/test/test_data), so they come with `pip install gensim`.
WIKI_EXCERPT = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LEE_CORPUS = "lee_background.cor"

# Sizes of some of gensim-data's pretrained vectors, from the table in its README
# (github.com/RaRe-Technologies/gensim-data): name -> (download size in MB, words, trained on).
PRETRAINED = {
    "glove-wiki-gigaword-50": (65, 400_000, "Wikipedia 2014 + Gigaword 5, 6B tokens, uncased"),
    "glove-wiki-gigaword-100": (128, 400_000, "Wikipedia 2014 + Gigaword 5, 6B tokens, uncased"),
    "word2vec-google-news-300": (1662, 3_000_000, "Google News, about 100B words"),
}


# --------------------------------------------------------------------------- token and position tables


def check_token_ids(ids: torch.Tensor, vocab_size: int) -> None:
    """Raise ``ValueError`` naming the first token id outside ``0 .. vocab_size - 1``."""
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"token ids must be integers, got a tensor of dtype {ids.dtype}: use ids.long().")
    bad = (ids < 0) | (ids >= vocab_size)
    if bad.any():
        value = int(ids[bad][0])
        raise ValueError(
            f"token id {value} is outside the vocabulary 0..{vocab_size - 1} (vocab_size={vocab_size}): "
            f"encode the text with the tokenizer that matches this table, or enlarge vocab_size."
        )


def one_hot(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Float one-hot vectors: shape ``ids.shape + (vocab_size,)``, a single 1 at each id."""
    ids = torch.as_tensor(ids)
    check_token_ids(ids, vocab_size)
    return torch.nn.functional.one_hot(ids.long(), vocab_size).float()


class GPTEmbedding(nn.Module):
    """GPT-2's input: ``tok_emb(ids) + pos_emb(0 .. T-1)``, a ``(B, T)`` batch of ids -> ``(B, T, C)``.

    ``tok_emb`` says *what* each token is, ``pos_emb`` *where* it stands; both are learned. The position
    vectors ``(T, C)`` broadcast over the batch.
    """

    def __init__(self, vocab_size: int, context_length: int, emb_dim: int):
        super().__init__()
        self.vocab_size, self.context_length, self.emb_dim = vocab_size, context_length, emb_dim
        self.tok_emb = nn.Embedding(vocab_size, emb_dim)
        self.pos_emb = nn.Embedding(context_length, emb_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.ndim != 2:
            raise ValueError(f"ids must have shape (batch_size, num_tokens), got {tuple(ids.shape)}: "
                             f"add a batch dimension with ids.unsqueeze(0).")
        num_tokens = ids.shape[1]
        if num_tokens > self.context_length:
            raise ValueError(
                f"the sequence has {num_tokens} tokens but the position table has only "
                f"{self.context_length} rows (context_length={self.context_length}): keep the last "
                f"{self.context_length} tokens, e.g. ids[:, -{self.context_length}:]."
            )
        check_token_ids(ids, self.vocab_size)
        positions = torch.arange(num_tokens, device=ids.device)
        return self.tok_emb(ids) + self.pos_emb(positions)  # (B, T, C) + (T, C) -> (B, T, C)


def sinusoidal_positions(num_positions: int, emb_dim: int, base: float = 10000.0) -> torch.Tensor:
    """The Transformer's fixed position encoding, ``(num_positions, emb_dim)``:

    ``PE[pos, 2i] = sin(pos / base**(2i / emb_dim))`` and ``PE[pos, 2i+1] = cos(pos / base**(2i / emb_dim))``.
    """
    if num_positions < 1:
        raise ValueError(f"num_positions={num_positions} must be at least 1.")
    if emb_dim < 2 or emb_dim % 2:
        raise ValueError(f"emb_dim={emb_dim} must be even and at least 2: each frequency fills a (sin, cos) pair.")
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (T, 1)
    freqs = base ** (-torch.arange(0, emb_dim, 2, dtype=torch.float64) / emb_dim)  # (C/2,)
    angles = pos * freqs  # (T, C/2)
    pe = torch.empty(num_positions, emb_dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe.float()


# --------------------------------------------------------------------------- word vectors with gensim


def gensim_data_file(name: str) -> Path:
    """Path of a text file that the gensim package ships in ``gensim/test/test_data``."""
    try:
        folder = resources.files("gensim") / "test" / "test_data"
    except ModuleNotFoundError:
        raise ModuleNotFoundError("the package gensim is not installed: run `pip install gensim`.") from None
    path = Path(str(folder / name))
    if not path.exists():
        raise FileNotFoundError(
            f"{name} is not in gensim's test_data folder (this gensim build leaves its test data out): "
            f"install gensim from PyPI with `pip install gensim`, whose wheels include it."
        )
    return path


def wiki_sentences(path: str | Path | None = None, min_words: int = 3) -> tuple[list[str], list[list[str]]]:
    """Article titles and lower-cased paragraphs (lists of words) of a Wikipedia XML dump (``.bz2``).

    Defaults to the excerpt of English Wikipedia that gensim ships; markup is stripped with gensim's own
    ``filter_wiki``; paragraphs with fewer than ``min_words`` words and redirect pages are skipped.
    """
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki, tokenize

    path = gensim_data_file(WIKI_EXCERPT) if path is None else Path(path)
    titles, sentences = [], []
    with bz2.open(path) as f:
        for title, text, _ in extract_pages(f):
            if text.lstrip().lower().startswith("#redirect"):
                continue
            titles.append(title)
            for paragraph in filter_wiki(text).split("\n"):
                words = tokenize(paragraph, 1, 30, True)
                if len(words) >= min_words:
                    sentences.append(words)
    return titles, sentences


def lee_sentences(path: str | Path | None = None) -> list[list[str]]:
    """The Lee corpus (300 short Australian news articles, one a line), lower-cased into word lists."""
    from gensim.utils import simple_preprocess

    path = gensim_data_file(LEE_CORPUS) if path is None else Path(path)
    with open(path, encoding="utf-8") as f:
        return [simple_preprocess(line) for line in f if line.strip()]


def offline_corpus() -> list[list[str]]:
    """Everything :func:`train_word_vectors` needs with no network: gensim's Wikipedia excerpt + Lee corpus."""
    return wiki_sentences()[1] + lee_sentences()


def stable_hash(word: str) -> int:
    """A hash that is the same in every process (Python's ``hash`` of a str changes with PYTHONHASHSEED)."""
    return zlib.crc32(word.encode("utf-8"))


def train_word_vectors(sentences, vector_size: int = 100, window: int = 5, min_count: int = 5,
                       epochs: int = 20, sg: int = 0, seed: int = 0):
    """Train gensim's Word2Vec (CBOW when ``sg=0``, skip-gram when ``sg=1``) and return its ``KeyedVectors``.

    One worker thread, a fixed ``seed`` and :func:`stable_hash` make two runs (in any two processes)
    give identical vectors.
    """
    from gensim.models import Word2Vec

    sentences = list(sentences)
    if not sentences:
        raise ValueError("sentences is empty: pass a list of sentences, each a list of words.")
    if isinstance(sentences[0], str):
        raise ValueError(f"each sentence must be a list of words, got the string {sentences[0][:40]!r}: "
                         f"split it first, e.g. gensim.utils.simple_preprocess(text).")
    model = Word2Vec(sentences, vector_size=vector_size, window=window, min_count=min_count, epochs=epochs,
                     sg=sg, seed=seed, workers=1, hashfxn=stable_hash)
    return model.wv


GENSIM_DATA_URL = "https://github.com/RaRe-Technologies/gensim-data/releases/download"


def gensim_data_dir() -> Path:
    """Where gensim's downloader keeps its files: ``$GENSIM_DATA_DIR``, else ``~/gensim-data``."""
    return Path(os.environ.get("GENSIM_DATA_DIR") or Path.home() / "gensim-data")


def load_pretrained_vectors(name: str, timeout: float = 3.0, data_dir: str | Path | None = None,
                            base_url: str = GENSIM_DATA_URL):
    """gensim-data's pretrained ``KeyedVectors`` ``name``, downloaded once into ``data_dir``.

    The file is kept where gensim's own downloader keeps it (``data_dir/NAME/NAME.gz``, with
    ``data_dir`` defaulting to :func:`gensim_data_dir`), so either finds the other's copy. Unlike
    ``gensim.downloader.load``, this never runs the Python module gensim-data ships beside each
    file (downloaded code) and never unpickles: it reads the vectors' plain word2vec format.
    A download that cannot start within ``timeout`` seconds raises ``ConnectionError``.
    """
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained vectors {name!r}: choose one of {sorted(PRETRAINED)}.")
    from gensim.models import KeyedVectors

    from helpers.data import download

    path = Path(data_dir or gensim_data_dir()) / name / f"{name}.gz"
    if not path.exists():
        download(f"{base_url}/{name}/{name}.gz", path, timeout=timeout)
    try:
        return KeyedVectors.load_word2vec_format(str(path), binary=name.startswith("word2vec"))
    except (OSError, EOFError, ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a readable word-vector file ({type(err).__name__}): delete it "
                         f"and run again to download it afresh.") from None


def _vector_of(wv, word: str) -> np.ndarray:
    if word not in wv.key_to_index:
        raise ValueError(f"{word!r} is not in the vocabulary of these word vectors ({len(wv.key_to_index):,} "
                         f"words): check the spelling and case, or pick a more frequent word.")
    return wv.get_vector(word, norm=True)


def nearest_words(wv, word: str, topn: int = 5) -> list[tuple[str, float]]:
    """The ``topn`` words with the highest cosine similarity to ``word`` (itself excluded)."""
    return _closest(wv, _vector_of(wv, word), exclude={word}, topn=topn)


def analogy(wv, a: str, b: str, c: str, topn: int = 1) -> list[tuple[str, float]]:
    """"``a`` is to ``b`` as ``c`` is to ?": the words closest (cosine) to ``b - a + c``, the three
    question words excluded (unit vectors are combined, as gensim's ``most_similar`` does)."""
    target = _vector_of(wv, b) - _vector_of(wv, a) + _vector_of(wv, c)
    return _closest(wv, target, exclude={a, b, c}, topn=topn)


def _closest(wv, vector: np.ndarray, exclude: set[str], topn: int) -> list[tuple[str, float]]:
    unit = wv.get_normed_vectors()  # (V, C), rows of length 1
    scores = unit @ (vector / np.linalg.norm(vector))
    out = []
    for i in np.argsort(-scores, kind="stable"):
        word = wv.index_to_key[i]
        if word not in exclude:
            out.append((word, float(scores[i])))
            if len(out) == topn:
                break
    return out


def pca_2d(vectors) -> np.ndarray:
    """Project rows of ``vectors`` ``(N, C)`` onto their two main directions: ``(N, 2)``.

    Each direction's sign is fixed (its largest entry positive) so the map is the same on every run.
    """
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    directions = vt[:2]  # (2, C)
    signs = np.sign(directions[np.arange(2), np.abs(directions).argmax(axis=1)])
    return x @ (directions * signs[:, None]).T
