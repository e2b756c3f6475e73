"""Tests for helpers.checkpoint (Chapter 7): resuming, round trips, strict, digest-checked loads."""

import pytest
import torch
from tiny_training import T, fresh, loaders, same_state, state_copy, token_ids

from helpers.checkpoint import load_checkpoint, save_checkpoint
from helpers.train import train, warmup_cosine


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
    train_loader, val_loader = loaders(
        seed=42
    )  # another shuffling seed: loading restores the state
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
    straight = train(
        model, train_loader, val_loader, opt, 3, eval_every=2, eval_iters=2, progress=False
    )
    model1, opt1 = fresh()
    train_loader, val_loader = loaders()
    first = train(
        model1, train_loader, val_loader, opt1, 2, eval_every=2, eval_iters=2, progress=False
    )
    path = save_checkpoint(tmp_path / "c.safetensors", model1, opt1, first, train_loader)
    torch.manual_seed(999)
    model2, opt2 = fresh()
    train_loader, val_loader = loaders(seed=42)
    h = load_checkpoint(path, model2, opt2, train_loader, restore_rng=False)
    resumed = train(
        model2,
        train_loader,
        val_loader,
        opt2,
        3,
        history=h,
        eval_every=2,
        eval_iters=2,
        progress=False,
    )
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
    assert all(
        torch.equal(s1["state"][i][k], s2["state"][i][k])
        for i in s1["state"]
        for k in s1["state"][i]
    )


def test_mismatched_checkpoint_names_the_tensor_and_leaves_the_model_untouched(tmp_path):
    model, opt = fresh()
    path = save_checkpoint(tmp_path / "small.safetensors", model, opt)
    other, _ = fresh(seed=2, emb_dim=48)
    before = state_copy(other)
    with pytest.raises(
        ValueError,
        match=r"'tok_emb.weight' is \(97, 32\).*emb_dim=32 there, 48 here.*Nothing was loaded",
    ):
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
    path.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"not a checkpoint" * 9, "empty": b""}[
            damage
        ]
    )
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
    import transformers

    from helpers.gpt2 import save_hf_checkpoint

    model, opt = fresh(tie_weights=tie)
    train(model, *loaders(), opt, 1, eval_every=100, progress=False)
    model.eval()
    save_hf_checkpoint(model, tmp_path / "hf")
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    ids = torch.tensor([token_ids(T)])
    with torch.no_grad():
        assert torch.allclose(hf(ids).logits, model(ids), atol=1e-5)


# -- nothing half-loaded, nothing trusted without its digest (issue 18.1, 18.10) ----------------
def rewrite(path, change):
    """Rewrite the checkpoint at ``path`` after ``change(tensors, meta)``, keeping its digest."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(path, "pt") as f:
        meta, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    change(tensors, meta)
    save_file(tensors, path, metadata=meta)


def resign(tensors, meta):
    from helpers.checkpoint import DIGEST_KEY, digest

    meta[DIGEST_KEY] = digest(tensors, meta)


@pytest.mark.parametrize("damage", ["no rng.torch", "bad rng.torch", "bad history"])
def test_a_bad_rng_state_or_history_leaves_the_model_untouched(tmp_path, damage):
    model, opt = fresh()
    history = train(model, *loaders(), opt, 1, eval_every=100, progress=False)
    path = save_checkpoint(tmp_path / "c.safetensors", model, opt, history)

    def change(tensors, meta):
        if damage == "no rng.torch":
            del tensors["rng.torch"]
        elif damage == "bad rng.torch":
            tensors["rng.torch"] = torch.zeros(3, dtype=torch.uint8)
        else:
            meta["history"] = "{not json"
        resign(tensors, meta)  # a file written like this, digest and all: only its content is bad

    rewrite(path, change)
    model2, opt2 = fresh(seed=2)
    before = state_copy(model2)
    with pytest.raises(ValueError, match="Nothing was loaded"):
        load_checkpoint(path, model2, opt2)
    assert same_state(before, model2.state_dict())


def test_a_flipped_bit_is_caught_by_the_digest(tmp_path):
    model, opt = fresh()
    path = save_checkpoint(tmp_path / "c.safetensors", model, opt)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x40  # one bit of the last tensor's bytes
    path.write_bytes(bytes(data))
    model2, _ = fresh(seed=2)
    before = state_copy(model2)
    with pytest.raises(ValueError, match="does not match the sha256 digest stored in it"):
        load_checkpoint(path, model2)
    assert same_state(before, model2.state_dict())
