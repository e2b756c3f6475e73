"""Decoding: turning next-token logits into text, built in Chapter 8 (Decoding).

Read in this order:

* the filters, each ``(..., V)`` logits in, the same shape out, removed tokens at ``-inf``:
  ``apply_temperature``, ``top_k_filter``, ``top_p_filter`` (in ``helpers.sampling``).
* :func:`stream`: greedy (``do_sample=False``) or sampling, one token id at a time, as an ``int``
  (one prompt, ``B = 1``); :func:`stream_text` turns those ids into printable text pieces.
* ``beam_search`` (in ``helpers.beam``): ``transformers``' beam search.
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

from helpers.beam import beam_search
from helpers.kvcache import _next_logits
from helpers.sampling import apply_temperature, filter_logits, top_k_filter, top_p_filter


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
    max_len = idx.shape[1] + max_new_tokens  # the cache is allocated once, for the whole text
    finished = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)  # (B,)
    for _ in range(max_new_tokens):
        logits, cache = _next_logits(model, ids, cache, use_cache, max_len)  # (B, V)
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
