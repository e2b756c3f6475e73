"""helpers.embeddings (Chapter 2): lookups against one-hot products, GPT-2's token + position embedding,
the sinusoidal encoding against its formula, the offline word-vector path, and the errors for bad input."""

import bz2
import math
import os
import socket
import subprocess
import sys
import zlib

import matplotlib
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from netstub import GLOVE_ANALOGIES, NetStub, glove_folder

from helpers import embeddings
from helpers.embeddings import (GPTEmbedding, analogy, check_token_ids, lee_sentences,
                                load_pretrained_vectors, nearest_words, one_hot, pca_2d, sinusoidal_positions,
                                train_word_vectors, wiki_sentences)

matplotlib.use("Agg")


# --------------------------------------------------------------------------- embedding = one-hot @ W


@settings(max_examples=25, deadline=None)
@given(ids=st.lists(st.integers(0, 11), min_size=1, max_size=20), seed=st.integers(0, 2**16))
def test_embedding_equals_one_hot_matmul(ids, seed):
    torch.manual_seed(seed)
    emb = torch.nn.Embedding(12, 5)
    ids = torch.tensor(ids)
    upstream = torch.randn(len(ids), 5)

    (emb(ids) * upstream).sum().backward()
    W = emb.weight.detach().clone().requires_grad_(True)
    onehot = one_hot(ids, 12)  # (T, V)
    (onehot @ W * upstream).sum().backward()

    assert torch.equal(emb(ids), onehot @ emb.weight)
    assert torch.allclose(emb.weight.grad, W.grad, atol=1e-6)
    unused = sorted(set(range(12)) - set(ids.tolist()))
    assert torch.equal(emb.weight.grad[unused], torch.zeros(len(unused), 5))  # only used rows get gradient
    for i in set(ids.tolist()):  # a row's gradient is the sum over the places its id was used
        assert torch.allclose(emb.weight.grad[i], upstream[ids == i].sum(0), atol=1e-6)


def test_one_hot_shape_and_values():
    x = one_hot(torch.tensor([[0, 2], [1, 1]]), 3)
    assert x.shape == (2, 2, 3) and x.dtype == torch.float32
    assert x.sum(-1).eq(1).all() and x[0, 1, 2] == 1


# --------------------------------------------------------------------------- GPT-2's token + position embedding


@pytest.mark.parametrize("batch_size, num_tokens", [(1, 1), (3, 5), (2, 16)])
def test_position_embedding_shapes_and_broadcasting(batch_size, num_tokens):
    torch.manual_seed(0)
    module = GPTEmbedding(vocab_size=50, context_length=16, emb_dim=8)
    ids = torch.randint(0, 50, (batch_size, num_tokens))  # (B, T)
    out = module(ids)
    assert out.shape == (batch_size, num_tokens, 8)  # (B, T, C)
    pos = module.pos_emb.weight[:num_tokens]  # (T, C)
    assert torch.allclose(out, module.tok_emb(ids) + pos[None], atol=0)
    for b in range(batch_size):  # every sequence gets the same position vectors
        assert torch.allclose(out[b] - module.tok_emb(ids[b]), pos, atol=1e-6)


def test_same_token_differs_by_position_and_order_matters():
    torch.manual_seed(0)
    module = GPTEmbedding(vocab_size=10, context_length=8, emb_dim=4)
    out = module(torch.tensor([[7, 7, 3]]))
    assert not torch.allclose(out[0, 0], out[0, 1])
    bag_12 = module.tok_emb(torch.tensor([[1, 2]])).sum(1)
    bag_21 = module.tok_emb(torch.tensor([[2, 1]])).sum(1)
    assert torch.allclose(bag_12, bag_21)  # token vectors alone cannot see the order
    assert not torch.allclose(module(torch.tensor([[1, 2]])), module(torch.tensor([[2, 1]])))


