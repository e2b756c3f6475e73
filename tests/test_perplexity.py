"""helpers.perplexity (Chapter 9): the sliding-window plan, and the perplexity of a tiny checkpoint
against a reference computed with transformers' GPT2LMHeadModel on the same text and windows (the
Hugging Face guide's loop, labels masked with -100): summed negative log-likelihoods agree within
REL_TOL relative (float32 logits; the differences seen are ~1e-7), token counts exactly."""

import math

import pytest
import torch
import torch.nn.functional as F
import transformers  # noqa: E402  (the reference: a hard test dependency)
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.gpt2 import load_hf_checkpoint
from helpers.model import GPTConfig, GPTModel
from helpers.perplexity import Perplexity, sliding_window_perplexity, verdict_losses, window_plan

REL_TOL = 1e-5
N_POSITIONS = 24


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """transformers' tiny GPT-2 (every tensor perturbed) and ours loaded from its saved
    checkpoint."""
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(
            n_embd=32,
            n_layer=2,
            n_head=4,
            n_positions=N_POSITIONS,
            vocab_size=97,
            bos_token_id=None,
            eos_token_id=None,
        )
    )
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(0.05 * torch.randn_like(p))
    directory = tmp_path_factory.mktemp("tiny")
    hf.save_pretrained(directory)
    return hf.eval(), load_hf_checkpoint(directory)


