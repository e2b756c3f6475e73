"""helpers.generate (Chapter 8) against transformers: the top-k and top-p filters keep exactly the
tokens that TopKLogitsWarper and TopPLogitsWarper keep (ties included); greedy and beam search give
the same ids as GPT2LMHeadModel.generate on the same weights (a tiny checkpoint written here, 20
prompts). Plus: the KV cache changes no id (greedy, seeded sampling, beams, past the context), the
model's cached forward equals the full one, seeds use a local generator, streaming, and a clear
error for each bad input."""

import matplotlib

matplotlib.use("Agg")

import math  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402  (the reference: a hard test dependency)
from transformers.generation.logits_process import (  # noqa: E402
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from helpers.beam import beam_search  # noqa: E402
from helpers.generate import generate, stream, stream_text  # noqa: E402
from helpers.gpt2 import save_hf_checkpoint  # noqa: E402
from helpers.kvcache import KVCache  # noqa: E402
from helpers.model import GPTConfig, GPTModel, generate_greedy  # noqa: E402
from helpers.sampling import apply_temperature, filter_logits, top_k_filter, top_p_filter  # noqa: E402

V = 97  # the tiny vocabulary
EOS = 29  # a token the tiny model emits in about half of its 20-token continuations


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models in one thread: on a busy 2-core machine, two threads spin and wait on each other,
    and a test of a few hundred milliseconds takes a minute."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(context_length=48, seed=0, scale=0.3):
    """A small random model whose weights are perturbed enough that its choices vary by prompt."""
    torch.manual_seed(seed)
    model = GPTModel(
        GPTConfig(
            vocab_size=V,
            context_length=context_length,
            emb_dim=32,
            n_heads=4,
            n_layers=2,
            drop_rate=0.0,
        )
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))
    return model.eval()


def prompt(seed, T=None, B=1):
    g = torch.Generator().manual_seed(seed)
    T = int(torch.randint(1, 12, (1,), generator=g)) if T is None else T
    return torch.randint(0, V, (B, T), generator=g)


def random_logits(seed, rows=8, vocab=40):
    """Logits with many ties: small integers (often repeated), or continuous values."""
    g = torch.Generator().manual_seed(seed)
    if seed % 2:
        return torch.randint(-3, 4, (rows, vocab), generator=g).float()
    return torch.randn(rows, vocab, generator=g) * 3


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Our tiny model and transformers' GPT2LMHeadModel loaded from the checkpoint we wrote."""
    model = tiny_model()
    directory = tmp_path_factory.mktemp("tiny")
    save_hf_checkpoint(model, directory)
    hf = transformers.GPT2LMHeadModel.from_pretrained(directory).eval()
    return model, hf


def hf_generate(hf, idx, n, **kw):
    return hf.generate(
        idx,
        attention_mask=torch.ones_like(idx),
        max_new_tokens=n,
        do_sample=False,
        pad_token_id=EOS,
        eos_token_id=EOS,
        **kw,
    )


# -- the filters ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(30))
def test_top_k_keeps_what_transformers_keeps(seed):
    logits = random_logits(seed)
    for k in (1, 2, 5, 17, 40, 60):
        for keep in (1, 3):
            ours = torch.isfinite(top_k_filter(logits, k, min_tokens_to_keep=keep))
            theirs = torch.isfinite(TopKLogitsWarper(k, min_tokens_to_keep=keep)(None, logits))
            assert torch.equal(ours, theirs), (k, keep)
            assert (ours.sum(-1) >= min(max(k, keep), logits.shape[-1])).all()


@pytest.mark.parametrize("seed", range(30))
def test_top_p_keeps_what_transformers_keeps(seed):
    logits = random_logits(seed)
    for p in (0.01, 0.1, 0.3, 0.5, 0.75, 0.9, 0.95, 0.999):
        for keep in (1, 3):
            ours = torch.isfinite(top_p_filter(logits, p, min_tokens_to_keep=keep))
            theirs = torch.isfinite(TopPLogitsWarper(p, min_tokens_to_keep=keep)(None, logits))
            assert torch.equal(ours, theirs), (p, keep)
            probs = logits.softmax(-1)
            assert ((probs * ours).sum(-1) >= p - 1e-6).all()  # the kept tokens carry at least p


def test_filters_combined_and_temperature_match_transformers():
    for seed in range(20):
        logits = random_logits(seed)
        theirs = TopPLogitsWarper(0.8)(
            None, TopKLogitsWarper(10)(None, TemperatureLogitsWarper(0.7)(None, logits))
        )
        torch.testing.assert_close(
            filter_logits(logits, 0.7, top_k=10, top_p=0.8), theirs, atol=0, rtol=0
        )


def test_ties_top_k_keeps_them_all_and_top_p_splits_in_sort_order():
    logits = torch.tensor([[2.0, 1.0, 1.0, 1.0, 0.0]])
    assert torch.isfinite(top_k_filter(logits, 2)).tolist() == [[True, True, True, True, False]]
    kept = torch.isfinite(
        top_p_filter(logits, 0.5)
    )  # 2.0 alone has 0.43 < 0.5: one of the 1.0s joins
    assert kept.sum() == 2 and kept[0, 0]


