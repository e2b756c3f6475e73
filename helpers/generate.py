"""Decoding: turning next-token logits into text, built in Chapter 7 (Decoding).

Read in this order:

* the filters, each ``(..., V)`` logits in, the same shape out, removed tokens at ``-inf``:
  :func:`apply_temperature`, :func:`top_k_filter`, :func:`top_p_filter`. They keep exactly the
  tokens that ``transformers``' ``TemperatureLogitsWarper``, ``TopKLogitsWarper`` and
  ``TopPLogitsWarper`` keep: top-k keeps every token tied with the k-th largest logit (so possibly
  more than k); top-p sorts ascending with ``torch.sort`` and drops the tokens whose cumulative
  probability stays at or below ``1 - p``, so a tie at the boundary may be split in sort order;
  both keep at least ``min_tokens_to_keep``.
* :func:`stream`: greedy (``do_sample=False``) or sampling, one token id at a time, as an ``int``
  (one prompt, ``B = 1``); :func:`stream_text` turns those ids into printable text pieces.
* :func:`beam_search`: ``transformers``' beam search (its ``_beam_search``), with its length penalty
  (a finished hypothesis scores ``sum log p / generated_length ** length_penalty``, the length
  counting the end-of-text token) and its ``early_stopping`` rules (``False``, ``True``,
  ``"never"``).
* :func:`generate`: one entry point for all of them, returning ``(B, T + new)`` ids.

Every path can use the KV cache (``helpers.kvcache.KVCache``; ``use_cache=True``, the default) and
gives the same ids without it. Once a sequence outgrows ``context_length`` the model sees its last
``context_length`` tokens; that shifts every position, so from then on each step recomputes the
window (the cache cannot help). ``seed`` seeds a local ``torch.Generator``; the global RNG is never
used (``seed=None`` draws a fresh random seed). Not implemented: sampling inside beam search
(``do_sample=True`` with ``num_beams > 1``) and ``transformers``' many other processors.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Iterator

import torch

from helpers.kvcache import KVCache

NEG_INF = float("-inf")


# -- the filters ---------------------------------------------------------------------------------
def _check_min_keep(min_tokens_to_keep: int) -> None:
    if (
        isinstance(min_tokens_to_keep, bool)
        or not isinstance(min_tokens_to_keep, int)
        or min_tokens_to_keep < 1
    ):
        raise ValueError(f"min_tokens_to_keep={min_tokens_to_keep!r} must be a positive integer.")


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature``: below 1 sharpens the softmax, above 1 flattens it.
    ``temperature=0`` is the limit: only the largest logit(s) stay, every other token is set to
    ``-inf``."""
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not 0 <= temperature < math.inf
    ):
        raise ValueError(
            f"temperature={temperature!r} must be a finite number, 0 or more: 0 is "
            f"greedy, 1 leaves the distribution as it is, larger values flatten it."
        )
    if temperature == 0:
        return logits.masked_fill(logits < logits.amax(dim=-1, keepdim=True), NEG_INF)
    scaled = logits / temperature
    if torch.isinf(scaled[torch.isfinite(logits)]).any():  # a tiny temperature overflowed
        # the same softmax, shifted so that the largest logit is 0: no overflow, no inf - inf
        scaled = (logits - logits.amax(dim=-1, keepdim=True)) / temperature
    return scaled


def top_k_filter(logits: torch.Tensor, k: int, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Keep the ``max(k, min_tokens_to_keep)`` largest logits and every logit tied with the last of
    them; set the rest to ``-inf``."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(
            f"top_k={k!r} must be a positive integer (the number of tokens to keep); "
            f"use None to switch top-k off (some libraries use 0 for that)."
        )
    _check_min_keep(min_tokens_to_keep)
    k = min(max(k, min_tokens_to_keep), logits.shape[-1])
    kth = torch.topk(logits, k).values[..., -1:]  # (..., 1): the k-th largest logit
    return logits.masked_fill(logits < kth, NEG_INF)


