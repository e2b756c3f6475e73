"""helpers.insight (Chapter 10): attention from the model's own forward pass, the head scores on
hand-made patterns, the bertviz adapter (what bertviz itself accepts), the logit lens (its last
layer is the model's output), nearest tokens, greedy traces, and the errors bad input gets."""

import math

import pytest
import torch

from helpers.heads import (
    SCORE_NAMES,
    attention_distance,
    attention_entropy,
    attention_of,
    first_token_score,
    head_scores,
    key_token_preference,
    previous_token_score,
    same_token_mask,
    same_token_score,
    self_score,
    uniform_attention,
)
from helpers.insight import (
    bertviz_inputs,
    cosine_similarity_matrix,
    greedy_trace,
    logit_lens,
    nearest_tokens,
    residual_stream,
    token_strings,
)
from helpers.model import GPTConfig, GPTModel, generate_greedy
from helpers.tokenizer import BPETokenizer

TINY = dict(vocab_size=61, context_length=12, emb_dim=24, n_heads=3, n_layers=2, drop_rate=0.0)


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return GPTModel(GPTConfig(**{**TINY, **overrides})).eval()


def random_ids(shape, vocab_size=61, seed=1):
    return torch.randint(0, vocab_size, shape, generator=torch.Generator().manual_seed(seed))


def as_heads(*patterns):
    """(T, T) patterns -> (B=1, h, T, T) weights, one head per pattern."""
    return torch.stack(patterns)[None]


def previous_pattern(T):
    w = torch.zeros(T, T)
    w[0, 0] = 1.0
    w[torch.arange(1, T), torch.arange(T - 1)] = 1.0
    return w


def first_pattern(T):
    w = torch.zeros(T, T)
    w[:, 0] = 1.0
    return w


# --------------------------------------------------------------------------- attention


def test_attention_with_and_without_the_request_gives_the_same_logits():
    model = tiny_model()
    idx = random_ids((2, 9))
    with torch.no_grad():
        plain = model(idx)
        weights = []
        logits = model(idx, attn_weights=weights)
    assert torch.allclose(plain, logits, atol=1e-5, rtol=0)
    assert len(weights) == TINY["n_layers"] and weights[0].shape == (2, TINY["n_heads"], 9, 9)
    stacked = attention_of(model, idx)
    assert stacked.shape == (2, 2, 3, 9, 9)
    assert torch.allclose(stacked.sum(-1), torch.ones(2, 2, 3, 9), atol=1e-6)
    assert torch.all(stacked.triu(diagonal=1) == 0)  # causal: nothing above the diagonal


# --------------------------------------------------------------------------- head scores


def test_scores_of_hand_made_heads():
    T = 6
    w = as_heads(
        previous_pattern(T), first_pattern(T), torch.eye(T), uniform_attention(T)
    )  # (1, 4, T, T)
    assert torch.allclose(
        previous_token_score(w),
        torch.tensor([1.0, 1 / 5, 0.0, 0.0])
        + torch.tensor([0.0, 0.0, 0.0, sum(1 / (t + 1) for t in range(1, T)) / (T - 1)]),
    )
    # the first-token head at t = 1 is also looking at t - 1 = 0: counted by both scores
    assert torch.allclose(first_token_score(w)[:3], torch.tensor([1 / 5, 1.0, 0.0]))
    assert torch.allclose(self_score(w)[:3], torch.tensor([0.0, 0.0, 1.0]))
    uniform = sum(1 / (t + 1) for t in range(1, T)) / (T - 1)
    for score in (previous_token_score, first_token_score, self_score):
        assert math.isclose(score(w)[3].item(), uniform, rel_tol=1e-6)


def test_scores_keep_leading_axes_and_average_the_batch():
    T = 5
    one = as_heads(previous_pattern(T), first_pattern(T))  # (1, 2, T, T)
    batch = torch.cat([one, as_heads(first_pattern(T), previous_pattern(T))])  # (2, 2, T, T)
    layers = torch.stack([batch, batch.flip(1)])  # (L=2, B=2, h=2, T, T)
    assert previous_token_score(batch).shape == (2,)
    assert torch.allclose(previous_token_score(batch), torch.full((2,), (1 + 1 / 4) / 2))
    assert previous_token_score(layers).shape == (2, 2)
    assert attention_entropy(layers).shape == attention_distance(layers).shape == (2, 2)


def test_same_token_score_counts_earlier_copies_only():
    idx = torch.tensor([[5, 7, 5, 7, 5]])  # copies: t=2 -> {0}, t=3 -> {1}, t=4 -> {0, 2}
    mask = same_token_mask(idx)[0]
    assert mask.nonzero().tolist() == [[2, 0], [3, 1], [4, 0], [4, 2]]
    T = 5
    copying = torch.zeros(T, T)
    copying[0, 0], copying[1, 1] = 1.0, 1.0  # no earlier copy: these queries do not count
    copying[2, 0], copying[3, 1], copying[4, 0], copying[4, 2] = 1.0, 1.0, 0.5, 0.5
    w = as_heads(copying, previous_pattern(T), torch.eye(T))
    score = same_token_score(w, idx)
    # in 5 7 5 7 5 the previous token is never a copy; each query is its own copy, not an earlier
    # one
    assert torch.allclose(score, torch.tensor([1.0, 0.0, 0.0]))
    assert torch.isnan(
        same_token_score(w, torch.tensor([[1, 2, 3, 4, 0]]))
    ).all()  # nothing repeats


