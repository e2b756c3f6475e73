"""Beam search, built in Chapter 8 (Decoding).

:func:`beam_search`: ``transformers``' beam search (its ``_beam_search``), with its length penalty
(a finished hypothesis scores ``sum log p / generated_length ** length_penalty``, the length
counting the end-of-text token) and its ``early_stopping`` rules (``False``, ``True``,
``"never"``). It can use the KV cache (``use_cache=True``, the default) and gives the same ids
without it; ``helpers.generate.generate`` calls it when ``num_beams > 1``.
"""

from __future__ import annotations

import torch

from helpers.kvcache import _next_logits


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
