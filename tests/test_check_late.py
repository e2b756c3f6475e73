"""The exercise checks of Chapters 5 to 10 (helpers.check_ch05 .. check_ch10).

Each worked solution (written again here: solutions never live in helpers/) passes its check;
typical wrong answers fail with the intended message; a stub is "not attempted yet"."""

import copy
import dataclasses
import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from helpers.check import check
from helpers.gpt2 import weight_mapping
from helpers.model import PRESETS, GPTConfig, GPTModel, predicted_parameters


# Chapter 5 -------------------------------------------------------------------------------------
def zero_positions(model, ids, restore=True):
    saved = model.pos_emb.weight.detach().clone()
    with torch.no_grad():
        model.pos_emb.weight.zero_()
        logits = model(ids)
        if restore:
            model.pos_emb.weight.copy_(saved)
    return logits


def greedy(model, ids, n, crop="last", mode="eval", only_new=False):
    getattr(model, mode)()
    out = ids
    T = model.cfg.context_length
    for _ in range(n):
        window = {"last": out[:, -T:], "first": out[:, :T], "none": out}[crop]
        with torch.no_grad():
            nxt = model(window)[:, -1].argmax(dim=-1, keepdim=True)
        out = torch.cat([out, nxt], dim=1)
    return out[:, ids.shape[1]:] if only_new else out


def shares(untied=False, percent=False):
    out = {}
    for name in PRESETS:
        c = GPTConfig.from_preset(name)
        total = predicted_parameters(c) + (c.vocab_size * c.emb_dim if untied else 0)
        out[name] = c.vocab_size * c.emb_dim / total * (100 if percent else 1)
    return out


def untie(tied, load=True):
    untied = GPTModel(dataclasses.replace(tied.cfg, tie_weights=False))
    if load:
        untied.load_state_dict({k: v.clone() for k, v in tied.state_dict().items()})
    return untied


# Chapter 6 -------------------------------------------------------------------------------------
def unigram(train_ids, targets, V, k, denominator=True, log=math.log):
    counts, n = Counter(train_ids), len(train_ids)
    norm = n + (k * V if denominator else 0)
    return -sum(log((counts[t] + k) / norm) for t in targets) / len(targets)


def stable_ce(logits, targets, shift=True):
    m = logits.max(dim=-1, keepdim=True).values if shift else torch.zeros(len(logits), 1)
    log_norm = m.squeeze(-1) + torch.log(torch.exp(logits - m).sum(dim=-1))
    return (log_norm - logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)).mean()


def steps(n, b, ctx, stride, drop, need=1):
    windows = max(0, (n - ctx - need) // stride + 1)
    return windows // b if drop else -(-windows // b)


def masked_loss(logits, targets, pad, how="ignore"):
    per = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    keep = (targets.flatten() != pad).float()
    if how == "ignore":
        return ((per * keep).sum() / keep.sum()).item()
    return per.mean().item() if how == "all" else (per * keep).mean().item()


def early_stopping(losses, patience, tie_improves=False, keep_last=False, strict=False):
    best = 0
    for i, loss in enumerate(losses):
        if loss < losses[best] or (tie_improves and loss == losses[best]):
            best = i
        waited = i - best
        if (waited > patience) if strict else (waited >= patience):
            return (i if keep_last else best), i
    return (len(losses) - 1 if keep_last else best), len(losses) - 1


def lr_at(step, peak, total, warmup, floor, behind=False, intervals=1, no_floor=False):
    if step < warmup:
        return peak * (step + (0 if behind else 1)) / warmup
    floor = 0.0 if no_floor else floor
    progress = min(1.0, (step - warmup) / max(1, total - warmup - intervals))
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


# Chapter 8 -------------------------------------------------------------------------------------
def penalize(logits, ids, penalty, divide_all=False, per_occurrence=False):
    if per_occurrence:
        out = logits.clone()
        for b, row in enumerate(ids.tolist()):
            for t in row:
                out[b, t] = out[b, t] / penalty if out[b, t] > 0 else out[b, t] * penalty
        return out
    seen = torch.gather(logits, 1, ids)
    seen = seen / penalty if divide_all else torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(1, ids, seen)


def min_p(logits, mp, how="relative"):
    probs = torch.softmax(logits, dim=-1)
    if how == "relative":
        return logits.masked_fill(probs < mp * probs.amax(-1, keepdim=True), -math.inf)
    if how == "absolute":
        return logits.masked_fill(probs < mp, -math.inf)
    return logits.masked_fill(logits < mp * logits.amax(-1, keepdim=True), -math.inf)


def top_p(logits, p, boundary=True):
    sorted_logits, order = torch.sort(logits, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    if boundary:
        drop = probs.cumsum(-1) - probs >= p
    else:
        drop = probs.cumsum(-1) > p
        drop[..., 0] = False
    return logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), -math.inf)