def test_uniform_head_distance_and_entropy():
    T = 7
    w = uniform_attention(T)[None, None]  # (1, 1, T, T)
    assert torch.allclose(w.sum(-1), torch.ones(1, 1, T))
    expected_distance = sum(t / 2 for t in range(1, T)) / (T - 1)  # mean of 0..t is t/2
    expected_entropy = sum(math.log(t + 1) for t in range(1, T)) / (T - 1)
    assert math.isclose(attention_distance(w).item(), expected_distance, rel_tol=1e-6)
    assert math.isclose(attention_entropy(w).item(), expected_entropy, rel_tol=1e-6)
    sharp = previous_pattern(T)[None, None]
    assert (
        math.isclose(attention_distance(sharp).item(), 1.0)
        and attention_entropy(sharp).item() == 0.0
    )


def test_head_scores_has_all_four():
    model = tiny_model()
    idx = random_ids((2, 12), vocab_size=5)  # a small alphabet: tokens repeat
    weights = attention_of(model, idx)
    scores = head_scores(weights, idx)
    assert tuple(scores) == SCORE_NAMES == ("previous", "first", "self", "same")
    assert all(s.shape == (2, 3) for s in scores.values())
    assert all(bool(((s >= 0) & (s <= 1)).all()) for s in scores.values())


def test_bad_weights_and_ids_are_clear_errors():
    with pytest.raises(
        ValueError, match=r"must be a tensor of shape \(\.\.\., B, h, T, T\), got \(4, 5\)"
    ):
        previous_token_score(torch.zeros(4, 5))
    with pytest.raises(ValueError, match="need T >= 2"):
        first_token_score(torch.ones(1, 1, 1, 1))
    w = uniform_attention(4)[None, None]
    with pytest.raises(ValueError, match=r"idx must be the \(B, T\) = \(1, 4\) token ids"):
        same_token_score(w, torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="num_tokens=0 must be at least 1"):
        uniform_attention(0)


# --------------------------------------------------------------------------- bertviz


def test_bertviz_inputs_have_the_shapes_bertviz_expects():
    model = tiny_model()
    idx = random_ids((2, 8))
    weights = []
    model(idx, attn_weights=weights)
    tokens = [f"t{i}" for i in range(8)]
    attention, toks = bertviz_inputs(weights, tokens, batch_index=1, decimals=None)
    assert isinstance(attention, tuple) and len(attention) == TINY["n_layers"]
    assert all(
        a.shape == (1, TINY["n_heads"], 8, 8) and a.dtype == torch.float64 for a in attention
    )
    assert torch.equal(attention[1][0], weights[1][1].double())
    assert toks == tokens
    rounded, _ = bertviz_inputs(
        torch.stack(weights), tokens, decimals=3
    )  # stacked (L, B, h, T, T) too
    assert torch.allclose(rounded[0][0], weights[0][0].double(), atol=5e-4)


def test_bertviz_accepts_the_adapter_output():
    pytest.importorskip("bertviz")
    from bertviz import head_view, model_view

    model = tiny_model()
    idx = random_ids((1, 6))
    weights = []
    model(idx, attn_weights=weights)
    attention, tokens = bertviz_inputs(weights, [f"w{i}" for i in range(6)])
    for view in (head_view, model_view):
        html = view(attention, tokens, html_action="return").data
        assert "require.min.js" in html and '"w5"' in html
        assert "0000000" not in html  # rounded weights are written with few digits


def test_bertviz_inputs_bad_input_is_a_clear_error():
    w = [torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 5, 5)]
    with pytest.raises(ValueError, match=r"layer 1's weights have shape \(1, 2, 5, 5\)"):
        bertviz_inputs(w, list("abcd"))
    with pytest.raises(ValueError, match="got 3 tokens for attention over T=4 positions"):
        bertviz_inputs(w[:1], list("abc"))
    with pytest.raises(ValueError, match="batch_index=2 is out of range for a batch of 1"):
        bertviz_inputs(w[:1], list("abcd"), batch_index=2)
    with pytest.raises(ValueError, match="got no attention weights"):
        bertviz_inputs([], [])


def test_token_strings_are_one_printable_string_per_token():
    tok = BPETokenizer().train("the cat sat on the mat.\nthe end — done", vocab_size=270)
    ids = tok.encode("the mat.\n—")
    strings = token_strings(tok, ids)
    assert len(strings) == len(ids) and "\\n" in "".join(strings) and "\n" not in "".join(strings)
    assert "".join(strings).replace("\\n", "\n").replace("\ufffd", "") in "the mat.\n—"