def top_p_filter(logits: torch.Tensor, p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Nucleus filtering: keep the most probable tokens whose probabilities add up to at least
    ``p``.

    Sorted ascending, a token is dropped when the cumulative probability up to and including it is
    at most ``1 - p`` (so the kept ones carry at least ``p``); the ``min_tokens_to_keep`` most
    probable always stay. ``p = 1`` keeps everything."""
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 < p <= 1:
        raise ValueError(
            f"top_p={p!r} must be in (0, 1]: the share of probability to keep "
            f"(1 keeps every token); use None to switch top-p off."
        )
    _check_min_keep(min_tokens_to_keep)
    if p == 1:
        return logits
    sorted_logits, order = torch.sort(logits, descending=False)  # (..., V), least probable first
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)  # (..., V)
    drop_sorted = cumulative <= 1 - p
    drop_sorted[..., -min_tokens_to_keep:] = False  # the most probable ones stay
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, NEG_INF)


def filter_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_tokens_to_keep: int = 1,
) -> torch.Tensor:
    """Temperature, then top-k, then top-p: the order ``transformers`` applies them in."""
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k, min_tokens_to_keep)
    if top_p is not None:
        logits = top_p_filter(logits, top_p, min_tokens_to_keep)
    return logits


# -- checks and the model step -------------------------------------------------------------------
def _check(
    model, idx, max_new_tokens, temperature, top_k, top_p, num_beams, do_sample, eos_id, seed=None
) -> None:
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
        raise ValueError(
            "the prompt must be a (B, T) tensor of token ids: add a batch axis with "
            "idx.unsqueeze(0)."
        )
    if idx.shape[1] == 0:
        raise ValueError(
            "the prompt is empty (0 tokens): give at least one token, e.g. GPT-2's "
            "<|endoftext|> (50256) to start from nothing."
        )
    model.check_ids(idx)  # dtype, id range, and a prompt longer than context_length
    if (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, int)
        or max_new_tokens < 0
    ):
        raise ValueError(f"max_new_tokens={max_new_tokens!r} must be an integer, 0 or more.")
    apply_temperature(torch.zeros(1), temperature)  # checks temperature
    if top_k is not None:
        top_k_filter(torch.zeros(1), top_k)
    if top_p is not None:
        top_p_filter(torch.zeros(1), top_p)
    if isinstance(num_beams, bool) or not isinstance(num_beams, int) or num_beams < 1:
        raise ValueError(
            f"num_beams={num_beams!r} must be a positive integer (1 means no beam search)."
        )
    if do_sample and num_beams > 1:
        raise ValueError(
            f"do_sample=True with num_beams={num_beams} (beam sampling) is not implemented: "
            f"use do_sample=False for beam search, or num_beams=1 to sample."
        )
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64
    ):
        raise ValueError(
            f"seed={seed!r} must be an integer in 0..2**64 - 1 (torch's generators "
            f"take 64 bits), or None to draw one."
        )
    if eos_id is not None and (
        isinstance(eos_id, bool)
        or not isinstance(eos_id, int)
        or not 0 <= eos_id < model.cfg.vocab_size
    ):
        raise ValueError(
            f"eos_id={eos_id!r} is not a token id: use one in 0..{model.cfg.vocab_size - 1}."
        )


def _next_logits(model, ids: torch.Tensor, cache, use_cache: bool):
    """Last-position logits ``(B, V)`` for ``ids  # (B, T)`` and the updated cache (None without
    one). The cache must hold ``ids[:, :past_len]``; when ``ids`` outgrows the context it is
    rebuilt."""
    window = ids[:, -model.cfg.context_length :]
    if not use_cache:
        return model(window)[:, -1, :], None
    if cache is None or ids.shape[1] > model.cfg.context_length:
        cache = KVCache()
        logits = model(window, cache=cache)  # prefill: the whole (window of the) prompt
    else:
        logits = model(ids[:, cache.length() :], cache=cache)  # the new tokens only
    return logits[:, -1, :], cache


# -- greedy and sampling, one token at a time ----------------------------------------------------
@torch.no_grad()
def _steps(
    model, idx, max_new_tokens, temperature, top_k, top_p, do_sample, eos_id, seed, use_cache
) -> Iterator[torch.Tensor]:
    """Yield the next ids ``(B,)`` step by step. Rows that emitted ``eos_id`` get ``eos_id`` from
    then on; the steps end when every row has (as ``transformers`` pads with ``pad_token_id``)."""
    gen = None
    if do_sample:
        gen = torch.Generator(device=idx.device)
        gen.manual_seed(seed) if seed is not None else gen.seed()
    ids, cache = idx, None
    finished = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)  # (B,)
    for _ in range(max_new_tokens):
        logits, cache = _next_logits(model, ids, cache, use_cache)  # (B, V)
        if do_sample and temperature > 0:
            probs = filter_logits(logits.float(), temperature, top_k, top_p).softmax(
                dim=-1
            )  # (B, V)
            next_id = torch.multinomial(probs, 1, generator=gen).squeeze(1)  # (B,)
        else:  # greedy; temperature 0 is greedy too (the filters never remove the largest logit)
            next_id = logits.argmax(dim=-1)  # (B,)
        if eos_id is not None:
            next_id = next_id.masked_fill(finished, eos_id)
            finished |= next_id == eos_id
        ids = torch.cat([ids, next_id[:, None]], dim=1)  # (B, T + 1)
        yield next_id
        if eos_id is not None and finished.all():
            return


def stream(
    model,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    do_sample: bool = False,
    eos_id: int | None = None,
    seed: int | None = None,
    use_cache: bool = True,
) -> Iterator[int]:
    """Yield each new token id as an ``int`` the moment it is chosen, for one prompt
    ``idx  # (1, T)``.

    The same choices as :func:`generate` with ``num_beams=1``: ``torch.tensor(list(stream(...)))``
    equals ``generate(...)[0, T:]``. Stops after ``max_new_tokens`` ids, or right after yielding
    ``eos_id``. The model is used as it is: call ``model.eval()`` first to switch dropout off."""
    _check(model, idx, max_new_tokens, temperature, top_k, top_p, 1, do_sample, eos_id, seed)
    if idx.shape[0] != 1:
        raise ValueError(
            f"stream takes one prompt, shape (1, T), got a batch of {idx.shape[0]}: "
            f"use generate for batches."
        )

    def ints():
        for next_id in _steps(
            model,
            idx,
            max_new_tokens,
            temperature,
            top_k,
            top_p,
            do_sample,
            eos_id,
            seed,
            use_cache,
        ):
            yield int(next_id[0])

    return ints()  # the checks above run at the call, not at the first next()


def stream_text(ids: Iterable[int], decode: Callable[[list[int]], str]) -> Iterator[str]:
    """Turn streamed ids into text pieces to print. One token may end in the middle of a UTF-8
    character (``decode`` then shows U+FFFD); such a piece is held back until the character is
    whole."""
    seen: list[int] = []
    shown = 0
    for i in ids:
        seen.append(i)
        text = decode(seen)
        if not text.endswith("\ufffd") and len(text) > shown:
            yield text[shown:]
            shown = len(text)
    text = decode(seen)
    if len(text) > shown:
        yield text[shown:]


# -- beam search ---------------------------------------------------------------------------------
def _early_stop_ok(
    best_running, finished_scores, finished, new_len, max_new, length_penalty, early_stopping
):
    """``transformers``' ``_check_early_stop_heuristic``: can a running beam still beat the worst
    finished one? ``(B, 1)`` bool."""
    length = max_new if early_stopping == "never" and length_penalty > 0.0 else new_len
    best = best_running / (length**length_penalty)  # (B, 1)
    worst = torch.where(finished, finished_scores.min(dim=1, keepdim=True).values, -1.0e9)  # (B, K)
    return (best > worst).any(dim=-1, keepdim=True)


@torch.no_grad()
def beam_search(
    model,
    idx: torch.Tensor,
    max_new_tokens: int,
    num_beams: int,
    *,
    eos_id: int | None = None,
    length_penalty: float = 1.0,
    early_stopping: bool | str = False,
    use_cache: bool = True,
) -> torch.Tensor:
    """The most probable continuation(s) that ``num_beams`` parallel hypotheses find,
    ``(B, T + new)``.

    Each step extends every running beam by every token, keeps the ``2 * num_beams`` best by total
    log-probability, and moves those that end (with ``eos_id``, or at ``max_new_tokens``) among the
    first ``num_beams`` into a list of finished hypotheses, scored
    ``total / new_length ** length_penalty``; the best ``num_beams`` others keep running. Returns
    the best finished hypothesis per row, padded with ``eos_id`` to the longest one. Replicates
    ``transformers``' ``_beam_search`` (float32 log-softmax, its -1e9 masks and its ties)."""
    if early_stopping not in (True, False, "never"):
        raise ValueError(f"early_stopping={early_stopping!r} must be True, False or 'never'.")
    B, T0 = idx.shape
    K, V = num_beams, model.cfg.vocab_size
    n_cand = 2 * K  # transformers keeps max(2, 1 + number of eos ids) * num_beams candidates
    dev = idx.device
    running = idx.repeat_interleave(K, dim=0).view(B, K, T0)  # (B, K, T)
    running_scores = torch.zeros(B, K, device=dev)
    running_scores[:, 1:] = -1.0e9  # at first every beam is the prompt: only beam 0 may expand
    pad = eos_id if eos_id is not None else 0
    # finished hypotheses, grown by one column a step (not allocated for max_new_tokens up front)
    done_seqs = idx[:, None, :].expand(B, K, T0).clone()  # (B, K, T)
    done_scores = torch.full((B, K), -1.0e9, device=dev)
    done_lens = torch.zeros(B, K, dtype=torch.long, device=dev)  # new tokens, eos included
    done = torch.zeros(B, K, dtype=torch.bool, device=dev)
    may_improve = torch.ones(B, 1, dtype=torch.bool, device=dev)
    first_k = torch.arange(n_cand, device=dev) < K  # (2K,)
    batch_offset = torch.arange(B, device=dev)[:, None] * K  # (B, 1)
    cache = None
    for step in range(max_new_tokens):
        logits, cache = _next_logits(model, running.view(B * K, -1), cache, use_cache)  # (B*K, V)
        log_probs = (
            torch.log_softmax(logits.float(), dim=-1).view(B, K, V) + running_scores[:, :, None]
        )
        top_scores, top_idx = torch.topk(log_probs.view(B, K * V), n_cand)  # (B, 2K)
        src, tok = top_idx // V, top_idx % V  # which beam each candidate extends, and with what
        cand = torch.cat(
            [
                torch.gather(running, 1, src[:, :, None].expand(-1, -1, running.shape[2])),
                tok[:, :, None],
            ],
            dim=2,
        )  # (B, 2K, T + 1)
        ends = torch.full_like(tok, step + 1 == max_new_tokens, dtype=torch.bool)  # (B, 2K)
        if eos_id is not None:
            ends |= tok == eos_id
        # the best K candidates that did not end keep running
        masked = top_scores + ends.float() * -1.0e9
        keep = torch.topk(masked, K).indices  # (B, K)
        running, running_scores = (
            torch.gather(cand, 1, keep[:, :, None].expand(-1, -1, cand.shape[2])),
            torch.gather(masked, 1, keep),
        )
        running_src = torch.gather(src, 1, keep)  # (B, K)
        # candidates that ended among the first K join the finished list if they score high enough
        just_done = ends & first_k
        scores = top_scores / ((step + 1) ** length_penalty)
        scores = (
            scores + (done.all(dim=-1, keepdim=True) & (early_stopping is True)).float() * -1.0e9
        )
        scores = scores + (~may_improve).float() * -1.0e9
        scores = scores + (~just_done).float() * -1.0e9
        done_seqs = torch.nn.functional.pad(done_seqs, (0, 1), value=pad)  # (B, K, T + 1)
        padded = cand  # (B, 2K, T + 1), as wide as done_seqs now
        merged_scores = torch.cat([done_scores, scores], dim=1)  # (B, 3K)
        best = torch.topk(merged_scores, K).indices  # (B, K)
        done_seqs = torch.gather(
            torch.cat([done_seqs, padded], 1),
            1,
            best[:, :, None].expand(-1, -1, done_seqs.shape[2]),
        )
        done_scores = torch.gather(merged_scores, 1, best)
        done_lens = torch.gather(torch.cat([done_lens, torch.full_like(tok, step + 1)], 1), 1, best)
        done = torch.gather(torch.cat([done, just_done], 1), 1, best)
        if cache is not None:  # each running beam continues the cache of the beam it came from
            order = (running_src + batch_offset).view(-1)  # (B*K,)
            cache.reorder(order)
        may_improve = may_improve & _early_stop_ok(
            running_scores[:, :1],
            done_scores,
            done,
            step + 1,
            max_new_tokens,
            length_penalty,
            early_stopping,
        )
        if not may_improve.any() or (done.all() and early_stopping is True) or ends.all():
            break
    new = int(done_lens[:, 0].max()) if max_new_tokens else 0
    return done_seqs[:, 0, : T0 + new].clone()


