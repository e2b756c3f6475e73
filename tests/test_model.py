"""helpers.model (Chapter 5): the config and its presets, the model's logits, causality, attention
weights, weight tying, GPT-2's initialization, parameter and FLOP counts, greedy generation (with
a golden test on the 124M preset), and the errors bad input gets."""

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from helpers.model import (
    PRESETS,
    GPTConfig,
    GPTModel,
    count_parameters,
    flops_per_token,
    generate_greedy,
    predicted_parameters,
)

TINY = dict(vocab_size=97, context_length=16, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.0)

# Parameters of each preset, computed by building it on the meta device (nothing allocated).
# (qkv_bias, tie_weights) -> count. GPT-2 itself is (True, True); 124,439,808 is also the count of
# transformers' GPT2LMHeadModel. 163,009,536 / 124,412,160 are the same small model without qkv
# biases.
PRESET_COUNTS = {
    "gpt2-small": {
        (True, True): 124_439_808,
        (True, False): 163_037_184,
        (False, True): 124_412_160,
        (False, False): 163_009_536,
    },
    "gpt2-medium": {(True, True): 354_823_168, (True, False): 406_286_336},
    "gpt2-large": {(True, True): 774_030_080, (True, False): 838_359_040},
    "gpt2-xl": {(True, True): 1_557_611_200, (True, False): 1_638_022_400},
}


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return GPTModel(GPTConfig(**{**TINY, **overrides})).eval()


