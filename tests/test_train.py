"""Tests for helpers.train (Chapter 6): the loss, the schedule, the training loop, bad input."""

import math

import pytest
import torch
import torch.nn.functional as F
from tiny_training import VOCAB, T, fresh, loaders, same_state, state_copy, token_ids

from helpers.data import create_dataloader
from helpers.train import (
    History,
    calc_loss_batch,
    calc_loss_loader,
    evaluate,
    next_token_accuracy,
    train,
    warmup_cosine,
)


# -- the loss -----------------------------------------------------------------------------------
def test_cross_entropy_taken_apart_equals_torch():
    model, _ = fresh()
    model.eval()
    inputs, targets = next(iter(loaders()[0]))
    logits = model(inputs)  # (B, T, V)
    probs = torch.softmax(logits, dim=-1)
    target_probs = probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    manual = -torch.log(target_probs).mean()
    assert torch.allclose(
        manual, F.cross_entropy(logits.flatten(0, 1), targets.flatten()), atol=1e-6
    )
    assert torch.allclose(manual, calc_loss_batch(inputs, targets, model), atol=1e-6)
    # untrained: close to ln(V), the loss of a uniform guess
    assert abs(manual.item() - math.log(VOCAB)) < 0.2


def test_next_token_accuracy_counts_argmax_hits_and_keeps_the_mode():
    model, _ = fresh()
    _, val_loader = loaders()
    model.train()
    hits = total = 0
    with torch.no_grad():
        model.eval()
        for inputs, targets in val_loader:
            hits += (model(inputs).argmax(-1) == targets).sum().item()
            total += targets.numel()
        model.train()
    assert next_token_accuracy(model, val_loader) == hits / total
    assert model.training  # the mode it was in
    # a model that always predicts the true next token scores 1, one that never does scores 0
    inputs, targets = next(iter(val_loader))

    class Oracle(torch.nn.Module):
        def __init__(self, right):
            super().__init__()
            self.w, self.right = torch.nn.Parameter(torch.zeros(1)), right

        def forward(self, x):
            nxt = {tuple(i.tolist()): t for i, t in zip(inputs, targets)}[tuple(x[0].tolist())]
            guess = nxt if self.right else (nxt + 1) % VOCAB
            return F.one_hot(guess, VOCAB).float().unsqueeze(0)

    one = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(inputs[:1], targets[:1]))
    assert next_token_accuracy(Oracle(True), one) == 1.0
    assert next_token_accuracy(Oracle(False), one) == 0.0


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
    assert calc_loss_loader(train_loader, model, num_batches=2) == pytest.approx(
        sum(per_batch[:2]) / 2
    )


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
    h = train(
        model,
        train_loader,
        val_loader,
        opt,
        num_epochs=3,
        eval_every=3,
        eval_iters=None,
        progress=False,
    )
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
    h = train(
        model,
        *loaders(),
        opt,
        num_epochs=2,
        eval_every=5,
        tokenizer=CharTokenizer(),
        start_context="abc",
        sample_tokens=5,
        progress=False,
    )
    assert len(h.samples) == 2 and all(len(s) == 8 for s in h.samples)
    lines = h.lines()
    assert (
        lines[0].startswith("ep  0, step    0")
        and sum(line.startswith("    sample") for line in lines) == 2
    )


def test_sample_is_generate_greedy_with_a_cache():
    """The per-epoch sample runs Chapter 7's cached generate; its ids are generate_greedy's."""
    from helpers.model import generate_greedy
    from helpers.train import _sample

    model, _ = fresh()
    tokenizer = CharTokenizer()
    ids = torch.tensor([tokenizer.encode("abc")])
    model.eval()
    expected = tokenizer.decode(generate_greedy(model, ids, 12)[0].tolist())
    model.train()
    assert _sample(model, tokenizer, "abc", 12) == expected
    assert model.training  # the mode is restored


# -- bad input ----------------------------------------------------------------------------------
def test_dataset_smaller_than_one_batch():
    model, opt = fresh()
    before = state_copy(model)
    small = create_dataloader(
        token_ids()[:50], batch_size=8, context_length=T, stride=T
    )  # 3 windows
    with pytest.raises(
        ValueError, match=r"training loader yields no batches.*3 windows.*batch_size=8"
    ):
        train(model, small, loaders()[1], opt, 1, progress=False)
    with pytest.raises(ValueError, match="evaluation loader yields no batches"):
        calc_loss_loader(small, model)
    assert same_state(before, model.state_dict())


def test_context_longer_than_the_model_accepts():
    model, opt = fresh()
    before = state_copy(model)
    long = create_dataloader(token_ids(), batch_size=2, context_length=2 * T, stride=2 * T)
    with pytest.raises(
        ValueError, match=rf"context_length={2 * T} tokens, but the model accepts at most {T}"
    ):
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