def text_ids(n, seed=3):
    return torch.randint(0, 97, (n,), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def reference(hf, ids, max_length, stride):
    """The Hugging Face guide's loop, counting the labels that the internal shift keeps."""
    encodings = ids[None]  # (1, n)
    seq_len = encodings.size(1)
    nll_sum, n_tokens, guide_n_tokens, prev_end_loc = 0.0, 0, 0, 0
    for begin_loc in range(0, seq_len, stride):
        end_loc = min(begin_loc + max_length, seq_len)
        trg_len = end_loc - prev_end_loc
        input_ids = encodings[:, begin_loc:end_loc]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        loss = hf(input_ids, labels=target_ids).loss.double().item()
        scored = (target_ids[:, 1:] != -100).sum().item()  # the labels left after the shift
        if scored == 0:  # a last window of one token (stride = context): its mean loss is nan
            break
        nll_sum += loss * scored
        n_tokens += scored
        guide_n_tokens += (target_ids != -100).sum().item() - 1  # the guide's count
        prev_end_loc = end_loc
        if end_loc == seq_len:
            break
    return nll_sum, n_tokens, guide_n_tokens


@pytest.mark.parametrize(
    "n, context, stride",
    [(100, 24, 12), (100, 24, 24), (97, 24, 24), (100, 16, 5), (20, 24, 12), (30, 24, 1)],
)
def test_equals_transformers_reference(models, n, context, stride):
    hf, ours = models
    ids = text_ids(n)
    result = sliding_window_perplexity(ours, ids, context=context, stride=stride)
    nll, n_tokens, guide_n_tokens = reference(hf, ids, context, stride)
    print(
        f"n={n} context={context} stride={stride}: ppl {result.perplexity:.6f}, reference "
        f"{math.exp(nll / n_tokens):.6f}"
    )
    assert result.n_tokens == n_tokens
    assert result.nll == pytest.approx(nll, rel=REL_TOL)
    assert result.perplexity == pytest.approx(math.exp(nll / n_tokens), rel=REL_TOL)
    # with overlapping windows the guide counts one token too few in every window after the first
    assert guide_n_tokens == n_tokens - (result.n_windows - 1 if stride < context else 0)


def test_defaults_are_the_models_context_and_half_of_it(models):
    _, ours = models
    result = sliding_window_perplexity(ours, text_ids(60).tolist())
    assert (result.context, result.stride) == (N_POSITIONS, N_POSITIONS // 2)
    assert result.n_tokens == 59 and result.loss == pytest.approx(result.nll / 59)
    assert result == sliding_window_perplexity(ours, text_ids(60)[None])  # (1, n) is accepted too


def test_non_overlapping_windows_are_the_mean_cross_entropy(models):
    """stride = context: each window's first token has nothing before it and is not scored."""
    _, ours = models
    ids = text_ids(72)  # three full windows of 24
    with torch.no_grad():
        windows = ids.view(3, 24)
        logits = ours(windows)  # (3, 24, V)
        expected = F.cross_entropy(logits[:, :-1].flatten(0, 1), windows[:, 1:].flatten()).item()
    result = sliding_window_perplexity(ours, ids, context=24, stride=24)
    assert result.n_tokens == 3 * 23 and result.loss == pytest.approx(expected, rel=REL_TOL)


def test_more_context_lowers_the_perplexity_of_a_repeating_text(models):
    """A text that repeats every 20 tokens: windows that see the previous copy predict better."""
    _, ours = models
    ids = text_ids(20).repeat(6)
    far = sliding_window_perplexity(ours, ids, context=24, stride=24)
    near = sliding_window_perplexity(ours, ids, context=24, stride=2)
    assert near.n_windows > far.n_windows and near.perplexity != far.perplexity


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 120), context=st.integers(2, 40), data=st.data())
def test_plan_scores_every_token_once_with_enough_context(n, context, data):
    stride = data.draw(st.integers(1, context))
    plan = window_plan(n, context, stride)
    scored = [t for _, end, first in plan for t in range(first, end)]
    assert scored == sorted(set(scored))  # in order, each once
    for i, (begin, end, first) in enumerate(plan):
        assert 0 <= begin < first <= end <= n and end - begin <= context
        if i > 0:
            assert first - begin >= context - stride  # at least context - stride tokens before
    if stride < context:
        assert scored == list(range(1, n))
    else:  # non-overlapping: the first token of each window is context-free and not scored
        assert set(range(1, n)) - set(scored) == set(range(context, n, context))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(context=24, stride=25), "stride=25 is larger than context=24"),
        (dict(context=25), "context=25 is longer than the model's context_length=24"),
        (dict(context=24, stride=0), "stride=0 must be a positive integer"),
        (dict(context=1), "context=1 must be at least 2"),
    ],
)
def test_bad_windows_are_refused(models, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sliding_window_perplexity(models[1], text_ids(50), **kwargs)


def test_a_text_too_short_is_refused(models):
    with pytest.raises(ValueError, match="the text has 1 token"):
        sliding_window_perplexity(models[1], [5])


def test_result_properties():
    r = Perplexity(nll=10.0, n_tokens=5, n_windows=1, context=8, stride=4)
    assert r.loss == 2.0 and r.perplexity == pytest.approx(math.exp(2.0))


def test_verdict_losses_follow_llms_from_scratch(verdict_text):
    """The split and batching of LLMs-from-scratch's exercise 5.5 (on the story's first 2,800
    characters and 64-token windows, to be quick), against a direct computation."""
    from helpers.offline import gpt2_encoding

    enc, text, T = gpt2_encoding(), verdict_text[:2800], 64
    torch.manual_seed(0)
    model = GPTModel(
        GPTConfig(emb_dim=8, n_heads=2, n_layers=1, context_length=T, drop_rate=0.0)
    ).eval()
    train_loss, val_loss = verdict_losses(model, text, enc, context_length=T)
    split = int(0.9 * len(text))
    expected, n_batches = [], []
    for part, drop_last in ((text[:split], True), (text[split:], False)):
        ids = torch.tensor(enc.encode(part))
        starts = list(range(0, len(ids) - T, T))
        batches = [starts[i : i + 2] for i in range(0, len(starts), 2)]
        if drop_last and len(batches[-1]) < 2:
            batches.pop()
        with torch.no_grad():
            means = [
                F.cross_entropy(
                    model(torch.stack([ids[s : s + T] for s in b])).flatten(0, 1),
                    torch.stack([ids[s + 1 : s + T + 1] for s in b]).flatten(),
                ).item()
                for b in batches
            ]
        expected.append(sum(means) / len(means))
        n_batches.append(len(batches))
    assert n_batches == [4, 1]  # 9 training windows: the incomplete fifth batch is dropped
    assert (train_loss, val_loss) == pytest.approx(tuple(expected), rel=1e-6)
    with pytest.raises(ValueError, match="train_ratio=1.5"):
        verdict_losses(model, text, enc, train_ratio=1.5)