def random_ids(shape, vocab_size=97, seed=1):
    return torch.randint(0, vocab_size, shape, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- config


def test_presets_and_overrides():
    small = GPTConfig.from_preset("gpt2-small")
    assert small == GPTConfig()  # the defaults are GPT-2 small
    assert (small.emb_dim, small.n_layers, small.n_heads, small.head_dim) == (768, 12, 12, 64)
    assert (
        small.qkv_bias
        and small.tie_weights
        and small.vocab_size == 50257
        and small.context_length == 1024
    )
    xl = GPTConfig.from_preset("gpt2-xl", context_length=256, drop_rate=0.0)
    assert (xl.emb_dim, xl.n_layers, xl.n_heads, xl.context_length, xl.drop_rate) == (
        1600,
        48,
        25,
        256,
        0.0,
    )
    assert set(PRESETS) == {"gpt2-small", "gpt2-medium", "gpt2-large", "gpt2-xl"}


def test_unknown_preset_and_unknown_field_are_clear_errors():
    with pytest.raises(ValueError, match=r"unknown preset 'gpt2-huge': use one of \['gpt2-large'"):
        GPTConfig.from_preset("gpt2-huge")
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['n_head'\]"):
        GPTConfig.from_preset("gpt2-small", n_head=8)


def test_emb_dim_not_divisible_by_heads_is_a_clear_error():
    with pytest.raises(ValueError, match="emb_dim=100 is not divisible by n_heads=12"):
        GPTConfig(emb_dim=100)
    with pytest.raises(ValueError, match="emb_dim=770 is not divisible by n_heads=12"):
        GPTConfig.from_preset("gpt2-small", emb_dim=770)


@pytest.mark.parametrize(
    "field,value",
    [("n_layers", 0), ("vocab_size", -5), ("context_length", 2.5), ("drop_rate", 1.0)],
)
def test_bad_sizes_are_clear_errors(field, value):
    with pytest.raises(ValueError, match=field):
        GPTConfig(**{field: value})


# --------------------------------------------------------------------------- parameter counts


@pytest.mark.parametrize("preset", PRESET_COUNTS)
def test_preset_parameter_counts(preset):
    for (qkv_bias, tie), expected in PRESET_COUNTS[preset].items():
        cfg = GPTConfig.from_preset(preset, qkv_bias=qkv_bias, tie_weights=tie)
        with torch.device("meta"):
            model = GPTModel(cfg)
        assert count_parameters(model) == predicted_parameters(cfg) == expected


def test_counts_equal_transformers_gpt2():
    import transformers

    for preset in PRESETS:
        cfg = GPTConfig.from_preset(preset)
        hf_cfg = transformers.GPT2Config(
            n_embd=cfg.emb_dim, n_layer=cfg.n_layers, n_head=cfg.n_heads
        )
        with torch.device("meta"):
            hf = transformers.GPT2LMHeadModel(hf_cfg)
        assert sum(p.numel() for p in hf.parameters()) == predicted_parameters(cfg)


@pytest.mark.parametrize("qkv_bias", [True, False])
@pytest.mark.parametrize("tie", [True, False])
def test_formula_matches_real_small_models(qkv_bias, tie):
    model = tiny_model(qkv_bias=qkv_bias, tie_weights=tie)
    assert count_parameters(model) == predicted_parameters(model.cfg)


# --------------------------------------------------------------------------- forward


def test_logits_shape_and_attention_weights():
    model = tiny_model()
    idx = random_ids((3, 11))
    weights = []
    logits = model(idx, attn_weights=weights)
    assert logits.shape == (3, 11, 97)
    assert len(weights) == 2 and all(w.shape == (3, 4, 11, 11) for w in weights)
    torch.testing.assert_close(weights[0].sum(-1), torch.ones(3, 4, 11))
    assert torch.all(weights[1].triu(diagonal=1) == 0)
    torch.testing.assert_close(logits, model(idx), atol=1e-5, rtol=1e-5)


def test_causality_later_tokens_never_change_earlier_logits():
    model = tiny_model()
    idx = random_ids((2, 16))
    for t in (1, 7, 15):
        changed = idx.clone()
        changed[:, t:] = (changed[:, t:] + 1) % 97
        torch.testing.assert_close(model(idx)[:, :t], model(changed)[:, :t], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(model(idx)[:, t], model(changed)[:, t])


def test_weight_tying():
    tied, untied = tiny_model(), tiny_model(tie_weights=False)
    assert tied.out_head.weight is tied.tok_emb.weight
    assert untied.out_head.weight is not untied.tok_emb.weight
    tied(random_ids((1, 5))).sum().backward()
    assert tied.tok_emb.weight.grad is not None and tied.tok_emb.weight.grad.abs().sum() > 0


def test_gpt2_initialization():
    model = tiny_model(emb_dim=128, n_layers=8, vocab_size=2000)
    scaled = 0.02 / math.sqrt(2 * 8)
    for block in model.trf_blocks:
        assert abs(block.att.out_proj.weight.std().item() - scaled) < 0.1 * scaled
        assert abs(block.ff.proj.weight.std().item() - scaled) < 0.1 * scaled
        assert abs(block.ff.fc.weight.std().item() - 0.02) < 0.002
        assert block.att.W_query.bias.abs().max() == 0 and block.ff.fc.bias.abs().max() == 0
        assert torch.equal(block.norm1.weight, torch.ones(128))
    assert abs(model.tok_emb.weight.std().item() - 0.02) < 0.002
    model.init_weights(scale_residual=False)
    assert abs(model.trf_blocks[0].att.out_proj.weight.std().item() - 0.02) < 0.002


def test_residual_scaling_keeps_the_stream_small():
    model = tiny_model(emb_dim=64, n_layers=12, vocab_size=200)
    idx = random_ids((2, 16), vocab_size=200)

    def final_stream_std():
        with torch.no_grad():
            x = model.tok_emb(idx) + model.pos_emb(torch.arange(16))
            for block in model.trf_blocks:
                x = block(x)
        return x.std().item()

    with_scaling = final_stream_std()
    torch.manual_seed(0)
    model.init_weights(scale_residual=False)
    assert final_stream_std() > 2 * with_scaling


def test_flops_formula_matches_the_flop_counter():
    model = tiny_model(context_length=24)
    idx = random_ids((2, 24))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(idx, attn_weights=[])  # the explicit attention path, whose matmuls the counter sees
    assert counter.get_total_flops() == flops_per_token(model.cfg) * idx.numel()
    assert flops_per_token(model.cfg, num_tokens=12) < flops_per_token(model.cfg)


# --------------------------------------------------------------------------- generation


def test_generate_greedy_appends_argmax_and_slides_the_window():
    model = tiny_model()
    idx = random_ids((2, 10))
    out = generate_greedy(model, idx, 12)  # 22 tokens: past the context of 16
    assert out.shape == (2, 22) and torch.equal(out[:, :10], idx)
    for t in range(10, 22):
        expected = model(out[:, max(0, t - 16) : t])[:, -1].argmax(-1)
        assert torch.equal(out[:, t], expected)
    assert torch.equal(generate_greedy(model, idx, 0), idx)


def test_golden_greedy_ids_of_the_untrained_124m_model():
    """torch.manual_seed(123), then GPTModel(GPTConfig.from_preset("gpt2-small")).eval(); the prompt
    "Hello, I am" is GPT-2 ids [15496, 11, 314, 716]. Chapter 5 prints the same ids. The untrained
    model's argmax at the four prompt positions is [15266, 36966, 4950, 15926], and it then repeats
    15926 (top-1 leads top-2 by at least 0.05 at every step, far above float noise)."""
    torch.manual_seed(123)
    model = GPTModel(GPTConfig.from_preset("gpt2-small")).eval()
    prompt = torch.tensor([[15496, 11, 314, 716]])
    with torch.no_grad():
        assert model(prompt)[0].argmax(-1).tolist() == [15266, 36966, 4950, 15926]
    assert generate_greedy(model, prompt, 6).tolist() == [[15496, 11, 314, 716] + [15926] * 6]


# --------------------------------------------------------------------------- bad input


def test_token_ids_out_of_range_are_clear_errors():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"token id 97 is out of range: ids must be in 0\.\.96"):
        model(torch.tensor([[1, 2, 97]]))
    with pytest.raises(ValueError, match=r"token id -1 is out of range"):
        model(torch.tensor([[-1, 2]]))


def test_too_long_input_and_prompt_are_clear_errors():
    model = tiny_model()
    with pytest.raises(ValueError, match="the input has 17 tokens but context_length is 16"):
        model(random_ids((1, 17)))
    with pytest.raises(ValueError, match=r"keep the last 16 tokens \(idx\[:, -16:\]\)"):
        generate_greedy(model, random_ids((1, 20)), 3)


def test_wrong_shape_or_dtype_are_clear_errors():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"must be a \(B, T\) tensor, got \(5,\)"):
        model(torch.tensor([1, 2, 3, 4, 5]))
    with pytest.raises(ValueError, match="must be integers"):
        model(torch.rand(1, 4))
    with pytest.raises(ValueError, match="max_new_tokens=-1"):
        generate_greedy(model, random_ids((1, 4)), -1)