def test_gpt2_small_parameter_counts():
    module = GPTEmbedding(vocab_size=50257, context_length=1024, emb_dim=768)
    assert module.tok_emb.weight.numel() == 38_597_376
    assert module.pos_emb.weight.numel() == 786_432


@pytest.mark.parametrize("bad", [50, 51, 1000, -1])
def test_token_id_outside_vocabulary_names_the_value(bad):
    module = GPTEmbedding(vocab_size=50, context_length=8, emb_dim=4)
    with pytest.raises(ValueError, match=rf"token id {bad} is outside the vocabulary 0\.\.49"):
        module(torch.tensor([[1, bad, 2]]))
    with pytest.raises(ValueError, match=rf"token id {bad}"):
        one_hot(torch.tensor([bad]), 50)


def test_sequence_longer_than_position_table_names_the_length():
    module = GPTEmbedding(vocab_size=50, context_length=8, emb_dim=4)
    assert module(torch.zeros(1, 8, dtype=torch.long)).shape == (1, 8, 4)  # exactly full is fine
    with pytest.raises(ValueError, match=r"the sequence has 9 tokens but the position table has only 8 rows"):
        module(torch.zeros(1, 9, dtype=torch.long))


def test_wrong_shapes_and_dtypes_are_clear_errors():
    module = GPTEmbedding(vocab_size=50, context_length=8, emb_dim=4)
    with pytest.raises(ValueError, match=r"shape \(batch_size, num_tokens\), got \(3,\)"):
        module(torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="must be integers"):
        check_token_ids(torch.tensor([1.0, 2.0]), 50)


# --------------------------------------------------------------------------- sinusoidal encoding


@pytest.mark.parametrize("num_positions, emb_dim", [(1, 2), (10, 4), (50, 16), (7, 10)])
def test_sinusoidal_against_formula(num_positions, emb_dim):
    pe = sinusoidal_positions(num_positions, emb_dim)
    assert pe.shape == (num_positions, emb_dim) and pe.dtype == torch.float32
    for pos in range(num_positions):
        for i in range(emb_dim // 2):
            angle = pos / 10000 ** (2 * i / emb_dim)
            assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


def test_sinusoidal_dot_products_depend_only_on_distance():
    pe = sinusoidal_positions(200, 64).double()
    gram = pe @ pe.T
    freqs = 10000 ** (-torch.arange(0, 64, 2, dtype=torch.float64) / 64)
    for k in range(0, 200, 7):
        assert torch.allclose(gram.diagonal(k), torch.cos(k * freqs).sum(), atol=1e-4)
    assert torch.allclose(gram.diagonal(), torch.tensor(32.0, dtype=torch.float64), atol=1e-4)  # |PE_p|^2 = C/2


@pytest.mark.parametrize("emb_dim", [0, 1, 5, 767])
def test_sinusoidal_needs_even_width(emb_dim):
    with pytest.raises(ValueError, match=rf"emb_dim={emb_dim} must be even"):
        sinusoidal_positions(10, emb_dim)


# --------------------------------------------------------------------------- word vectors, offline


@pytest.fixture(scope="module")
def lee():
    return lee_sentences()


@pytest.fixture(scope="module")
def small_wv(lee):
    return train_word_vectors(lee, vector_size=32, window=5, min_count=3, epochs=5, seed=0)


def test_lee_corpus_is_real_english(lee):
    assert len(lee) == 300
    n_words = sum(map(len, lee))
    assert 50_000 < n_words < 70_000
    assert lee[0][:3] == ["hundreds", "of", "people"]


def test_offline_word_vectors_end_to_end(small_wv):
    assert small_wv.vector_size == 32 and len(small_wv.index_to_key) > 1000
    neighbours = nearest_words(small_wv, "government", topn=5)
    assert len(neighbours) == 5 and "government" not in [w for w, _ in neighbours]
    assert [w for w, _ in neighbours] == [w for w, _ in small_wv.most_similar("government", topn=5)]
    scores = [s for _, s in neighbours]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
    answer = analogy(small_wv, "man", "he", "woman", topn=5)
    expected = small_wv.most_similar(positive=["he", "woman"], negative=["man"], topn=5)
    assert [w for w, _ in answer] == [w for w, _ in expected]
    assert [s for _, s in answer] == pytest.approx([s for _, s in expected], abs=1e-5)


def test_training_is_deterministic_within_a_process(lee, small_wv):
    again = train_word_vectors(lee, vector_size=32, window=5, min_count=3, epochs=5, seed=0)
    assert again.index_to_key == small_wv.index_to_key
    assert np.array_equal(again.vectors, small_wv.vectors)


@pytest.mark.slow  # two fresh interpreters importing torch and gensim: several seconds
def test_training_is_deterministic_across_processes(root):
    """nbval re-runs the chapter in a new process: Python's str hash changes, the vectors must not."""
    code = ("import hashlib; from helpers.embeddings import lee_sentences, train_word_vectors; "
            "wv = train_word_vectors(lee_sentences()[:100], vector_size=16, min_count=3, epochs=2); "
            "print(hashlib.sha256(wv.vectors.tobytes()).hexdigest(), len(wv.index_to_key))")
    digests = set()
    for hashseed in ["1", "2"]:
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                              check=True, timeout=120)
        digests.add(done.stdout.strip())
    assert len(digests) == 1


