"""The checks of Chapter 8's exercises (decoding); see :mod:`helpers.check`.

The filters are compared with ``transformers``' logits processors or :mod:`helpers.sampling` on
small logit vectors chosen for their edge cases; the cache and the log-probabilities with a tiny
:class:`helpers.model.GPTModel` built from a fixed seed.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from helpers.check import Wrong
from helpers.kvcache import KVCache
from helpers.model import GPTConfig, GPTModel
from helpers.sampling import top_p_filter

TINY = GPTConfig(vocab_size=40, context_length=16, emb_dim=16, n_heads=2, n_layers=2,
                 drop_rate=0.0)


def tiny_model(seed: int = 0, **changes) -> GPTModel:
    """A tiny GPT-2 from ``seed``, in evaluation mode; the global random state is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPTModel(dataclasses.replace(TINY, **changes)).eval()


def _tensor(got, like: torch.Tensor, case: str) -> torch.Tensor:
    if not isinstance(got, torch.Tensor) or got.shape != like.shape:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise Wrong(f"On {case}, your function returned {shape}, not logits of shape "
                    f"{tuple(like.shape)}. Hint: return the whole logits tensor, changed.")
    return got


def check_8_1(fn) -> str:
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0, -2.0, 0.0], [1.0, 1.0, -3.0, 0.2, 4.0, -0.5]])
    cases = [("a batch of two rows with positive and negative logits", [[0, 1, 2], [4, 2, 5]]),
             ("a token that appears three times", [[3, 3, 3], [1, 1, 4]])]
    for name, past in cases:
        ids = torch.tensor(past)
        expected = RepetitionPenaltyLogitsProcessor(1.5)(ids, logits.clone())
        got = _tensor(fn(logits.clone(), ids.clone(), 1.5), logits, name)
        if torch.allclose(got, expected):
            continue
        divided = logits.clone()
        divided.scatter_(1, ids, logits.gather(1, ids) / 1.5)
        if torch.allclose(got, divided):
            raise Wrong(f"On {name}, the negative logits got *larger* (closer to 0). Hint: "
                        "dividing a negative logit makes its token more likely; multiply it.")
        if len(set(past[0])) < len(past[0]):
            raise Wrong(f"On {name}, the repeated token was penalized more than once. Hint: a "
                        "token is penalized once, however many times it appears.")
        raise Wrong(f"On {name}, your logits differ from transformers' "
                    "RepetitionPenaltyLogitsProcessor. Hint: only the tokens in ids change.")
    return "positive, negative and zero logits, a batch, and a token seen three times"


def _kept(z: torch.Tensor) -> list[list[int]]:
    return [torch.isfinite(row).nonzero().flatten().tolist() for row in z]


def check_8_2(fn) -> str:
    from transformers.generation.logits_process import MinPLogitsWarper
    cases = [("a batch of a sure and an unsure row", torch.tensor(
                 [[5.0, 1.0, 0.5, 0.0, -1.0], [1.0, 0.9, 0.8, 0.7, -4.0]]), 0.1),
             ("logits whose probabilities are 0.5, 0.25 and 0.25, min_p = 0.5 (the boundary "
              "tokens, exactly half the top one)", torch.log(torch.tensor([[0.5, 0.25, 0.25]])),
              0.5),
             ("two tokens tied at the top, min_p = 1", torch.tensor([[2.0, 2.0, 1.0]]), 1.0)]
    for name, logits, min_p in cases:
        expected = _kept(MinPLogitsWarper(min_p)(None, logits.clone()))
        got = _kept(_tensor(fn(logits.clone(), min_p), logits, name))
        if got == expected:
            continue
        probs = logits.softmax(dim=-1)
        if got == _kept(logits.masked_fill(probs < min_p, -math.inf)):
            raise Wrong(f"On {name}, you compared the probabilities with min_p itself. Hint: "
                        "the threshold is min_p times the top token's probability, row by row.")
        if got == _kept(logits.masked_fill(logits < min_p * logits.amax(-1, keepdim=True),
                                           -math.inf)):
            raise Wrong(f"On {name}, you compared logits, not probabilities. Hint: take the "
                        "softmax first.")
        raise Wrong(f"On {name}, you keep tokens {got}, transformers' MinPLogitsWarper "
                    f"{expected}. Hint: a token exactly at the threshold stays, and the softmax "
                    "is over the vocabulary, the last dimension.")
    return "a batch, tokens exactly at the threshold, and tied top tokens"


