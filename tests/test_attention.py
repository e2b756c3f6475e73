"""helpers.attention (Chapter 3) against torch.nn.MultiheadAttention, against SDPA, against seed
001's printed numbers, and as a causal function; plus helpers.viz's heatmap. Tolerances: 1e-6
absolute in float32 for reference comparisons; 5e-5 for numbers printed with four decimals."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

from helpers.attention import (
    MultiHeadAttention,
    attention_benchmark,
    causal_attention,
    causal_mask,  # noqa: E402
    saved_tensor_bytes,
)
from helpers.viz import plot_attention, plot_attention_heads  # noqa: E402

ATOL = 1e-6  # float32, the tolerance for reference comparisons

# "Your journey starts with one step": Chapter 3's six 3-d vectors (seed 001).
INPUTS = torch.tensor(
    [
        [0.43, 0.15, 0.89],
        [0.55, 0.87, 0.66],
        [0.57, 0.85, 0.64],
        [0.22, 0.58, 0.33],
        [0.77, 0.25, 0.10],
        [0.05, 0.80, 0.55],
    ]
)


def make_layer(
    d_in=32, d_out=32, context_length=24, num_heads=4, dropout=0.0, qkv_bias=True, seed=0
):
    torch.manual_seed(seed)
    return MultiHeadAttention(
        d_in, d_out, context_length, num_heads, dropout=dropout, qkv_bias=qkv_bias
    ).eval()


def torch_reference(layer: MultiHeadAttention) -> nn.MultiheadAttention:
    """torch's own layer holding our weights: its in_proj is our query, key and value stacked."""
    assert layer.d_in == layer.d_out, (
        "nn.MultiheadAttention stacks q, k, v in one in_proj only when d_in == d_out"
    )
    ref = nn.MultiheadAttention(layer.d_out, layer.num_heads, bias=True, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(
            torch.cat([layer.W_query.weight, layer.W_key.weight, layer.W_value.weight])
        )
        biases = [
            lin.bias if lin.bias is not None else torch.zeros(layer.d_out)
            for lin in (layer.W_query, layer.W_key, layer.W_value)
        ]
        ref.in_proj_bias.copy_(torch.cat(biases))
        ref.out_proj.weight.copy_(layer.out_proj.weight)
        ref.out_proj.bias.copy_(layer.out_proj.bias)
    return ref.eval()


def with_weights(layer, x):
    """``(out, weights)``: the layer's output and the attention weights it recorded."""
    record = []
    out = layer(x, attn_weights=record)
    assert len(record) == 1
    return out, record[0]


@pytest.mark.parametrize("qkv_bias", [False, True])
def test_equals_torch_multihead_attention_with_causal_mask(qkv_bias):
    layer = make_layer(qkv_bias=qkv_bias)
    ref = torch_reference(layer)
    x = torch.randn(3, 20, 32, generator=torch.Generator().manual_seed(1))
    mask = causal_mask(
        20
    )  # True = may not attend, the same convention as nn.MultiheadAttention's bool mask
    expected, expected_w = ref(
        x, x, x, attn_mask=mask, need_weights=True, average_attn_weights=False
    )
    out, weights = with_weights(layer, x)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(weights, expected_w, atol=ATOL, rtol=0)
    torch.testing.assert_close(layer(x), expected, atol=ATOL, rtol=0)  # the SDPA fast path


def test_equals_sdpa_on_the_same_projections():
    layer = make_layer(num_heads=8)
    x = torch.randn(2, 24, 32, generator=torch.Generator().manual_seed(2))
    B, T, _ = x.shape
    q, k, v = (
        lin(x).view(B, T, 8, 4).transpose(1, 2)
        for lin in (layer.W_query, layer.W_key, layer.W_value)
    )
    ours, _ = causal_attention(q, k, v)
    torch.testing.assert_close(
        ours, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=ATOL, rtol=0
    )


def test_fast_path_and_weights_path_agree_forward_and_backward():
    layer = make_layer()
    x = torch.randn(2, 24, 32, generator=torch.Generator().manual_seed(3), requires_grad=True)
    fast = layer(x)
    slow, _ = with_weights(layer, x)
    torch.testing.assert_close(fast, slow, atol=ATOL, rtol=0)
    g_fast = torch.autograd.grad(fast.square().sum(), [x, layer.W_query.weight])
    g_slow = torch.autograd.grad(slow.square().sum(), [x, layer.W_query.weight])
    for a, b in zip(g_fast, g_slow):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_seed_001_multi_head_numbers():
    """Seed 001's printed multi-head output, reproduced with torch.manual_seed(123) right before
    construction (the seed's own code forgot that call; Chapter 3 shows the difference)."""
    torch.manual_seed(123)
    layer = MultiHeadAttention(d_in=3, d_out=2, context_length=6, num_heads=2)
    expected = torch.tensor(
        [
            [0.3190, 0.4858],
            [0.2943, 0.3897],
            [0.2856, 0.3593],
            [0.2693, 0.3873],
            [0.2639, 0.3928],
            [0.2575, 0.4028],
        ]
    )
    out = layer(torch.stack([INPUTS, INPUTS]))
    assert out.shape == (2, 6, 2)
    torch.testing.assert_close(out[0], expected, atol=5e-5, rtol=0)
    torch.testing.assert_close(out[1], out[0], atol=0, rtol=0)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), num_tokens=st.integers(2, 40), data=st.data())
