"""helpers.layers (Chapter 4) against PyTorch's LayerNorm and GELU, and the block's promises:
shape kept, causal, the pre-LayerNorm formula, GPT-2's parameter count."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from helpers.layers import GELU, FeedForward, LayerNorm, TransformerBlock, gelu


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    emb_dim=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    offset=st.floats(-10, 10),
    scale=st.floats(1e-2, 1e2),
)
def test_layernorm_equals_torch(shape, emb_dim, seed, offset, scale):
    """Any shape, scale and offset; the offset is at most 10 standard deviations, beyond which
    float32 cancellation in (x - mean), not the formula, decides the last digits."""
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(*shape, emb_dim, generator=gen) + offset) * scale
    ours, theirs = LayerNorm(emb_dim), nn.LayerNorm(emb_dim, eps=1e-5)
    with torch.no_grad():
        ours.weight.copy_(torch.randn(emb_dim, generator=gen))
        ours.bias.copy_(torch.randn(emb_dim, generator=gen))
    theirs.load_state_dict(ours.state_dict())
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-4, rtol=1e-4)


def test_layernorm_equals_the_written_out_formula():
    """The fused kernel computes Chapter 4's formula, (x - mean) / sqrt(var + eps) * weight + bias
    with the biased variance; here written out in float64, against the layer in float32, to
    2e-6 (float32 rounding of values of size about 3)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 7, 64, generator=gen) * 3 + 1
    ln = LayerNorm(64)
    with torch.no_grad():
        ln.weight.copy_(torch.randn(64, generator=gen))
        ln.bias.copy_(torch.randn(64, generator=gen))
    x64, w64, b64 = x.double(), ln.weight.double(), ln.bias.double()
    mean = x64.mean(-1, keepdim=True)
    var = x64.var(-1, keepdim=True, unbiased=False)
    formula = (x64 - mean) / torch.sqrt(var + 1e-5) * w64 + b64
    torch.testing.assert_close(ln(x).double(), formula, atol=2e-6, rtol=0)


def test_layernorm_state_dict_names_unchanged():
    assert list(LayerNorm(8).state_dict()) == ["weight", "bias"]


def test_layernorm_hand_worked_example():
    """Seed 001's example: torch.manual_seed(123); torch.randn(2, 5); means -0.3596, -0.2606,
    biased variances 0.2015, 0.2673, and the first normalized row."""
    torch.manual_seed(123)
    x = torch.randn(2, 5)
    torch.testing.assert_close(x.mean(-1), torch.tensor([-0.3596, -0.2606]), atol=1e-4, rtol=0)
    torch.testing.assert_close(
        x.var(-1, unbiased=False), torch.tensor([0.2015, 0.2673]), atol=1e-4, rtol=0
    )
    out = LayerNorm(5)(x)
    torch.testing.assert_close(
        out[0], torch.tensor([0.5528, 1.0693, -0.0223, 0.2656, -1.8654]), atol=1e-4, rtol=0
    )


def test_layernorm_constant_vector_maps_to_bias_not_nan():
    ln = LayerNorm(4)
    with torch.no_grad():
        ln.bias.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    out = ln(torch.full((2, 4), 7.0))
    assert not torch.isnan(out).any()
    torch.testing.assert_close(out, ln.bias.detach().expand(2, 4))


def test_layernorm_is_per_token():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 8)
    ln = LayerNorm(8)
    torch.testing.assert_close(ln(x[:1]), ln(x)[:1])
    torch.testing.assert_close(ln(x[:, 2:3]), ln(x)[:, 2:3])