# -- one entry point -----------------------------------------------------------------------------
def generate(
    model,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    num_beams: int = 1,
    do_sample: bool = False,
    eos_id: int | None = None,
    seed: int | None = None,
    length_penalty: float = 1.0,
    use_cache: bool = True,
) -> torch.Tensor:
    """Continue ``idx  # (B, T)`` by up to ``max_new_tokens`` ids; returns ``(B, T + new)``.

    ``do_sample=False``: greedy (``num_beams=1``) or beam search (``num_beams > 1``, see
    :func:`beam_search`); temperature, top-k and top-p do not change the choice. ``do_sample=True``:
    sample from ``softmax(filter_logits(logits, temperature, top_k, top_p))`` with a generator
    seeded by ``seed``; ``temperature=0`` is greedy. With ``eos_id``, a row that emits it is padded
    with ``eos_id``, and generation stops once every row has, so ``new`` may be less than
    ``max_new_tokens``. The model is used as it is: call ``model.eval()`` first."""
    _check(
        model, idx, max_new_tokens, temperature, top_k, top_p, num_beams, do_sample, eos_id, seed
    )
    if not math.isfinite(length_penalty):
        raise ValueError(
            f"length_penalty={length_penalty!r} must be a finite number (1.0: average log-prob)."
        )
    if num_beams > 1:
        return beam_search(
            model,
            idx,
            max_new_tokens,
            num_beams,
            eos_id=eos_id,
            length_penalty=length_penalty,
            use_cache=use_cache,
        )
    new = list(
        _steps(
            model,
            idx,
            max_new_tokens,
            temperature,
            top_k,
            top_p,
            do_sample,
            eos_id,
            seed,
            use_cache,
        )
    )
    return torch.cat([idx, torch.stack(new, dim=1)], dim=1) if new else idx.clone()