def test_causality_changing_the_future_never_changes_the_past(seed, num_tokens, data):
    position = data.draw(st.integers(1, num_tokens - 1), label="first changed position")
    layer = make_layer(context_length=40, seed=seed % 7)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, num_tokens, 32, generator=gen)
    changed = x.clone()
    changed[:, position:] = 10 * torch.randn(2, num_tokens - position, 32, generator=gen)
    for record in (None, []):  # the SDPA path, then the explicit path that records weights
        before = layer(x, attn_weights=record)
        after = layer(changed, attn_weights=record)
        assert torch.equal(before[:, :position], after[:, :position])  # exactly, not just closely
        assert not torch.allclose(before[:, position:], after[:, position:])


@pytest.mark.parametrize("training", [False, True])
def test_returned_weights_are_causal_distributions(training):
    layer = make_layer(dropout=0.5).train(training)
    x = torch.randn(2, 24, 32, generator=torch.Generator().manual_seed(4))
    out, weights = with_weights(layer, x)
    assert weights.shape == (2, 4, 24, 24) and out.shape == (2, 24, 32)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 24), atol=ATOL, rtol=0)
    assert torch.all(weights.triu(diagonal=1) == 0)
    assert torch.all(weights[..., ~causal_mask(24)] > 0)  # every visible position gets some weight


def test_dropout_only_in_training():
    layer = make_layer(dropout=0.3)
    x = torch.randn(2, 24, 32, generator=torch.Generator().manual_seed(5))
    assert torch.equal(layer(x), layer(x))  # eval: deterministic, no dropout
    layer.train()
    assert not torch.allclose(layer(x), layer(x))
    no_dropout = make_layer(dropout=0.0).train()
    torch.testing.assert_close(no_dropout(x), no_dropout.eval()(x), atol=0, rtol=0)


def test_dropout_on_weights_keeps_their_expectation():
    torch.manual_seed(6)
    weights = torch.softmax(torch.randn(6, 6), dim=-1)
    mean = torch.stack([F.dropout(weights, p=0.5, training=True) for _ in range(4000)]).mean(0)
    torch.testing.assert_close(
        mean, weights, atol=0.02, rtol=0
    )  # 4000 draws: standard error below 0.01


def test_state_dict_and_attributes():
    layer = make_layer(d_in=16, d_out=32, num_heads=4, qkv_bias=False)
    assert set(layer.state_dict()) == {
        "W_query.weight",
        "W_key.weight",
        "W_value.weight",
        "out_proj.weight",
        "out_proj.bias",
    }
    assert layer.W_query.bias is None and layer.head_dim == 8 and layer.context_length == 24
    assert layer.mask.dtype == torch.bool and layer.mask.shape == (24, 24)
    other = make_layer(d_in=16, d_out=32, num_heads=4, qkv_bias=False, seed=9)
    other.load_state_dict(layer.state_dict())
    x = torch.randn(1, 10, 16)
    assert torch.equal(other(x), layer(x))


def test_bad_input():
    with pytest.raises(ValueError, match=r"d_out=10 is not divisible by num_heads=4"):
        MultiHeadAttention(8, 10, 16, num_heads=4)
    with pytest.raises(ValueError, match=r"dropout=1.5 must be a probability"):
        MultiHeadAttention(8, 8, 16, num_heads=2, dropout=1.5)
    with pytest.raises(ValueError, match=r"num_heads=0 must be a positive integer"):
        MultiHeadAttention(8, 8, 16, num_heads=0)
    layer = MultiHeadAttention(8, 8, context_length=16, num_heads=2)
    with pytest.raises(
        ValueError, match=r"num_tokens=17, more than this layer's context_length=16"
    ):
        layer(torch.randn(1, 17, 8))
    with pytest.raises(
        ValueError, match=r"shape \(17, 8\) \(2 dimensions\), expected 3.*unsqueeze\(0\)"
    ):
        layer(torch.randn(17, 8))
    with pytest.raises(ValueError, match=r"shape \(1, 2, 3, 8\) \(4 dimensions\), expected 3"):
        layer(torch.randn(1, 2, 3, 8), attn_weights=[])
    with pytest.raises(ValueError, match=r"x has 5 features.*d_in=8"):
        layer(torch.randn(1, 4, 5))


def test_saved_tensor_bytes_sees_the_weights_matrix():
    q, k, v = (torch.randn(1, 2, 64, 8, requires_grad=True) for _ in range(3))
    _, naive = saved_tensor_bytes(lambda: causal_attention(q, k, v)[0])
    _, fast = saved_tensor_bytes(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert naive >= 2 * 64 * 64 * 4  # at least the (1, 2, T, T) float32 weights
    assert fast < naive


def test_attention_benchmark_runs_on_a_tiny_input():
    r = attention_benchmark(batch_size=1, num_tokens=32, emb_dim=16, num_heads=2, repeat=1)
    assert r["naive_forward_s"] > 0 and r["sdpa_forward_s"] > 0 and r["saved_ratio"] > 1


def test_plot_attention_returns_the_figure():
    weights = torch.softmax(torch.randn(4, 4), -1)
    fig, axes = plt.subplots(1, 2)
    assert plot_attention(weights, ["a", " b", "c", "d"], ax=axes[0], title="t") is fig
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["a", " b", "c", "d"]
    assert plot_attention_heads(weights.expand(3, 4, 4), list("abcd")) is not fig
    with pytest.raises(ValueError, match="got 3 token labels for a 4 x 4"):
        plot_attention(weights, ["a", "b", "c"])
    plt.close("all")
