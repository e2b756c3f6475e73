"""Tests for helpers.pretrain (Chapter 6): the book's settings, setup_pretraining, book_model."""

import dataclasses
import math

import pytest
import torch
from tiny_training import same_state

from helpers.data import create_dataloader
from helpers.pretrain import BOOK_SMALL, FULL_124M, book_model, setup_pretraining
from helpers.train import train


# -- the chapter's two configurations, on tiny stand-ins ---------------------------------------
@pytest.fixture(scope="module")
def gpt2_tokenizer():
    from helpers.offline import gpt2_encoding

    return gpt2_encoding()


@pytest.mark.parametrize("settings", [BOOK_SMALL, FULL_124M], ids=["book-small", "full-124m"])
def test_setup_pretraining_paths_run(verdict_text, gpt2_tokenizer, settings):
    shape = dataclasses.replace(
        settings.model, emb_dim=16, n_heads=2, n_layers=1, context_length=32
    )
    stand_in = dataclasses.replace(settings, model=shape, num_epochs=1)
    torch.manual_seed(123)
    model, opt, train_loader, val_loader = setup_pretraining(verdict_text, gpt2_tokenizer, stand_in)
    assert (
        model.cfg.vocab_size == 50257
        and model.cfg.tie_weights is False
        and model.cfg.qkv_bias is False
    )
    assert (
        train_loader.batch_size == settings.batch_size and opt.param_groups[0]["lr"] == settings.lr
    )
    emb_std = model.tok_emb.weight.std().item()
    expected = settings.embedding_std or 0.02
    assert abs(emb_std - expected) < 0.1 * expected
    n_train = len(gpt2_tokenizer.encode(verdict_text[: int(0.9 * len(verdict_text))]))
    assert len(train_loader) == (n_train - 32 + 31) // 32 // settings.batch_size
    train_loader = create_dataloader(
        list(train_loader.dataset.ids[:200]), settings.batch_size, 32, 32, seed=settings.loader_seed
    )  # a few steps only
    before = model.tok_emb.weight.detach().clone()
    h = train(
        model,
        train_loader,
        val_loader,
        opt,
        1,
        eval_every=len(train_loader),
        eval_iters=1,
        progress=False,
    )
    assert h.step == len(train_loader) > 0 and all(
        math.isfinite(v) for v in h.train_loss + h.val_loss
    )
    assert not torch.equal(before, model.tok_emb.weight)


def test_book_small_and_full_match_the_chapter():
    small, full = BOOK_SMALL.model, FULL_124M.model
    assert (small.emb_dim, small.n_layers, small.context_length) == (64, 1, 256)
    assert (full.emb_dim, full.n_layers, full.n_heads, full.context_length) == (768, 12, 12, 256)
    assert not (small.qkv_bias or small.tie_weights or full.qkv_bias or full.tie_weights)
    assert (FULL_124M.lr, FULL_124M.weight_decay, FULL_124M.batch_size, FULL_124M.num_epochs) == (
        4e-4,
        0.1,
        2,
        10,
    )


def tiny_settings():
    shape = dataclasses.replace(BOOK_SMALL.model, emb_dim=16, n_heads=2, context_length=32)
    return dataclasses.replace(BOOK_SMALL, model=shape, num_epochs=2, eval_every=10, eval_iters=2)