def test_unknown_word_in_analogy_names_the_word(small_wv):
    with pytest.raises(ValueError, match=r"'qwertyuiop' is not in the vocabulary of these word vectors"):
        analogy(small_wv, "man", "qwertyuiop", "woman")
    with pytest.raises(ValueError, match=r"'King' is not in the vocabulary"):  # vectors are lower-case
        nearest_words(small_wv, "King")


def test_train_word_vectors_rejects_bad_sentences():
    with pytest.raises(ValueError, match="sentences is empty"):
        train_word_vectors([])
    with pytest.raises(ValueError, match="must be a list of words, got the string 'the cat sat'"):
        train_word_vectors(["the cat sat", "on the mat"])


WIKI_XML = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10">
<page><title>Cats</title><ns>0</ns><id>1</id><revision><text>The '''cat''' is a small [[mammal]].
It is kept as a pet by many [[people]] around the world.</text></revision></page>
<page><title>Felis</title><ns>0</ns><id>2</id><revision><text>#REDIRECT [[Cats]]</text></revision></page>
<page><title>Dogs</title><ns>0</ns><id>3</id><revision><text>The dog is a loyal animal.

Too short.</text></revision></page>
</mediawiki>
"""


def test_wiki_sentences_parses_a_dump(tmp_path):
    path = tmp_path / "tiny.xml.bz2"
    path.write_bytes(bz2.compress(WIKI_XML.encode("utf-8")))
    titles, sentences = wiki_sentences(path, min_words=3)
    assert titles == ["Cats", "Dogs"]  # the redirect is skipped
    assert sentences == [  # markup removed, lower-cased, one list a paragraph; "Too short." has 2 words
        ["the", "cat", "is", "a", "small", "mammal"],
        ["it", "is", "kept", "as", "a", "pet", "by", "many", "people", "around", "the", "world"],
        ["the", "dog", "is", "a", "loyal", "animal"],
    ]


@pytest.mark.slow  # parses the whole excerpt: several seconds
def test_shipped_wikipedia_excerpt():
    titles, sentences = wiki_sentences()
    assert len(titles) == 106 and titles[:3] == ["Anarchism", "Autism", "Albedo"]
    assert 400_000 < sum(map(len, sentences)) < 500_000


def test_missing_gensim_file_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="no-such-corpus.cor is not in gensim's test_data folder"):
        embeddings.gensim_data_file("no-such-corpus.cor")


# --------------------------------------------------------------------------- pretrained vectors: never hang


def test_pretrained_vectors_download_from_a_local_stand_in_and_load_without_running_code(tmp_path):
    served = glove_folder(tmp_path / "served")
    (served / "__init__.py").write_text("raise SystemExit('downloaded code ran')\n")
    stub = NetStub(files={"/glove-wiki-gigaword-50/glove-wiki-gigaword-50.gz":
                          served / "glove-wiki-gigaword-50.gz"})
    server, url = stub.start()
    try:
        wv = load_pretrained_vectors("glove-wiki-gigaword-50", data_dir=tmp_path / "gd", base_url=url)
        again = load_pretrained_vectors("glove-wiki-gigaword-50", data_dir=tmp_path / "gd",
                                        base_url="http://127.0.0.1:9")  # cached: no request
    finally:
        server.shutdown()
    assert (tmp_path / "gd" / "glove-wiki-gigaword-50" / "glove-wiki-gigaword-50.gz").exists()
    assert len(stub.requests) == 1 and wv.vector_size == again.vector_size == 50
    for a, b, c, d in GLOVE_ANALOGIES:
        assert analogy(wv, a, b, c)[0][0] == d


def test_load_pretrained_without_network_raises_connection_error(tmp_path):
    with socket.socket() as s:  # a port on this machine that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError, match=r"could not download http://127.0.0.1"):
        load_pretrained_vectors("glove-wiki-gigaword-50", data_dir=tmp_path,
                                base_url=f"http://127.0.0.1:{port}", timeout=1.0)
    assert not any(tmp_path.rglob("*.gz"))
    with pytest.raises(ValueError, match=r"unknown pretrained vectors 'glove-9000'"):
        load_pretrained_vectors("glove-9000")


def test_a_damaged_vector_file_is_one_sentence(tmp_path):
    bad = tmp_path / "glove-wiki-gigaword-50" / "glove-wiki-gigaword-50.gz"
    bad.parent.mkdir()
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="is not a readable word-vector file"):
        load_pretrained_vectors("glove-wiki-gigaword-50", data_dir=tmp_path)


# --------------------------------------------------------------------------- PCA and figures


def test_pca_2d_matches_svd_and_is_stable():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 10)) * np.arange(1, 11)  # most variance in the last columns
    points = pca_2d(x)
    assert points.shape == (30, 2)
    centred = x - x.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    for j in range(2):  # same projection as the SVD, up to the sign that pca_2d fixes
        assert np.allclose(np.abs(points[:, j]), np.abs(centred @ vt[j]))
    assert np.allclose(points.var(0) * 30, s[:2] ** 2)
    assert np.array_equal(points, pca_2d(x))
    assert np.allclose(pca_2d(-x), -points)  # the directions' signs are fixed, so flipping the data flips the map


def test_embedding_figures():
    import matplotlib.pyplot as plt

    from helpers.viz import plot_similarity_by_distance, plot_table, plot_word_map

    pe = sinusoidal_positions(64, 16)
    fig, axes = plt.subplots(1, 3)
    assert plot_table(pe, ax=axes[0]) is fig
    assert plot_table(pe @ pe.T, ax=axes[1], centered=False) is fig
    assert plot_similarity_by_distance(pe, starts=[0, 10], max_distance=20, ax=axes[2]) is fig
    assert len(axes[2].lines) == 3  # two curves and the zero line
    fig2 = plot_word_map(np.zeros((3, 2)), ["a", "b", "c"], ["x", "x", "y"])
    assert [t.get_text() for t in fig2.axes[0].get_legend().get_texts()] == ["x", "y"]
    with pytest.raises(ValueError, match="runs past the table's 64 rows"):
        plot_similarity_by_distance(pe, starts=[50], max_distance=20)
    with pytest.raises(ValueError, match=r"need points of shape \(N, 2\)"):
        plot_word_map(np.zeros((3, 3)), ["a", "b", "c"], ["x", "x", "y"])
    plt.close("all")


def test_stable_hash_is_crc32():
    assert embeddings.stable_hash("king") == zlib.crc32(b"king")
    assert embeddings.stable_hash("été") == zlib.crc32("été".encode("utf-8"))
