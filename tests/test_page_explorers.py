"""helpers.page_explorers: the data in the page, ids from the name, the page's filter arithmetic the
same as helpers.sampling's (run in node when it is installed)."""

import json
import shutil
import subprocess

import numpy as np
import pytest
import torch

from helpers import page_explorers as pe
from helpers.model import GPTConfig, GPTModel
from helpers.sampling import filter_logits


class ByteTokenizer:
    """Token i is the character chr(97 + i % 26) repeated i // 26 + 1 times."""

    def decode_bytes(self, ids):
        return "".join(chr(97 + i % 26) * (i // 26 + 1) for i in ids).encode()

    def encode(self, text):
        return [ord(c) - 97 for c in text if c.isalpha()]


@pytest.fixture(scope="module")
def logits():
    return torch.randn(500, generator=torch.Generator().manual_seed(0)) * 3


@pytest.fixture(scope="module")
def entry(logits):
    return pe.decoding_prompt(logits, ByteTokenizer(), n_top=30)


SETTINGS = [(1.0, 0, 1.0), (0.7, 0, 0.9), (1.5, 10, 1.0), (2.0, 5, 0.5), (0.3, 0, 0.3),
            (1.0, 50, 0.95), (3.0, 0, 0.05), (0.1, 1, 1.0)]


def test_the_rounded_logits_keep_the_order_and_stay_close(logits, entry):
    z = pe.rounded_logits(entry)
    assert z.shape == logits.shape and z.dtype == torch.float64
    assert torch.all(z[:-1] >= z[1:]), "sorted descending"
    original = logits.double().sort(descending=True).values
    assert torch.allclose(z[:30], original[:30], atol=5e-4, rtol=0)
    assert torch.all(z[30:] <= original[30:]) and torch.all(original[30:] - z[30:] < 0.01)
    assert entry["labels"][0] == ByteTokenizer().decode_bytes([logits.argmax().item()]).decode()


def test_kept_after_filters_is_helpers_sampling_on_the_stored_logits(logits, entry):
    for t, k, p in SETTINGS:
        kept, mass = pe.kept_after_filters(entry, t, k, p)
        z = filter_logits(pe.rounded_logits(entry), t, k or None, p)
        assert kept == torch.isfinite(z).sum().item()
        assert 0 < mass <= 1 + 1e-9
        # top-k does not depend on the rounding: the same count as on the model's own logits
        if p == 1.0 and k:
            assert kept == torch.isfinite(filter_logits(logits, t, k, None)).sum().item()
    assert pe.kept_after_filters(entry, 1.0, 0, 1.0) == (500, pytest.approx(1.0))


def test_the_page_holds_the_data_and_its_ids_come_from_the_name(entry):
    page = pe.decoding_explorer({"abc": entry, "xyz": entry}, name="dec-1",
                                checks=[("xyz", 0.7, 0, 0.9)])
    again = pe.decoding_explorer({"abc": entry, "xyz": entry}, name="dec-1",
                                 checks=[("xyz", 0.7, 0, 0.9)])
    assert page.data == again.data, "the same data gives the same page"
    assert 'id="pe-dec-1"' in page.data and 'getElementById("pe-dec-1")' in page.data
    assert json.dumps(entry["labels"][:3], separators=(",", ":"))[1:-1] in page.data
    assert '<option value="1">xyz</option>' in page.data
    assert "http" not in page.data.replace("http://www.w3.org/2000/svg", ""), "no network"
    kept, _ = pe.kept_after_filters(entry, 0.7, 0, 0.9)
    assert f"&quot;kept&quot;: {kept}," in page.data
    with pytest.raises(ValueError, match="name='a b'"):
        pe.decoding_explorer({"abc": entry}, name="a b")


def test_a_closing_script_tag_in_a_token_cannot_end_the_script(entry):
    weird = dict(entry, labels=["</script><b>"] + entry["labels"][1:])
    page = pe.decoding_explorer({"p": weird}, name="w").data
    assert page.count("</script>") == 1


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_page_arithmetic_equals_helpers_sampling(entry, logits):
    """The JavaScript of the page, run in node on the stored data: the same kept counts as
    kept_after_filters (that is, helpers.sampling.filter_logits) and the same mass."""
    ties = pe.decoding_prompt(torch.randint(-3, 4, (300,), generator=torch.Generator()
                                            .manual_seed(1)).float(), ByteTokenizer(), n_top=20)
    prompts = [entry, ties]
    script = (f"const data = {json.dumps({'prompts': prompts})};\n{pe._FILTER_JS}\n"
              f"const settings = {json.dumps(SETTINGS)};\n"
              "console.log(JSON.stringify(full.map((v) => settings.map(([t, k, p]) => {"
              " const r = filterCount(v, t, k, p); return [r.keep, r.mass]; }))));")
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True)
    results = json.loads(out.stdout)
    for e, per_setting in zip(prompts, results):
        for (t, k, p), (kept, mass) in zip(SETTINGS, per_setting):
            expected = pe.kept_after_filters(e, t, k, p)
            assert kept == expected[0], (t, k, p)
            assert mass == pytest.approx(expected[1], abs=1e-9)


def test_the_attention_explorer_holds_every_head_and_the_next_tokens():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=40, context_length=8, emb_dim=16, n_heads=2, n_layers=3)
    model = GPTModel(cfg).eval()
    entry = pe.attention_prompt(model, ByteTokenizer(), "abcdefghijkl", top_k=4)
    assert entry["tokens"] == list("efghijkl")  # the last context_length tokens
    rows = entry["attention"]
    assert (len(rows), len(rows[0]), len(rows[0][0])) == (3, 2, 8)
    assert all(len(r) == t + 1 and abs(sum(r) - 1) < 0.01 for t, r in enumerate(rows[2][1]))
    assert len(entry["next"]) == 4 and entry["next"][0][1] >= entry["next"][-1][1]
    scores = {"self": torch.rand(3, 2)}
    page = pe.attention_explorer({"first": entry}, scores, {"self": 0.25}, name="att").data
    assert 'id="pe-att"' in page and '<option value="2">2</option>' in page
    assert json.dumps(entry["next"][0][0]) in page
    with pytest.raises(ValueError, match="encodes to no tokens"):
        pe.attention_prompt(model, ByteTokenizer(), "123")


def test_the_embedding_map_holds_each_label():
    page = pe.embedding_map(np.array([[0, 1], [1.23456, -2]]), [" he", ","], ["pronoun", "other"],
                            name="emb", title="a map").data
    assert '"labels":[" he",","]' in page and "1.235" in page and 'id="pe-emb"' in page
    with pytest.raises(ValueError, match="as long as each other"):
        pe.embedding_map([[0, 1]], ["a", "b"], ["x"], name="emb")