def test_book_model_trains_once_then_loads_the_same_model(verdict_text, gpt2_tokenizer, tmp_path):
    tiny = tiny_settings()
    text = verdict_text[:2500]  # about 30 windows of 32 tokens: a few seconds
    lines = []
    torch.manual_seed(5)
    rng_before = torch.get_rng_state()
    first, h1 = book_model(text, gpt2_tokenizer, tiny, cache_dir=tmp_path, log=lines.append)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's RNG is left as it was
    assert (
        len(lines) == 1 and lines[0].startswith("trained ") and len(list(tmp_path.iterdir())) == 1
    )
    # The same run by hand: book_model is Chapter 6's training cell in one call.
    torch.manual_seed(123)
    model, opt, train_loader, val_loader = setup_pretraining(text, gpt2_tokenizer, tiny)
    by_hand = train(
        model,
        train_loader,
        val_loader,
        opt,
        tiny.num_epochs,
        eval_every=tiny.eval_every,
        eval_iters=tiny.eval_iters,
        tokenizer=gpt2_tokenizer,
        start_context="Every effort moves you",
        progress=False,
    )
    assert (
        by_hand.train_loss == h1.train_loss
        and by_hand.samples == h1.samples
        and same_state(first.state_dict(), model.state_dict())
    )
    torch.manual_seed(999)
    rng_before = torch.get_rng_state()
    second, h2 = book_model(text, gpt2_tokenizer, tiny, cache_dir=tmp_path, log=lines.append)
    assert lines[1].startswith("loaded the trained model from the cache")
    assert same_state(first.state_dict(), second.state_dict()) and h2 == h1 and not second.training
    assert torch.equal(torch.get_rng_state(), rng_before)
    # Other settings are another cache entry; a damaged entry is reported and replaced.
    book_model(
        text,
        gpt2_tokenizer,
        dataclasses.replace(tiny, num_epochs=1),
        cache_dir=tmp_path,
        log=lines.append,
    )
    assert len(list(tmp_path.iterdir())) == 2
    entry = sorted(tmp_path.iterdir(), key=lambda p: p.stat().st_mtime)[0]
    entry.write_bytes(entry.read_bytes()[:100])
    third, _ = book_model(text, gpt2_tokenizer, tiny, cache_dir=tmp_path, log=lines.append)
    assert lines[-2].startswith("ignoring the cached model") and lines[-1].startswith("trained ")
    assert same_state(first.state_dict(), third.state_dict())


def test_a_planted_cache_entry_is_reported_and_retrained(verdict_text, gpt2_tokenizer, tmp_path):
    """Issue 18.10: a cache file whose weights were replaced (by zeros) is not the trained model."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    tiny, text, lines = tiny_settings(), verdict_text[:2500], []
    first, _ = book_model(text, gpt2_tokenizer, tiny, cache_dir=tmp_path, log=lines.append)
    (entry,) = tmp_path.iterdir()
    with safe_open(entry, "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    planted = {
        k: (torch.zeros_like(v) if k.startswith("model.") else v) for k, v in tensors.items()
    }
    save_file(planted, entry, metadata=meta)  # the same metadata, digest included
    second, _ = book_model(text, gpt2_tokenizer, tiny, cache_dir=tmp_path, log=lines.append)
    assert lines[-2].startswith("ignoring the cached model") and "sha256 digest" in lines[-2]
    assert lines[-1].startswith("trained ")
    assert same_state(first.state_dict(), second.state_dict())


def test_setup_pretraining_uses_fused_adamw_on_cpu(verdict_text, gpt2_tokenizer):
    shape = dataclasses.replace(BOOK_SMALL.model, emb_dim=16, n_heads=2, context_length=32)
    stand_in = dataclasses.replace(BOOK_SMALL, model=shape)
    _, opt, _, _ = setup_pretraining(verdict_text, gpt2_tokenizer, stand_in)
    assert opt.defaults["fused"] is True
    assert opt.defaults["lr"] == BOOK_SMALL.lr
    assert opt.defaults["weight_decay"] == BOOK_SMALL.weight_decay


def test_settings_hold_a_gpt_config(gpt2_tokenizer):
    with pytest.raises(ValueError, match="must be a GPTConfig"):
        dataclasses.replace(BOOK_SMALL, model=dict(emb_dim=64))
    other_vocab = dataclasses.replace(
        BOOK_SMALL, model=dataclasses.replace(BOOK_SMALL.model, vocab_size=100)
    )
    with pytest.raises(ValueError, match="vocab_size=100 but the tokenizer has 50257"):
        setup_pretraining("some text " * 50, gpt2_tokenizer, other_vocab)