def average_logprob(model, ids, n, shift=1, from_start=False):
    lp = torch.log_softmax(model(ids), dim=-1)
    first = 1 if from_start else n
    return lp[:, first - shift:lp.shape[1] - shift].gather(2, ids[:, first:, None]).mean().item()


# Chapter 9 -------------------------------------------------------------------------------------
def largest(cfg, count_tied=False, percent=False):
    rows = [r for r in weight_mapping(cfg) if count_tied or r.transform != "tied to wte"]
    big = max(rows, key=lambda r: math.prod(r.hub_shape))
    share = math.prod(big.hub_shape) / sum(math.prod(r.hub_shape) for r in rows)
    return big.hub_name, share * (100 if percent else 1)


def c_attn(att, order=("query", "key", "value"), transpose=True):
    ws = [getattr(att, f"W_{n}").weight for n in order]
    w = torch.cat([x.T for x in ws], dim=1) if transpose else torch.cat(ws, dim=0)
    return w, torch.cat([getattr(att, f"W_{n}").bias for n in order])


# Chapter 10 -------------------------------------------------------------------------------------
def loss_without(model, layer, heads, x, y, by="columns", restore=True):
    W = model.trf_blocks[layer].att.out_proj.weight
    d = model.cfg.emb_dim // model.cfg.n_heads
    saved = W.detach().clone()
    with torch.no_grad():
        for k in heads:
            if by == "columns":
                W[:, k * d:(k + 1) * d] = 0.0
            else:
                W[k * d:(k + 1) * d] = 0.0
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
        if restore:
            W.copy_(saved)
    return loss


def recover(att, a_in, scale=True, dim=-1, mask=True):
    B, T, _ = a_in.shape
    split = (B, T, att.num_heads, att.head_dim)
    q = att.W_query(a_in).view(split).transpose(1, 2)
    k = att.W_key(a_in).view(split).transpose(1, 2)
    s = q @ k.transpose(-2, -1) / (att.head_dim**0.5 if scale else 1.0)
    if mask:
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return s.softmax(dim=dim)


def settle(top, first_agree=False, plus=0):
    L = top.shape[0] - 1
    agrees = top == top[-1]
    settled = torch.full(top.shape[1:], L)
    for layer in range(L - 1, -1, -1):
        ok = agrees[layer] if first_agree else agrees[layer:].all(dim=0)
        settled = torch.where(ok, torch.full_like(settled, layer), settled)
    return settled + plus


def induction(weights, n, offset=1, all_queries=False):
    qs = torch.arange(0 if all_queries else n, 2 * n)
    keys = (qs - n + offset).clamp(min=0)
    return weights[..., qs, keys].mean(dim=(1, -1))