def test_min_tokens_to_keep_guard():
    logits = torch.tensor([[10.0, 0.0, -1.0, -2.0]])
    assert torch.isfinite(top_p_filter(logits, 0.5)).sum() == 1
    assert torch.isfinite(top_p_filter(logits, 0.5, min_tokens_to_keep=3)).tolist() == [
        [True, True, True, False]
    ]
    assert torch.isfinite(top_k_filter(logits, 1, min_tokens_to_keep=2)).sum() == 2
    assert torch.equal(top_p_filter(logits, 1.0), logits)


def test_temperature():
    logits = torch.tensor([[1.0, 2.0, 2.0, -1.0]])
    torch.testing.assert_close(apply_temperature(logits, 0.5), logits * 2)
    assert torch.isfinite(apply_temperature(logits, 0)).tolist() == [[False, True, True, False]]
    sharp, flat = (apply_temperature(logits, t).softmax(-1).max().item() for t in (0.5, 2.0))
    assert sharp > logits.softmax(-1).max().item() > flat


# -- against transformers' generate --------------------------------------------------------------
def test_greedy_matches_transformers_on_20_prompts(pair):
    model, hf = pair
    stopped_early = 0
    for seed in range(20):
        idx = prompt(seed)
        expected = hf_generate(hf, idx, 20)
        ours = generate(model, idx, 20, eos_id=EOS)
        assert torch.equal(ours, expected), seed
        stopped_early += ours.shape[1] < idx.shape[1] + 20
    assert stopped_early >= 1  # the end-of-text path was exercised


@pytest.mark.parametrize(
    "num_beams, length_penalty, early_stopping",
    [(3, 1.0, False), (4, 0.0, False), (2, 2.0, True), (3, 1.0, "never")],
)
def test_beam_search_matches_transformers_on_20_prompts(
    pair, num_beams, length_penalty, early_stopping
):
    model, hf = pair
    stopped_early = 0
    for seed in range(20):
        idx = prompt(seed)
        expected = hf_generate(
            hf,
            idx,
            16,
            num_beams=num_beams,
            length_penalty=length_penalty,
            early_stopping=early_stopping,
        )
        ours = beam_search(
            model,
            idx,
            16,
            num_beams,
            eos_id=EOS,
            length_penalty=length_penalty,
            early_stopping=early_stopping,
        )
        assert torch.equal(ours, expected), seed
        stopped_early += ours.shape[1] < idx.shape[1] + 16
        if early_stopping is False:
            assert torch.equal(
                generate(
                    model, idx, 16, num_beams=num_beams, eos_id=EOS, length_penalty=length_penalty
                ),
                expected,
            )
    assert stopped_early >= 1


def test_batched_greedy_and_beams_match_transformers(pair):
    model, hf = pair
    idx = prompt(3, T=6, B=4)
    assert torch.equal(
        generate(model, idx, 12),
        hf.generate(
            idx,
            attention_mask=torch.ones_like(idx),
            max_new_tokens=12,
            do_sample=False,
            pad_token_id=0,
            eos_token_id=None,
        ),
    )
    assert torch.equal(
        generate(model, idx, 12, num_beams=3, eos_id=EOS), hf_generate(hf, idx, 12, num_beams=3)
    )


# -- the KV cache ---------------------------------------------------------------------------------
def test_cached_forward_equals_full_forward():
    model = tiny_model()
    idx = prompt(1, T=30, B=2)
    full = model(idx)
    cache, weights = KVCache(), []
    first = model(idx[:, :11], cache=cache)
    second = model(idx[:, 11:29], cache=cache, attn_weights=weights)
    last = model(idx[:, 29:], cache=cache)
    torch.testing.assert_close(torch.cat([first, second, last], 1), full, atol=1e-5, rtol=0)
    assert len(cache) == 2 and cache[0][0].shape == (2, 4, 30, 8)
    assert weights[0].shape == (2, 4, 18, 29) and torch.all(weights[0][:, :, 0, 12:] == 0)
    with pytest.raises(ValueError, match="30 cached tokens plus 19 new"):
        model(idx[:, :19], cache=cache)


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(do_sample=True, seed=5),
        dict(do_sample=True, seed=9, temperature=1.5, top_k=20, top_p=0.9),
        dict(num_beams=3),
        dict(num_beams=2, eos_id=EOS),
    ],
)
def test_cache_changes_no_id(kw):
    model = tiny_model()
    for seed in range(4):
        idx = prompt(seed, B=2)
        with_cache = generate(model, idx, 20, use_cache=True, **kw)
        assert torch.equal(with_cache, generate(model, idx, 20, use_cache=False, **kw))