@pytest.mark.parametrize("mode", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gelu_equals_torch(mode, dtype):
    x = torch.linspace(-10, 10, 20_001, dtype=dtype)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(gelu(x, mode), F.gelu(x, approximate=mode), atol=tol, rtol=0)
    torch.testing.assert_close(GELU(mode)(x), F.gelu(x, approximate=mode), atol=tol, rtol=0)


@pytest.mark.parametrize("mode", ["none", "tanh"])
def test_gelu_equals_the_written_out_formula(mode):
    """The fused kernel against Chapter 4's formulas written out in float64: 1e-6 in float32."""
    x = torch.linspace(-10, 10, 20_001)
    x64 = x.double()
    if mode == "none":
        formula = 0.5 * x64 * (1.0 + torch.erf(x64 / math.sqrt(2.0)))
    else:
        inner = math.sqrt(2.0 / math.pi) * (x64 + 0.044715 * x64**3)
        formula = 0.5 * x64 * (1.0 + torch.tanh(inner))
    torch.testing.assert_close(gelu(x, mode).double(), formula, atol=1e-6, rtol=0)
    torch.testing.assert_close(GELU(mode)(x).double(), formula, atol=1e-6, rtol=0)


def test_gelu_modes_differ_by_less_than_5e_4():
    x = torch.linspace(-8, 8, 160_001, dtype=torch.float64)
    diff = (gelu(x, "none") - gelu(x, "tanh")).abs()
    assert 4.7e-4 < diff.max().item() < 4.8e-4
    assert abs(abs(x[diff.argmax()].item()) - 2.70) < 0.01


def test_gelu_default_is_gpt2_tanh_and_bad_mode_is_a_clear_error():
    assert GELU().approximate == "tanh"
    with pytest.raises(ValueError, match="approximate='erf' is not a GELU mode"):
        GELU("erf")
    with pytest.raises(ValueError, match="not a GELU mode"):
        gelu(torch.zeros(1), "fast")


def test_feedforward_shape_and_parameter_count():
    ff = FeedForward(48)
    x = torch.randn(2, 3, 48)
    assert ff(x).shape == (2, 3, 48)
    assert ff.fc.out_features == 4 * 48
    assert sum(p.numel() for p in ff.parameters()) == 8 * 48**2 + 5 * 48
    assert isinstance(ff.act, GELU) and ff.act.approximate == "tanh"


def small_block(qkv_bias=True, drop_rate=0.0):
    torch.manual_seed(0)
    return TransformerBlock(32, 4, context_length=16, drop_rate=drop_rate, qkv_bias=qkv_bias).eval()


@pytest.mark.parametrize("qkv_bias", [True, False])
def test_block_parameter_count(qkv_bias):
    C = 32
    expected = 12 * C * C + 10 * C + (3 * C if qkv_bias else 0)
    assert sum(p.numel() for p in small_block(qkv_bias).parameters()) == expected


def test_block_is_pre_layernorm_with_two_shortcuts():
    block = small_block()
    x = torch.randn(2, 7, 32)
    h = x + block.att(block.norm1(x))
    expected = h + block.ff(block.norm2(h))
    torch.testing.assert_close(block(x), expected)


def test_block_keeps_shape_and_returns_weights():
    block = small_block()
    x = torch.randn(3, 9, 32)
    record = []
    out = block(x, attn_weights=record)
    (weights,) = record
    assert out.shape == x.shape and weights.shape == (3, 4, 9, 9)
    torch.testing.assert_close(out, block(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4, 9))


def test_block_is_causal():
    block = small_block()
    x = torch.randn(2, 10, 32)
    changed = x.clone()
    changed[:, 6:] = torch.randn(2, 4, 32)
    torch.testing.assert_close(block(x)[:, :6], block(changed)[:, :6], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(block(x)[:, 6:], block(changed)[:, 6:])


def test_block_dropout_only_in_training():
    block = small_block(drop_rate=0.5)
    x = torch.randn(2, 5, 32)
    assert torch.equal(block(x), block(x))
    block.train()
    assert not torch.equal(block(x), block(x))


def test_block_rejects_emb_dim_not_divisible_by_heads():
    with pytest.raises(ValueError, match="emb_dim=30 is not divisible by n_heads=4"):
        TransformerBlock(30, 4, context_length=8)


def test_shortcut_experiment_numbers_of_seed_001():
    """Chapter 4's five-layer network, seed 123, input [[1, 0, -1]]: the first layer's mean gradient
    is 2.0174e-04 without shortcuts and 2.2170e-01 with them (seed 001 prints the same)."""
    results = {}
    for use_shortcut in (False, True):
        torch.manual_seed(123)
        layers = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), GELU()) for a, b in zip([3, 3, 3, 3, 3], [3, 3, 3, 3, 1])
        )
        x = torch.tensor([[1.0, 0.0, -1.0]])
        for layer in layers:
            y = layer(x)
            x = x + y if use_shortcut and y.shape == x.shape else y
        nn.MSELoss()(x, torch.tensor([[0.0]])).backward()
        results[use_shortcut] = layers[0][0].weight.grad.abs().mean().item()
    assert math.isclose(results[False], 0.00020173587836325169, rel_tol=1e-5)
    assert math.isclose(results[True], 0.22169791162014008, rel_tol=1e-5)
