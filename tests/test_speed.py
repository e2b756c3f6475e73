"""Tests for helpers.speed (training-speed variants), helpers.memory and helpers.inference."""

import pytest
import torch

from helpers.generate import generate
from helpers.inference import generate_batched, generate_static
from helpers.kvcache import KVCache
from helpers.memory import saved_activation_bytes, training_memory
from helpers.model import GPTConfig, GPTModel, predicted_parameters
from helpers.speed import (
    SpeedOptions,
    build_variant,
    make_train_step,
    mfu,
    pad_vocabulary,
    padded_size,
    try_compile,
)

CFG = GPTConfig(vocab_size=500, context_length=16, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.0)


def tiny(cfg=CFG, seed=0):
    torch.manual_seed(seed)
    return GPTModel(cfg)


def batch(cfg=CFG, B=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, cfg.vocab_size, (B, cfg.context_length + 1), generator=g)
    return ids[:, :-1], ids[:, 1:]


def losses(model, options, steps=3):
    x, y = batch()
    step = make_train_step(model, x, y, CFG.vocab_size, options, lr=1e-3)
    return torch.tensor([step() for _ in range(steps)])


def test_plain_variant_matches_the_book_model():
    # The variant with sdpa=True runs MultiHeadAttention's own SDPA path, op for op.
    model, x = tiny(), batch()[0]
    fast = build_variant(model, SpeedOptions(sdpa=True)).eval()
    torch.testing.assert_close(fast(x), model.eval()(x), rtol=0, atol=1e-6)


# Each change against the plain version (naive attention, float32, for-loop AdamW), over three
# training steps. float32 changes only reorder sums: 1e-5 on losses near 6.2 is ~100x float32's
# rounding. bfloat16 keeps 8 mantissa bits (relative error ~4e-3), so 0.05 on a loss of ~6.2.
@pytest.mark.parametrize(
    "options, atol",
    [
        (SpeedOptions(sdpa=True), 1e-5),
        (SpeedOptions(fused_qkv=True), 1e-5),
        (SpeedOptions(fused_adamw=True), 1e-5),
        (SpeedOptions(pad_vocab_to=64), 1e-5),
        (SpeedOptions(autocast="bfloat16"), 5e-2),
    ],
    ids=["sdpa", "fused_qkv", "fused_adamw", "pad_vocab", "bf16"],
)
def test_each_change_keeps_the_losses(options, atol):
    plain = losses(build_variant(tiny(), SpeedOptions()), SpeedOptions())
    changed = losses(build_variant(tiny(), options), options)
    torch.testing.assert_close(changed, plain, rtol=0, atol=atol)


@pytest.mark.slow
def test_compiled_model_keeps_the_losses():
    options = SpeedOptions(sdpa=True)
    model = build_variant(tiny(), options)
    compiled, reason = try_compile(model, batch()[0])
    if reason is not None:
        pytest.skip(reason)
    plain = losses(build_variant(tiny(), SpeedOptions()), SpeedOptions())
    torch.testing.assert_close(
        losses(compiled, options), plain, rtol=0, atol=1e-5
    )  # as float32 above


def test_compile_unavailable_falls_back_with_a_reason(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("Compiler: cl is not found.")

    monkeypatch.setattr(torch, "compile", broken)
    model = build_variant(tiny(), SpeedOptions(sdpa=True))
    same, reason = try_compile(model, batch()[0])
    assert (
        same is model and "torch.compile failed here" in reason and "eager model is used" in reason
    )
    assert len(losses(same, SpeedOptions(sdpa=True), steps=1)) == 1  # the plain path still trains


def test_padding_the_vocabulary():
    assert padded_size(50257, 64) == 50304 and padded_size(128, 64) == 128
    model = pad_vocabulary(tiny(), 64)
    assert model.tok_emb.weight.shape[0] == 512 and model.out_head.weight is model.tok_emb.weight


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="autocast='fp8' is not a dtype name"):
        SpeedOptions(autocast="fp8")
    with pytest.raises(ValueError, match="pad_vocab_to=0 must be a positive integer"):
        SpeedOptions(pad_vocab_to=0)
    with pytest.raises(ValueError, match="peak_flops=0 must be a positive number"):
        mfu(CFG, 100.0, 0)


# -- memory --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "B, T, C, L, V, h, tie",
    [(1, 8, 16, 1, 100, 2, True), (2, 12, 24, 3, 150, 3, False), (3, 5, 32, 2, 77, 4, True)],
)
def test_activation_formula_counts_what_autograd_saves(B, T, C, L, V, h, tie):
    cfg = GPTConfig(
        vocab_size=V,
        context_length=T + 3,
        emb_dim=C,
        n_heads=h,
        n_layers=L,
        drop_rate=0.0,
        tie_weights=tie,
    )
    x, y = batch(cfg, B)
    x, y = x[:, :T].clone(), y[:, :T].clone()  # own storages, as a DataLoader gives
    assert (
        saved_activation_bytes(tiny(cfg).train(), x, y) == training_memory(cfg, B, T)["activations"]
    )


def test_training_memory_of_gpt2_small():
    cfg = GPTConfig.from_preset("gpt2-small")
    m = training_memory(cfg, batch_size=1)
    assert m["weights"] == m["gradients"] == 4 * predicted_parameters(cfg) == 4 * 124_439_808
    assert m["adamw"] == 2 * m["weights"] and m["total"] == sum(
        v for k, v in m.items() if k != "total"
    )
    with pytest.raises(ValueError, match="batch_size=0"):
        training_memory(cfg, batch_size=0)


# -- inference -----------------------------------------------------------------------------------
def test_static_cache_gives_the_models_logits_and_ids():
    model, x = tiny().eval(), batch()[0]
    cache = KVCache(max_len=16)
    first = model(x[:, :5], cache=cache)
    rest = model(x[:, 5:], cache=cache)  # continues after 5 cached tokens
    # the same operations on the same numbers, only the attention reads a longer buffer: 1e-5
    torch.testing.assert_close(torch.cat([first, rest], 1), model(x), rtol=0, atol=1e-5)
    assert torch.equal(generate_static(model, x[:, :6], 10), generate(model, x[:, :6], 10))


def test_batched_generation_equals_one_prompt_at_a_time():
    model = tiny().eval()
    g = torch.Generator().manual_seed(2)
    prompts = [torch.randint(0, CFG.vocab_size, (n,), generator=g).tolist() for n in (3, 7, 1, 5)]
    alone = [generate(model, torch.tensor([p]), 8)[0].tolist() for p in prompts]
    assert generate_batched(model, prompts, 8) == alone  # identical ids, padding and all


def test_inference_bad_input():
    model = tiny().eval()
    with pytest.raises(ValueError, match="exceed context_length=16"):
        generate_batched(model, [[1, 2, 3]], 20)
    with pytest.raises(ValueError, match="every prompt needs at least one token"):
        generate_batched(model, [[1], []], 2)
    with pytest.raises(ValueError, match="max_len=4: allocate a larger cache"):
        model(torch.zeros(1, 5, dtype=torch.long), cache=KVCache(max_len=4))
    with pytest.raises(ValueError, match="max_len=0 must be a positive integer"):
        KVCache(max_len=0)


def test_fused_qkv_keeps_the_function():
    model, x = tiny().eval(), batch()[0]
    fused = build_variant(model, SpeedOptions(fused_qkv=True)).eval()
    assert not hasattr(fused.trf_blocks[0].att, "W_query")
    torch.testing.assert_close(fused(x), model(x), rtol=0, atol=1e-5)