def check_8_3(fn) -> str:
    cases = [("2 layers, 16 features, 5 tokens, batch of 1", dict(n_heads=4), 5, 1),
             ("3 layers, 32 features, 12 tokens, batch of 3", dict(n_layers=3, emb_dim=32,
                                                                    n_heads=4), 12, 3)]
    for name, changes, n, batch in cases:
        model = tiny_model(0, **changes)
        cache = KVCache()
        with torch.no_grad():
            model(torch.zeros(batch, n, dtype=torch.long), cache=cache)
        measured = sum(t.nbytes for kv in cache for t in kv)
        got = fn(model.cfg, n, batch)
        cfg = model.cfg
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            raise Wrong(f"On {name}, your function returned {type(got).__name__}, not a number "
                        "of bytes.")
        if got == measured:
            continue
        if got * 2 == measured:
            raise Wrong(f"On {name}, your count is half the cache. Hint: each layer keeps two "
                        "tensors per token.")
        if got * cfg.n_heads == measured:
            raise Wrong(f"On {name}, your count is one head's worth. Hint: the heads together "
                        "have C features per token.")
        if got * batch == measured:
            raise Wrong(f"On {name}, your count is for one sequence. Hint: every row of the "
                        "batch has its own keys and values.")
        raise Wrong(f"On {name}, you predict {got:,} bytes; the cache holds {measured:,}. "
                    "Hint: count the numbers per layer and per token, then 4 bytes each.")
    return "two configurations, batches of 1 and 3, against the bytes a filled KVCache holds"


def check_8_4(fn) -> str:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5]]))
    cases = [("p = 1e-6 (only the most probable token)", 1e-6),
             ("p = 0.6 (the second token is the boundary one, which crosses p)", 0.6),
             ("p = 0.45", 0.45), ("p = 1 (every token)", 1.0)]
    for name, p in cases:
        case = f"a batch of two rows, {name}"
        expected = _kept(top_p_filter(logits, p))
        got = _kept(_tensor(fn(logits.clone(), p), logits, case))
        if got == expected:
            continue
        if not all(got):
            raise Wrong(f"On {case}, your filter keeps no token in a row. Hint: the most "
                        "probable token always stays, even when its probability exceeds p.")
        if all(len(g) == len(e) - 1 for g, e in zip(got, expected)):
            raise Wrong(f"On {case}, you keep {got}, expected {expected}: the token that makes "
                        "the mass reach p is missing. Hint: keep a token if the mass ranked "
                        "above it is still below p.")
        raise Wrong(f"On {case}, you keep {got}, expected {expected}. Hint: sort each row "
                    "most probable first, softmax over the vocabulary (the last dimension).")
    tied = torch.tensor([[1.0, 3.0, 3.0, 0.5, 3.0]])
    kept = _kept(_tensor(fn(tied.clone(), 1e-6), tied, "logits tied at the top"))[0]
    if not kept or not set(kept) <= {1, 2, 4}:
        raise Wrong(f"On logits tied at the top (tokens 1, 2, 4), p = 1e-6, you keep {kept}. "
                    "Hint: the nucleus is drawn from the most probable tokens only.")
    return "a batch, a tiny p, the boundary token, p = 1 and tied top logits"


def check_8_5(fn) -> str:
    model = tiny_model(5)
    gen = torch.Generator().manual_seed(0)
    cases = [("a batch of three 7-token rows, a 3-token prompt", (3, 7), 3),
             ("a prompt of one token", (2, 5), 1), ("a continuation of one token", (1, 4), 3)]
    for name, shape, n in cases:
        ids = torch.randint(0, TINY.vocab_size, shape, generator=gen)
        with torch.no_grad():
            lp = torch.log_softmax(model(ids), dim=-1)
        expected = lp[:, n - 1:-1].gather(2, ids[:, n:, None]).mean().item()
        with torch.no_grad():
            got = fn(model, ids.clone(), n)
        got = got.item() if isinstance(got, torch.Tensor) and got.numel() == 1 else got
        if not isinstance(got, float):
            raise Wrong(f"On {name}, your function returned {type(got).__name__}, not a number.")
        if math.isclose(got, expected, rel_tol=1e-4):
            continue
        if math.isclose(got, lp[:, n:].gather(2, ids[:, n:, None]).mean().item(), rel_tol=1e-4):
            raise Wrong(f"On {name}, each token was scored by the logits at its own position. "
                        "Hint: the logits at position t predict token t + 1.")
        if math.isclose(got, lp[:, :-1].gather(2, ids[:, 1:, None]).mean().item(), rel_tol=1e-4):
            raise Wrong(f"On {name}, you averaged over the prompt's tokens too. Hint: only the "
                        "continuation, the tokens from prompt_len on, counts.")
        raise Wrong(f"On {name}, you gave {got:.4f}, expected {expected:.4f}. Hint: "
                    "log_softmax over the vocabulary, then the entry of the token that came.")
    return "a batch, a one-token prompt and a one-token continuation"


CHECKS = {"8.1": check_8_1, "8.2": check_8_2, "8.3": check_8_3, "8.4": check_8_4,
          "8.5": check_8_5}