def test_generation_past_the_context_slides_the_window():
    model = tiny_model(context_length=12)
    idx = prompt(2, T=8)
    expected = generate_greedy(model, idx, 20)  # Chapter 5's loop, which crops to the context
    assert torch.equal(generate(model, idx, 20), expected)
    assert torch.equal(generate(model, idx, 20, use_cache=False), expected)
    sampled = [generate(model, idx, 20, do_sample=True, seed=1, use_cache=c) for c in (True, False)]
    assert torch.equal(*sampled)
    beams = [generate(model, idx, 20, num_beams=3, use_cache=c) for c in (True, False)]
    assert torch.equal(*beams) and beams[0].shape == (1, 28)


# -- sampling, seeds, streaming ------------------------------------------------------------------
def test_seed_is_local_and_repeats():
    model = tiny_model()
    idx = prompt(4, T=5)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a = generate(model, idx, 15, do_sample=True, seed=11)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG was not touched
    assert torch.equal(a, generate(model, idx, 15, do_sample=True, seed=11))
    assert not torch.equal(a, generate(model, idx, 15, do_sample=True, seed=12))
    assert torch.equal(
        generate(model, idx, 15, do_sample=True, temperature=0, seed=3), generate(model, idx, 15)
    )
    assert torch.equal(
        generate(model, idx, 15, do_sample=True, top_k=1, seed=3), generate(model, idx, 15)
    )


def test_sampling_frequencies_follow_the_filtered_softmax():
    model = tiny_model()
    idx = prompt(5, T=4).repeat(4000, 1)  # (4000, T): one draw per row
    out = generate(model, idx, 1, do_sample=True, seed=0, temperature=0.8, top_k=5)
    expected = filter_logits(model(idx[:1])[0, -1], 0.8, top_k=5).softmax(-1)
    counts = torch.bincount(out[:, -1], minlength=V).float() / len(out)
    assert torch.all(counts[expected == 0] == 0)
    assert (counts - expected).abs().max() < 0.03  # 4000 draws: standard error below 0.008


def test_stream_yields_what_generate_returns():
    model = tiny_model()
    for kw in (dict(), dict(do_sample=True, seed=2, top_p=0.9), dict(eos_id=EOS)):
        idx = prompt(6)
        ids = list(stream(model, idx, 20, **kw))
        assert all(isinstance(i, int) for i in ids)
        assert ids == generate(model, idx, 20, **kw)[0, idx.shape[1] :].tolist()
    assert torch.equal(generate(model, idx, 0), idx)


def test_stream_text_holds_back_a_split_character():
    pieces = {1: b"caf", 2: b"\xc3", 3: b"\xa9 ok"}  # 'é' split across two tokens

    def decode(ids):
        return b"".join(pieces[i] for i in ids).decode("utf-8", errors="replace")

    assert list(stream_text([1, 2, 3], decode)) == ["caf", "é ok"]


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(temperature=-0.5), "temperature=-0.5"),
        (dict(top_p=0.0), "top_p=0.0"),
        (dict(top_p=1.5), "top_p=1.5"),
        (dict(top_k=0), "top_k=0"),
        (dict(num_beams=0), "num_beams=0"),
        (dict(max_new_tokens=-1), "max_new_tokens=-1"),
        (dict(num_beams=2, do_sample=True), "beam sampling"),
        (dict(eos_id=V), f"eos_id={V}"),
        (dict(length_penalty=math.inf), "length_penalty=inf"),
    ],
)
def test_bad_arguments_name_the_value(kw, match):
    model = tiny_model()
    kw = {"max_new_tokens": 3, **kw}
    with pytest.raises(ValueError, match=match):
        generate(model, prompt(0), kw.pop("max_new_tokens"), **kw)


def test_bad_prompts_name_the_problem():
    model = tiny_model(context_length=12)
    with pytest.raises(ValueError, match="prompt is empty"):
        generate(model, torch.zeros(1, 0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="13 tokens but context_length is 12"):
        generate(model, prompt(0, T=13), 3)
    with pytest.raises(ValueError, match="batch of 2"):
        stream(model, prompt(0, B=2), 3)
    with pytest.raises(ValueError, match="top_k=0"):
        stream(model, prompt(0), 3, top_k=0)  # checked at the call, before the first next()
    with pytest.raises(ValueError, match="min_tokens_to_keep=0"):
        top_p_filter(torch.zeros(1, 4), 0.5, min_tokens_to_keep=0)


# -- figures -------------------------------------------------------------------------------------
def test_decoding_figures_return_their_figure():
    from helpers.viz_inside import plot_frequencies, plot_next_token_probs

    probs = torch.softmax(torch.tensor([2.0, 1.0, 0.5, 0.1]), -1)
    labels = ["a", "b", "c", "d"]
    fig, (ax1, ax2) = plt.subplots(1, 2)
    assert (
        plot_next_token_probs(probs, labels, ax=ax1, kept=torch.tensor([1, 1, 0, 0]).bool()) is fig
    )
    assert plot_frequencies(probs, probs * 0.9, labels, ax=ax2) is fig
    plt.close(fig)