# --------------------------------------------------------------------------- logit lens


def test_logit_lens_last_layer_is_the_models_output():
    model = tiny_model(tie_weights=False, qkv_bias=True)
    idx = random_ids((2, 10))
    lens = logit_lens(model, idx)
    assert lens.shape == (TINY["n_layers"] + 1, 2, 10, TINY["vocab_size"])
    with torch.no_grad():
        assert torch.equal(lens[-1], model(idx))
        x0 = model.tok_emb(idx) + model.pos_emb(torch.arange(10))
        assert torch.allclose(lens[0], model.out_head(model.final_norm(x0)), atol=1e-6)
        x1 = model.trf_blocks[0](x0)
        assert torch.allclose(lens[1], model.out_head(model.final_norm(x1)), atol=1e-5)


def test_residual_stream_leaves_no_hooks_behind():
    model = tiny_model()
    idx = random_ids((1, 5))
    states, logits = residual_stream(model, idx)
    assert states.shape == (TINY["n_layers"] + 1, 1, 5, TINY["emb_dim"]) and logits.shape == (
        1,
        5,
        61,
    )
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="context_length is 12"):
        residual_stream(model, random_ids((1, 13)))
    assert all(not m._forward_hooks for m in model.modules())


# --------------------------------------------------------------------------- embeddings


def test_nearest_tokens_and_cosine_matrix():
    table = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    assert [i for i, _ in nearest_tokens(table, 0, k=3)] == [1, 2, 3]
    ((best, sim),) = nearest_tokens(table, 3, k=1)
    assert best == 2 and math.isclose(sim, 0.0, abs_tol=1e-6)
    sims = cosine_similarity_matrix(table)
    assert sims.shape == (4, 4) and torch.allclose(sims.diagonal(), torch.ones(4))
    assert math.isclose(sims[0, 3].item(), -1.0, rel_tol=1e-6)
    with pytest.raises(ValueError, match="token id 4 is out of range"):
        nearest_tokens(table, 4)
    with pytest.raises(ValueError, match="k=4 must be between 1 and 3"):
        nearest_tokens(table, 0, k=4)
    with pytest.raises(ValueError, match=r"2-D \(N, C\) tensor, got \(4,\)"):
        cosine_similarity_matrix(torch.zeros(4))


# --------------------------------------------------------------------------- greedy trace


def test_greedy_trace_follows_greedy_generation():
    model = tiny_model()
    idx = random_ids((1, 4))
    steps = greedy_trace(model, idx, max_new_tokens=12, top_k=3)  # runs past context_length=12
    expected = generate_greedy(model, idx, 12)[0, 4:].tolist()
    assert [s.top_ids[0] for s in steps] == expected
    assert all(
        s.top_probs == sorted(s.top_probs, reverse=True) and len(s.top_ids) == 3 for s in steps
    )
    assert steps[0].attention.shape == (2, 3, 4, 4)
    assert len(steps[-1].ids) == 12 and steps[-1].attention.shape == (2, 3, 12, 12)
    long_prompt = random_ids((1, 20))  # longer than context_length=12: the last 12 tokens count
    steps = greedy_trace(model, long_prompt, max_new_tokens=2)
    assert steps[0].ids == long_prompt[0, -12:].tolist()
    assert steps[0].top_ids[0] == generate_greedy(model, long_prompt[:, -12:], 1)[0, -1].item()
    with pytest.raises(ValueError, match="token ids must be a"):
        greedy_trace(model, long_prompt[0], 1)
    with pytest.raises(ValueError, match="one prompt: got a batch of 2"):
        greedy_trace(model, random_ids((2, 4)), 1)
    with pytest.raises(ValueError, match="max_new_tokens=0 must be at least 1"):
        greedy_trace(model, idx, 0)
    with pytest.raises(ValueError, match="top_k=0 must be between 1 and vocab_size=61"):
        greedy_trace(model, idx, 1, top_k=0)


def test_key_token_preference_finds_the_token_a_head_seeks():
    T = 6
    idx = torch.tensor([[3, 1, 3, 2, 3, 1]])
    seek_one = torch.zeros(
        T, T
    )  # every query looks at the latest 1 it can see (or at itself before that)
    seek_one[0, 0] = 1.0
    for t in range(1, T):
        seek_one[t, max(s for s in range(t + 1) if idx[0, s] == 1)] = 1.0
    w = as_heads(seek_one, uniform_attention(T))  # (1, 2, T, T)
    ratio = key_token_preference(w, idx, vocab_size=5, min_uniform=0.0)
    assert ratio.shape == (2, 5)
    assert ratio[0, 1] > 2 and ratio[0, 3] == 0 and ratio[0, 2] == 0
    assert torch.allclose(ratio[1, [1, 2, 3]], torch.ones(3))  # an even head prefers nothing
    assert torch.isnan(ratio[:, [0, 4]]).all()  # ids that never occur
    assert torch.isnan(key_token_preference(w, idx, vocab_size=5, min_uniform=10.0)).all()
