"""Tests for helpers.train (Chapter 6): the loss, the training loop, resuming, checkpoints, bad input."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from helpers.data import create_dataloader
from helpers.model import GPTConfig, GPTModel
from helpers.train import (BOOK_SMALL, FULL_124M, History, book_model, calc_loss_batch, calc_loss_loader,
                           evaluate, load_checkpoint, save_checkpoint, setup_pretraining, train, warmup_cosine)

VOCAB, T = 97, 16


def tiny_cfg(**overrides) -> GPTConfig:
    return GPTConfig(**{**dict(vocab_size=VOCAB, context_length=T, emb_dim=32, n_heads=2, n_layers=1,
                               drop_rate=0.1, qkv_bias=False, tie_weights=False), **overrides})


def token_ids(n=600, seed=0):
    """A repetitive sequence (easy to learn) with some noise."""
    g = torch.Generator().manual_seed(seed)
    base = torch.arange(n) % 23
    noise = torch.randint(0, VOCAB, (n,), generator=g)
    return torch.where(torch.rand(n, generator=g) < 0.1, noise, base).tolist()


def loaders(batch_size=4, seed=5):
    ids = token_ids()
    train_loader = create_dataloader(ids[:500], batch_size, T, stride=T, shuffle=True, drop_last=True, seed=seed)
    val_loader = create_dataloader(ids[500:], batch_size, T, stride=T, shuffle=False, drop_last=False)
    return train_loader, val_loader


def fresh(seed=1, **cfg):
    torch.manual_seed(seed)
    model = GPTModel(tiny_cfg(**cfg))
    return model, torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)


def state_copy(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- the loss -----------------------------------------------------------------------------------
def test_cross_entropy_taken_apart_equals_torch():
    model, _ = fresh()
    model.eval()
    inputs, targets = next(iter(loaders()[0]))
    logits = model(inputs)  # (B, T, V)
    probs = torch.softmax(logits, dim=-1)
    target_probs = probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    manual = -torch.log(target_probs).mean()
    assert torch.allclose(manual, F.cross_entropy(logits.flatten(0, 1), targets.flatten()), atol=1e-6)
    assert torch.allclose(manual, calc_loss_batch(inputs, targets, model), atol=1e-6)
    # untrained: close to ln(V), the loss of a uniform guess
    assert abs(manual.item() - math.log(VOCAB)) < 0.2


def test_ignore_index_leaves_padding_out_of_the_mean():
    model, _ = fresh()
    model.eval()
    inputs, targets = next(iter(loaders()[0]))
    padded = targets.clone()
    padded[:, 10:] = -100
    logits = model(inputs)
    expected = F.cross_entropy(logits[:, :10].flatten(0, 1), targets[:, :10].flatten())
    assert torch.allclose(calc_loss_batch(inputs, padded, model), expected, atol=1e-6)


def test_calc_loss_loader_is_the_mean_over_batches():
    model, _ = fresh()
    model.eval()
    train_loader = create_dataloader(token_ids()[:500], 4, T, stride=T, shuffle=False)
    per_batch = [calc_loss_batch(x, y, model).item() for x, y in train_loader]
    assert calc_loss_loader(train_loader, model) == pytest.approx(sum(per_batch) / len(per_batch))
    assert calc_loss_loader(train_loader, model, num_batches=2) == pytest.approx(sum(per_batch[:2]) / 2)


def test_evaluate_restores_the_training_mode():
    model, _ = fresh()
    model.train()
    evaluate(model, *loaders(), eval_iters=1)
    assert model.training


# -- the schedule -------------------------------------------------------------------------------
def test_warmup_cosine_shape():
    lr = warmup_cosine(1e-3, total_steps=100, warmup_steps=10, min_lr=1e-4)
    rates = [lr(s) for s in range(100)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert all(a <= b for a, b in zip(rates[:10], rates[1:10]))  # rising during warmup
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))  # falling after
    assert rates[-1] == pytest.approx(1e-4)
    constant = warmup_cosine(5e-4, total_steps=10, warmup_steps=0, min_lr=5e-4)
    assert {constant(s) for s in range(10)} == {5e-4}
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup_cosine(1e-3, total_steps=10, warmup_steps=10)


# -- training -----------------------------------------------------------------------------------
def test_training_smoke_loss_decreases_and_history_is_complete():
    model, opt = fresh()
    train_loader, val_loader = loaders()
    h = train(model, train_loader, val_loader, opt, num_epochs=3, eval_every=3, eval_iters=None, progress=False)
    steps_per_epoch = len(train_loader)
    assert h.epoch == 3 and h.step == 3 * steps_per_epoch
    assert h.steps == list(range(0, h.step + 1, 3))
    assert h.tokens == h.step * 4 * T == h.tokens_per_epoch * 3
    assert len(h.lr) == len(h.grad_norm) == h.step
    assert h.train_loss[-1] < h.train_loss[0] - 1.0
    assert h.val_loss[-1] < h.val_loss[0]


class CharTokenizer:
    def encode(self, s):
        return [ord(c) % VOCAB for c in s]

    def decode(self, ids):
        return "".join(chr(32 + i % 90) for i in ids)


def test_samples_one_per_epoch_and_lines():
    model, opt = fresh()
    h = train(model, *loaders(), opt, num_epochs=2, eval_every=5, tokenizer=CharTokenizer(),
              start_context="abc", sample_tokens=5, progress=False)
    assert len(h.samples) == 2 and all(len(s) == 8 for s in h.samples)
    lines = h.lines()
    assert lines[0].startswith("ep  0, step    0") and sum(line.startswith("    sample") for line in lines) == 2


def run_resumed(tmp_path, schedule: bool):
    """Train 4 epochs straight, and 2 + save + load into fresh objects + 2 more; return both."""
    kwargs = dict(eval_every=2, eval_iters=2, progress=False)
    if schedule:
        kwargs |= dict(lr_schedule=warmup_cosine(3e-3, 4 * 7, 3, 3e-4), grad_clip=0.5)
    model, opt = fresh()
    train_loader, val_loader = loaders()
    straight = train(model, train_loader, val_loader, opt, 4, **kwargs)

    model1, opt1 = fresh()
    train_loader, val_loader = loaders()
    first = train(model1, train_loader, val_loader, opt1, 2, **kwargs)
    path = save_checkpoint(tmp_path / "ckpt.safetensors", model1, opt1, first, train_loader)
    torch.manual_seed(999)  # disturb the global RNG: loading must restore it
    model2, opt2 = fresh(seed=7)
    train_loader, val_loader = loaders(seed=42)  # another shuffling seed: loading restores the state
    history = load_checkpoint(path, model2, opt2, train_loader)
    resumed = train(model2, train_loader, val_loader, opt2, 4, history=history, **kwargs)
    return model, straight, model2, resumed


@pytest.mark.parametrize("schedule", [False, True], ids=["plain", "warmup-cosine-clip"])
def test_resume_equals_uninterrupted(tmp_path, schedule):
    model, straight, model2, resumed = run_resumed(tmp_path, schedule)
    assert straight.train_loss == resumed.train_loss and straight.val_loss == resumed.val_loss
    assert straight.lr == resumed.lr and straight.grad_norm == resumed.grad_norm
    assert same_state(model.state_dict(), model2.state_dict())


def test_resume_without_rng_state_differs(tmp_path):
    model, opt = fresh()
    train_loader, val_loader = loaders()
    straight = train(model, train_loader, val_loader, opt, 3, eval_every=2, eval_iters=2, progress=False)
    model1, opt1 = fresh()
    train_loader, val_loader = loaders()
    first = train(model1, train_loader, val_loader, opt1, 2, eval_every=2, eval_iters=2, progress=False)
    path = save_checkpoint(tmp_path / "c.safetensors", model1, opt1, first, train_loader)
    torch.manual_seed(999)
    model2, opt2 = fresh()
    train_loader, val_loader = loaders(seed=42)
    h = load_checkpoint(path, model2, opt2, train_loader, restore_rng=False)
    resumed = train(model2, train_loader, val_loader, opt2, 3, history=h, eval_every=2, eval_iters=2, progress=False)
    assert resumed.train_loss[: len(first.train_loss)] == first.train_loss
    assert resumed.train_loss != straight.train_loss


# -- checkpoints --------------------------------------------------------------------------------
def test_checkpoint_round_trip_with_tied_weights(tmp_path):
    model, opt = fresh(tie_weights=True)
    train(model, *loaders(), opt, 1, eval_every=100, progress=False)
    path = save_checkpoint(tmp_path / "tied.safetensors", model, opt)
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        names = set(f.keys())
    assert "model.tok_emb.weight" in names and "model.out_head.weight" not in names  # stored once
    model2, opt2 = fresh(seed=3, tie_weights=True)
    assert load_checkpoint(path, model2, opt2) is None  # no history saved
    assert same_state(model.state_dict(), model2.state_dict())
    assert model2.out_head.weight is model2.tok_emb.weight  # still tied
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    assert all(torch.equal(s1["state"][i][k], s2["state"][i][k]) for i in s1["state"] for k in s1["state"][i])


def test_mismatched_checkpoint_names_the_tensor_and_leaves_the_model_untouched(tmp_path):
    model, opt = fresh()
    path = save_checkpoint(tmp_path / "small.safetensors", model, opt)
    other, _ = fresh(seed=2, emb_dim=48)
    before = state_copy(other)
    with pytest.raises(ValueError, match=r"'tok_emb.weight' is \(97, 32\).*emb_dim=32 there, 48 here.*Nothing was loaded"):
        load_checkpoint(path, other)
    assert same_state(before, other.state_dict())
    deeper, _ = fresh(seed=2, n_layers=2)
    before = state_copy(deeper)
    with pytest.raises(ValueError, match=r"no tensor 'trf_blocks.1.norm1.weight'"):
        load_checkpoint(path, deeper)
    assert same_state(before, deeper.state_dict())
    tied, _ = fresh(seed=2, tie_weights=True)
    with pytest.raises(ValueError, match=r"'out_head.weight' has no place"):
        load_checkpoint(path, tied)


def test_optimizer_mismatch_is_refused_before_anything_is_copied(tmp_path):
    model, opt = fresh()
    path = save_checkpoint(tmp_path / "c.safetensors", model, opt)
    model2, _ = fresh(seed=2)
    sgd = torch.optim.SGD(model2.parameters(), lr=0.1)
    before = state_copy(model2)
    with pytest.raises(ValueError, match="AdamW.*SGD"):
        load_checkpoint(path, model2, sgd)
    assert same_state(before, model2.state_dict())
    no_opt = save_checkpoint(tmp_path / "m.safetensors", model)
    with pytest.raises(ValueError, match="no optimizer state"):
        load_checkpoint(no_opt, model2, torch.optim.AdamW(model2.parameters()))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_checkpoint_gives_a_clear_error(tmp_path, damage):
    model, opt = fresh()
    path = save_checkpoint(tmp_path / "c.safetensors", model, opt)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"not a checkpoint" * 9, "empty": b""}[damage])
    model2, opt2 = fresh(seed=2)
    before = state_copy(model2)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_checkpoint(path, model2, opt2)
    assert same_state(before, model2.state_dict())


def test_missing_and_foreign_files(tmp_path):
    model, _ = fresh()
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nope.safetensors", model)
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, tmp_path / "foreign.safetensors")
    with pytest.raises(ValueError, match="not a training checkpoint"):
        load_checkpoint(tmp_path / "foreign.safetensors", model)


@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
def test_saved_model_loads_in_transformers(tmp_path, tie):
    transformers = pytest.importorskip("transformers")
    from helpers.gpt2 import save_hf_checkpoint

    model, opt = fresh(tie_weights=tie)
    train(model, *loaders(), opt, 1, eval_every=100, progress=False)
    model.eval()
    save_hf_checkpoint(model, tmp_path / "hf")
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    ids = torch.tensor([token_ids(T)])
    with torch.no_grad():
        assert torch.allclose(hf(ids).logits, model(ids), atol=1e-5)


# -- bad input ----------------------------------------------------------------------------------
def test_dataset_smaller_than_one_batch():
    model, opt = fresh()
    before = state_copy(model)
    small = create_dataloader(token_ids()[:50], batch_size=8, context_length=T, stride=T)  # 3 windows
    with pytest.raises(ValueError, match=r"training loader yields no batches.*3 windows.*batch_size=8"):
        train(model, small, loaders()[1], opt, 1, progress=False)
    with pytest.raises(ValueError, match="evaluation loader yields no batches"):
        calc_loss_loader(small, model)
    assert same_state(before, model.state_dict())


def test_context_longer_than_the_model_accepts():
    model, opt = fresh()
    before = state_copy(model)
    long = create_dataloader(token_ids(), batch_size=2, context_length=2 * T, stride=2 * T)
    with pytest.raises(ValueError, match=rf"context_length={2 * T} tokens, but the model accepts at most {T}"):
        train(model, long, long, opt, 1, progress=False)
    assert same_state(before, model.state_dict())


def test_bad_arguments():
    model, opt = fresh()
    with pytest.raises(ValueError, match="eval_every"):
        train(model, *loaders(), opt, 1, eval_every=0, progress=False)
    with pytest.raises(ValueError, match="grad_clip"):
        train(model, *loaders(), opt, 1, grad_clip=0.0, progress=False)
    with pytest.raises(ValueError, match="already has 2 epochs"):
        train(model, *loaders(), opt, 2, history=History(epoch=2), progress=False)


def test_divergence_is_reported():
    model, _ = fresh()
    opt = torch.optim.SGD(model.parameters(), lr=1e30)
    with pytest.raises(ValueError, match="training diverged"):
        train(model, *loaders(), opt, 3, eval_every=100, progress=False)


# -- the chapter's two configurations, on tiny stand-ins ---------------------------------------
@pytest.fixture(scope="module")
def gpt2_tokenizer():
    from helpers.offline import gpt2_encoding

    return gpt2_encoding()


@pytest.mark.parametrize("settings", [BOOK_SMALL, FULL_124M], ids=["book-small", "full-124m"])
def test_setup_pretraining_paths_run(verdict_text, gpt2_tokenizer, settings):
    stand_in = dataclasses.replace(settings, emb_dim=16, n_heads=2, n_layers=1, context_length=32,
                                   num_epochs=1)
    torch.manual_seed(123)
    model, opt, train_loader, val_loader = setup_pretraining(verdict_text, gpt2_tokenizer, stand_in)
    assert model.cfg.vocab_size == 50257 and model.cfg.tie_weights is False and model.cfg.qkv_bias is False
    assert train_loader.batch_size == settings.batch_size and opt.param_groups[0]["lr"] == settings.lr
    emb_std = model.tok_emb.weight.std().item()
    expected = settings.embedding_std or 0.02
    assert abs(emb_std - expected) < 0.1 * expected
    n_train = len(gpt2_tokenizer.encode(verdict_text[: int(0.9 * len(verdict_text))]))
    assert len(train_loader) == (n_train - 32 + 31) // 32 // settings.batch_size
    train_loader = create_dataloader(list(train_loader.dataset.ids[:200]), settings.batch_size, 32, 32,
                                     seed=settings.loader_seed)  # a few steps only
    before = model.tok_emb.weight.detach().clone()
    h = train(model, train_loader, val_loader, opt, 1, eval_every=len(train_loader), eval_iters=1, progress=False)
    assert h.step == len(train_loader) > 0 and all(math.isfinite(v) for v in h.train_loss + h.val_loss)
    assert not torch.equal(before, model.tok_emb.weight)


def test_book_small_and_full_match_the_chapter():
    assert (BOOK_SMALL.emb_dim, BOOK_SMALL.n_layers, BOOK_SMALL.context_length) == (64, 1, 256)
    assert (FULL_124M.emb_dim, FULL_124M.n_layers, FULL_124M.n_heads) == (768, 12, 12)
    assert (FULL_124M.lr, FULL_124M.weight_decay, FULL_124M.batch_size, FULL_124M.num_epochs) == (4e-4, 0.1, 2, 10)


def test_book_model_trains_once_then_loads_the_same_model_and_rng_state(verdict_text, gpt2_tokenizer, tmp_path):
    tiny = dataclasses.replace(BOOK_SMALL, emb_dim=16, n_heads=2, context_length=32, num_epochs=2, eval_every=10,
                               eval_iters=2)
    text = verdict_text[:2500]  # about 30 windows of 32 tokens: a few seconds
    lines = []
    first, h1 = book_model(text, gpt2_tokenizer, tiny, cache_dir=tmp_path, log=lines.append)
    rng_after_training = torch.get_rng_state()
    assert len(lines) == 1 and lines[0].startswith("trained ") and len(list(tmp_path.iterdir())) == 1
    # The same run by hand: book_model is Chapter 6's training cell in one call.
    torch.manual_seed(123)
    model, opt, train_loader, val_loader = setup_pretraining(text, gpt2_tokenizer, tiny)
    by_hand = train(model, train_loader, val_loader, opt, tiny.num_epochs, eval_every=tiny.eval_every,
                    eval_iters=tiny.eval_iters, tokenizer=gpt2_tokenizer, start_context="Every effort moves you",
                    progress=False)
    assert by_hand.train_loss == h1.train_loss and by_hand.samples == h1.samples and same_state(first.state_dict(), model.state_dict())
    torch.manual_seed(999)  # whatever state: loading must leave the state training would have left
    second, h2 = book_model(text, gpt2_tokenizer, tiny, cache_dir=tmp_path, log=lines.append)
    assert lines[1].startswith("loaded the trained model from the cache")
    assert same_state(first.state_dict(), second.state_dict()) and h2 == h1 and not second.training
    assert torch.equal(torch.get_rng_state(), rng_after_training)
    # Other settings are another cache entry; a damaged entry is reported and replaced.
    book_model(text, gpt2_tokenizer, dataclasses.replace(tiny, num_epochs=1), cache_dir=tmp_path, log=lines.append)
    assert len(list(tmp_path.iterdir())) == 2
    entry = sorted(tmp_path.iterdir(), key=lambda p: p.stat().st_mtime)[0]
    entry.write_bytes(entry.read_bytes()[:100])
    third, _ = book_model(text, gpt2_tokenizer, tiny, cache_dir=tmp_path, log=lines.append)
    assert lines[-2].startswith("ignoring the cached model") and lines[-1].startswith("trained ")
    assert same_state(first.state_dict(), third.state_dict())
