"""The checks of Chapter 5's exercises (assembling GPT-2); see :mod:`helpers.check`.

Each check builds a tiny :class:`helpers.model.GPTModel` from a fixed seed (the caller's random
state is left as it was) and compares the reader's answer with the library's own results.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

from helpers.check import Wrong
from helpers.model import (
    PRESETS,
    GPTConfig,
    GPTModel,
    flops_per_token,
    generate_greedy,
    predicted_parameters,
)

TINY = GPTConfig(vocab_size=50, context_length=8, emb_dim=16, n_heads=2, n_layers=2,
                 drop_rate=0.0)


def tiny_model(seed: int = 0, **changes) -> GPTModel:
    """A tiny GPT-2 from ``seed``, in evaluation mode; the global random state is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPTModel(dataclasses.replace(TINY, **changes)).eval()


class _WindowSum(GPTModel):
    """A model whose next token is the sum of the ids it sees plus the position, modulo V: each
    window it is given shows in its answer (a random tiny model soon repeats one token)."""

    def forward(self, idx, cache=None, attn_weights=None):
        self.check_ids(idx)
        total = idx.cumsum(dim=1) + torch.arange(idx.shape[1])  # (B, T)
        return nn.functional.one_hot(total % self.cfg.vocab_size, self.cfg.vocab_size).float()


def _ids(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.long)


def _same(a, b, atol=1e-5) -> bool:
    return (isinstance(a, torch.Tensor) and a.shape == b.shape
            and torch.allclose(a.float(), b.float(), atol=atol))


def check_5_1(fn) -> str:
    cases = {"a token repeated twice": _ids([[7, 7]]), "a sequence of one token": _ids([[3]]),
             "a batch of two 5-token rows": _ids([[1, 2, 3, 4, 5], [5, 5, 5, 5, 5]])}
    for name, ids in cases.items():
        model = tiny_model(1)
        saved = copy.deepcopy(model.state_dict())
        expected_model = copy.deepcopy(model)
        with torch.no_grad():
            expected_model.pos_emb.weight.zero_()
            expected = expected_model(ids)
            got = fn(model, ids)
        if not isinstance(got, torch.Tensor):
            raise Wrong(f"On {name}, your function returned {type(got).__name__}, not the "
                        "logits (B, T, V). Hint: return what the model computes.")
        if not all(torch.equal(v, model.state_dict()[k]) for k, v in saved.items()):
            raise Wrong(f"On {name}, the model's weights were left changed after your function. "
                        "Hint: save the position embedding before you zero it, and put it back.")
        if _same(got, model(ids).detach()):
            raise Wrong(f"On {name}, your logits are those of the model with its position "
                        "embedding. Hint: the position vectors must be zero during the pass.")
        if not _same(got, expected):
            raise Wrong(f"On {name}, your logits differ from the model's without positions. "
                        "Hint: only the position embedding changes; the rest runs as usual.")
    return "a repeated token, one token and a batch of two (the model restored each time)"


def check_5_2(fn) -> str:
    cases = [("a prompt of one token, 3 new tokens", _ids([[4]]), 3),
             ("a batch of two 3-token prompts, 0 new tokens", _ids([[1, 2, 3], [3, 2, 1]]), 0),
             ("a batch of two 3-token prompts, 10 new tokens with a context of 8 (the sequence "
              "outgrows the context)", _ids([[1, 2, 3], [9, 9, 9]]), 10)]
    for name, ids, n in cases:
        model = tiny_model(2, drop_rate=0.5)
        if n > 5:  # a model whose answer shows which window it was given
            with torch.random.fork_rng(devices=[]):
                model = _WindowSum(dataclasses.replace(TINY, drop_rate=0.5)).eval()
        expected = generate_greedy(model, ids.clone(), n)
        try:
            got = fn(model, ids.clone(), n)
        except ValueError as err:
            if "context" not in str(err):
                raise
            raise Wrong(f"On {name}, your function gave the model more tokens than its context "
                        "holds. Hint: the model only ever needs the last context_length tokens."
                        ) from None
        if not isinstance(got, torch.Tensor):
            raise Wrong(f"On {name}, your function returned {type(got).__name__}, not the ids "
                        "(B, T + max_new_tokens).")
        if model.training:
            raise Wrong(f"On {name}, your function left the model in training mode, where "
                        "dropout makes every pass random. Hint: generation needs eval().")
        if got.dim() == 2 and got.shape[1] == n and n:
            raise Wrong(f"On {name}, you returned only the new tokens. Hint: return the prompt "
                        "followed by the new tokens, (B, T + max_new_tokens).")
        if got.shape != expected.shape or not torch.equal(got, expected):
            raise Wrong(f"On {name}, your ids differ from greedy's. Hint: each step takes "
                        "the argmax of the logits at the last position, over the "
                        "vocabulary, from the last context_length tokens.")
    return "one token, zero new tokens, and a batch that outgrows the context (with dropout)"