CASES = {  # exercise: (worked solution, [(typical wrong answer, part of its message), ...])
    "5.1": (zero_positions, [(lambda m, i: m(i), "with its position embedding"),
                             (lambda m, i: zero_positions(m, i, restore=False), "left changed")]),
    "5.2": (greedy, [(lambda m, i, n: greedy(m, i, n, crop="none"), "more tokens than its con"),
                     (lambda m, i, n: greedy(m, i, n, crop="first"), "differ from greedy"),
                     (lambda m, i, n: greedy(m, i, n, mode="train"), "training mode"),
                     (lambda m, i, n: greedy(m, i, n, only_new=True), "only the new tokens")]),
    "5.3": (shares(), [(shares(untied=True), "counted the token embedding twice"),
                       (shares(percent=True), "looks like a percentage")]),
    "5.4": (untie, [(copy.deepcopy, "still one tensor"),
                    (lambda m: untie(m, load=False), "does not start as the tied matrix")]),
    "5.5": ((1024 * 768, 4 * 12 * 1024 * 768), [((2048 * 768, 1), "whole new position table"),
                                                 ((1024 * 768, 2 * 1024 * 768), "2N rule")]),
    "6.1": (unigram, [(lambda *a: unigram(*a, denominator=False), "denominator must grow"),
                      (lambda *a: unigram(*a, log=math.log2), "in bits")]),
    "6.3": (stable_ce, [(lambda z, t: stable_ce(z, t, shift=False), "subtract each row"),
                        (lambda z, t: -stable_ce(z, t), "wrong sign")]),
    "6.4": (steps, [(lambda *a: steps(*a, need=0), "needs context_length + 1"),
                    (lambda n, b, c, s, d: steps(n, b, c, s, not d), "rounded down when")]),
    "7.3": (masked_loss, [(lambda *a: masked_loss(*a, how="all"), "counts the padding"),
                          (lambda *a: masked_loss(*a, how="dilute"), "padding dilutes it")]),
    "7.2": (False, [(True, "is that all a loss"), ("no", "Answer True")]),
    "7.4": (0.5, [(2.0, "flatter than at 0.5"), ("low", "Answer one of")]),
    "6.2": (early_stopping, [(lambda *a: early_stopping(*a, tie_improves=True), "<, not <="),
                             (lambda *a: early_stopping(*a, keep_last=True), "keep the last"),
                             (lambda *a: early_stopping(*a, strict=True), "you stop at")]),
    "7.1": (lr_at, [(lambda *a: lr_at(*a, behind=True), "one warmup step behind"),
                    (lambda *a: lr_at(*a, intervals=0), "above the floor"),
                    (lambda *a: lr_at(*a, no_floor=True), "not to zero")]),
    "8.1": (penalize, [(lambda *a: penalize(*a, divide_all=True), "multiply it"),
                       (lambda *a: penalize(*a, per_occurrence=True), "more than once")]),
    "8.2": (min_p, [(lambda *a: min_p(*a, how="absolute"), "with min_p itself"),
                    (lambda *a: min_p(*a, how="logits"), "compared logits")]),
    "8.3": (lambda cfg, n, b: 2 * cfg.n_layers * n * cfg.emb_dim * b * 4,
            [(lambda cfg, n, b: cfg.n_layers * n * cfg.emb_dim * b * 4, "half the cache"),
             (lambda cfg, n, b: 2 * cfg.n_layers * n * cfg.head_dim * b * 4, "one head's"),
             (lambda cfg, n, b: 2 * cfg.n_layers * n * cfg.emb_dim * 4, "one sequence")]),
    "8.4": (top_p, [(lambda z, p: top_p(z, p, boundary=False), "makes the mass reach p"),
                    (lambda z, p: z.masked_fill(z.softmax(-1).cumsum(-1) > p, -math.inf),
                     "keeps no token")]),
    "8.5": (average_logprob, [(lambda *a: average_logprob(*a, shift=0), "at its own position"),
                              (lambda *a: average_logprob(*a, from_start=True), "prompt's")]),
    "9.1": (largest, [(lambda c: largest(c, count_tied=True), "tied head as a tensor"),
                      (lambda c: largest(c, percent=True), "looks like a percentage")]),
    "9.2": (lambda c: c.n_layers * c.context_length**2 * 4,
            [(lambda c: c.n_layers * c.context_length**2, "one byte per mask entry"),
             (lambda c: c.context_length**2 * 4, "you count one mask")]),
    "9.3": (0.5, [(0.25, "16-bit, not 8-bit"), (1.0, "whatever the model")]),
    "9.4": (lambda c, s: c - s if s < c else 1,
            [(lambda c, s: c - s, "you gave 0"), (lambda c, s: s, "previous window's ended")]),
    "9.5": (c_attn, [(lambda a: c_attn(a, transpose=False), "Conv1D stores (in, out)"),
                     (lambda a: c_attn(a, order=("key", "query", "value")), "another order")]),
    "10.1": (lambda x: torch.cat([x[:, :1], x[:, :-1]], dim=1),
            [(lambda x: torch.roll(x, 1, dims=1), "position 0's target is wrong"),
             (lambda x: torch.cat([x[:, 1:], x[:, -1:]], dim=1), "one position back")]),
    "10.2": (loss_without, [(lambda *a: loss_without(*a, by="rows"), "zeroed rows"),
                           (lambda *a: loss_without(*a, restore=False), "left changed")]),
    "10.3": (recover, [(lambda *a: recover(*a, scale=False), "1 / sqrt(d_h)"),
                      (lambda *a: recover(*a, dim=-2), "add up to 1"),
                      (lambda *a: recover(*a, mask=False), "later tokens")]),
    "10.4": (settle, [(lambda t: settle(t, first_agree=True), "agreeing once is not enough"),
                     (lambda t: settle(t, plus=1), "one too high")]),
    "10.5": (induction, [(lambda w, n: induction(w, n, offset=0), "duplicate-token"),
                        (lambda w, n: induction(w, n, all_queries=True), "second-half")]),
}