def check_5_3(answer) -> str:
    if not isinstance(answer, dict) or set(answer) != set(PRESETS):
        raise Wrong(f"The answer should be a dict with one entry per preset, {list(PRESETS)}. "
                    "Hint: loop over PRESETS.")
    for name, share in answer.items():
        cfg = GPTConfig.from_preset(name)
        expected = cfg.vocab_size * cfg.emb_dim / predicted_parameters(cfg)
        if not isinstance(share, (int, float)):
            raise Wrong(f"For {name}, the share should be a number, not {type(share).__name__}.")
        if 1 < share <= 100 and abs(share / 100 - expected) < 1e-3:
            raise Wrong(f"For {name}, {share:.1f} looks like a percentage. Hint: give the "
                        "fraction, between 0 and 1.")
        untied = expected * predicted_parameters(cfg) / (predicted_parameters(cfg)
                                                         + cfg.vocab_size * cfg.emb_dim)
        if abs(share - untied) < 1e-4:
            raise Wrong(f"For {name}, you counted the token embedding twice in the total. "
                        "Hint: the head is tied; the matrix is one set of parameters.")
        if abs(share - expected) > 1e-3:
            raise Wrong(f"For {name}, {share:.4f} is not the token embedding's share. Hint: "
                        "the embedding has V*C parameters, out of predicted_parameters(cfg).")
    return "the four presets, to 0.1 percentage point"


def check_5_4(fn) -> str:
    tied = tiny_model(3)
    ids = _ids([[1, 2, 3, 4], [4, 3, 2, 1]])
    targets = torch.roll(ids, -1, dims=1)
    before = copy.deepcopy(tied.state_dict())
    untied = fn(tied)
    if not isinstance(untied, GPTModel):
        raise Wrong("Your function should return a GPTModel (the untied copy). Hint: build a "
                    "model with tie_weights=False and load the tied one's weights.")
    if untied.out_head.weight is untied.tok_emb.weight:
        raise Wrong("In your copy, the head and the embedding are still one tensor. Hint: the "
                    "copy needs a separate head matrix that starts equal to the tied one.")
    if not all(torch.equal(v, tied.state_dict()[k]) for k, v in before.items()):
        raise Wrong("Your function changed the tied model's weights. Hint: clone, do not share.")
    if untied.out_head.weight.data_ptr() == tied.tok_emb.weight.data_ptr():
        raise Wrong("Your copy's head shares memory with the tied matrix. Hint: clone it.")
    grads = []
    for m in (tied, untied):
        m.zero_grad()
        nn.functional.cross_entropy(m(ids).flatten(0, 1), targets.flatten()).backward()
        grads.append(m.tok_emb.weight.grad)
    if not torch.allclose(untied.out_head.weight, tied.out_head.weight):
        raise Wrong("Your copy's head does not start as the tied matrix, so it computes another "
                    "function. Hint: both of its matrices start as the tied one.")
    summed = grads[1] + untied.out_head.weight.grad
    if not torch.allclose(grads[0], summed, atol=1e-6):
        raise Wrong("The tied gradient is not the sum of your copy's two gradients. Hint: every "
                    "other weight must be copied too, so that the two models agree.")
    tied.zero_grad()
    return "a tiny tied model: the copy is separate, equal, and its two gradients add up"


def check_5_5(answer) -> str:
    small = GPTConfig.from_preset("gpt2-small")
    long = dataclasses.replace(small, context_length=2048)
    params = predicted_parameters(long) - predicted_parameters(small)
    flops = flops_per_token(long) - flops_per_token(small)
    if not (isinstance(answer, tuple) and len(answer) == 2):
        raise Wrong("The answer should be a pair (extra_parameters, extra_flops).")
    p, f = answer
    if p == 2048 * small.emb_dim:
        raise Wrong("The extra parameters are those of the whole new position table. Hint: "
                    "how many rows does doubling the context add?")
    if p != params:
        raise Wrong(f"{p:,} extra parameters is not right. Hint: only one table of the model "
                    "depends on the context length.")
    if f == 2 * params:
        raise Wrong("The extra FLOPs follow the 2N rule, but a position embedding is a lookup, "
                    "not a multiplication. Hint: which computation grows with T?")
    if f != flops:
        raise Wrong(f"{f:,} extra FLOPs per token is not right. Hint: look at the attention "
                    "term of flops_per_token, 4*L*T*C.")
    return "GPT-2 small at 1,024 and 2,048 tokens, exactly"


CHECKS = {"5.1": check_5_1, "5.2": check_5_2, "5.3": check_5_3, "5.4": check_5_4,
          "5.5": check_5_5}