@pytest.mark.parametrize("exercise", list(CASES))
def test_solution_passes_and_typical_mistakes_fail(exercise):
    solution, wrongs = CASES[exercise]
    verdict = check(exercise, solution)
    assert verdict.passed is True, verdict
    assert repr(verdict).startswith(f"Exercise {exercise}: right. Checked on ")
    assert len(wrongs) >= 2
    for wrong, message in wrongs:
        verdict = check(exercise, wrong)
        assert verdict.passed is False and message in verdict.message, verdict
        assert "hint" in verdict.message.lower() or "answer" in verdict.message.lower()


@pytest.mark.parametrize("exercise", list(CASES))
def test_a_stub_is_not_attempted_yet(exercise):
    def stub(*args):
        raise NotImplementedError

    for answer in (stub, ...) if callable(CASES[exercise][0]) else (...,):
        verdict = check(exercise, answer)
        assert verdict.passed is None and "not attempted yet" in verdict.message


def test_the_readers_exception_is_one_sentence_with_their_line():
    def broken(logits, p):
        return logits.softmax(dim=5)  # the line the verdict quotes

    verdict = check("8.4", broken)
    assert verdict.passed is False and "IndexError" in verdict.message
    assert "logits.softmax(dim=5)" in verdict.message and "Traceback" not in verdict.message


def test_checks_leave_the_global_random_state_alone():
    state = torch.random.get_rng_state()
    check("5.2", greedy)
    check("10.2", loss_without)
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("exercise", [e for e, (s, _) in CASES.items() if callable(s)])
def test_broken_code_gets_a_sentence_never_a_traceback(exercise):
    def returns_nothing(*args):
        pass

    def divides_by_zero(*args):
        return 1 / 0

    verdict = check(exercise, returns_nothing)
    assert verdict.passed is False and verdict.message.startswith("not yet."), verdict
    verdict = check(exercise, divides_by_zero)
    assert verdict.passed is False and "ZeroDivisionError" in verdict.message
    assert "`return 1 / 0`" in verdict.message and "Traceback" not in verdict.message
