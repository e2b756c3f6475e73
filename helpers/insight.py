"""Looking inside a trained GPT, built in Chapter 9 (Seeing inside).

Read in this order:

* :func:`attention_of`: every block's attention weights, stacked ``(L, B, h, T, T)``, from the
  model's own forward pass (``GPTModel.forward(idx, attn_weights=weights)``);
* head scores, each ``(..., B, h, T, T)`` weights in, ``(..., h)`` out, the mean over the batch and
  over the queries ``t >= 1`` (query 0 can only look at itself): :func:`previous_token_score`
  (weight on ``t - 1``), :func:`first_token_score` (on position 0), :func:`self_score` (on ``t``
  itself), :func:`same_token_score` (on earlier positions that hold the same token id, over the
  queries that have one), and :func:`head_scores` for all four; :func:`uniform_attention` is the
  baseline a head that attends evenly would get; :func:`attention_distance` and
  :func:`attention_entropy` summarize how far and how widely a head looks, and
  :func:`key_token_preference` which token ids it seeks out;
* :func:`token_strings` and :func:`bertviz_inputs`: what ``bertviz.head_view`` / ``model_view``
  take, a tuple of per-layer ``(1, h, T, T)`` tensors and a list of ``T`` token strings;
* :func:`residual_stream` and :func:`logit_lens`: the stream after the embeddings and after every
  block, caught with forward hooks, and each one read out through ``final_norm`` and ``out_head``
  (the last one is the model's own logits);
* :func:`cosine_similarity_matrix` and :func:`nearest_tokens` for embedding tables;
* :func:`greedy_trace`: greedy generation one step at a time, keeping what the inference explorer
  shows (the top next-token probabilities and every head's attention).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SCORE_NAMES = ("previous", "first", "self", "same")


# -- attention and head scores -------------------------------------------------------------------
@torch.no_grad()
def attention_of(model, idx: torch.Tensor) -> torch.Tensor:
    """``(L, B, h, T, T)``: the attention weights of every block for ``idx  # (B, T)``, as the model
    computes them in the mode it is in (call ``model.eval()`` first)."""
    weights: list[torch.Tensor] = []
    model(idx, attn_weights=weights)
    return torch.stack(weights)


def _check_weights(weights: torch.Tensor) -> None:
    if (
        not isinstance(weights, torch.Tensor)
        or weights.dim() < 4
        or weights.shape[-1] != weights.shape[-2]
    ):
        shape = (
            tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        )
        raise ValueError(
            f"attention weights must be a tensor of shape (..., B, h, T, T), got {shape}: "
            f"stack the per-layer list with attention_of(model, idx) or torch.stack."
        )
    if weights.shape[-1] < 2:
        raise ValueError(
            "the weights cover a single token: scores need T >= 2 (query 0 sees only itself)."
        )


def _mean_over_batch_and_queries(per_query: torch.Tensor) -> torch.Tensor:
    """``(..., B, h, T - 1)`` -> ``(..., h)``."""
    return per_query.mean(dim=-1).mean(dim=-2)


def previous_token_score(weights: torch.Tensor) -> torch.Tensor:
    """Mean weight that query ``t`` puts on key ``t - 1``: ``(..., B, h, T, T)`` -> ``(..., h)``."""
    _check_weights(weights)
    return _mean_over_batch_and_queries(weights.diagonal(offset=-1, dim1=-2, dim2=-1))


def first_token_score(weights: torch.Tensor) -> torch.Tensor:
    """Mean weight that queries ``t >= 1`` put on key 0: ``(..., B, h, T, T)`` -> ``(..., h)``."""
    _check_weights(weights)
    return _mean_over_batch_and_queries(weights[..., 1:, 0])


def self_score(weights: torch.Tensor) -> torch.Tensor:
    """Mean weight that queries ``t >= 1`` put on themselves: ``(..., B, h, T, T)`` ->
    ``(..., h)``."""
    _check_weights(weights)
    return _mean_over_batch_and_queries(weights.diagonal(dim1=-2, dim2=-1)[..., 1:])


def same_token_mask(idx: torch.Tensor) -> torch.Tensor:
    """``(B, T, T)`` bool: True at ``[b, t, s]`` when ``s < t`` and ``idx[b, s] == idx[b, t]``."""
    T = idx.shape[-1]
    earlier = torch.ones(T, T, dtype=torch.bool, device=idx.device).tril(diagonal=-1)
    return (idx[:, :, None] == idx[:, None, :]) & earlier


def same_token_score(weights: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Weight on earlier copies of the query's own token, summed over the copies and averaged over
    the queries that have at least one (and over the batch): ``(..., B, h, T, T)`` and ``idx (B,
    T)`` -> ``(..., h)``. NaN if no token repeats."""
    _check_weights(weights)
    B, T = weights.shape[-4], weights.shape[-1]
    if not isinstance(idx, torch.Tensor) or tuple(idx.shape) != (B, T):
        shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(
            f"idx must be the (B, T) = {(B, T)} token ids the weights were computed from, got "
            f"{shape}."
        )
    mask = same_token_mask(idx)  # (B, T, T)
    has_copy = mask.any(dim=-1).to(weights.dtype)  # (B, T): queries with an earlier copy
    mass = (weights * mask[:, None].to(weights.dtype)).sum(dim=-1)  # (..., B, h, T)
    total = (mass * has_copy[:, None]).sum(dim=(-3, -1))  # (..., h)
    return total / has_copy.sum()


def head_scores(weights: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """All four scores, ``{"previous", "first", "self", "same"}``, each ``(..., h)``."""
    scores = (
        previous_token_score(weights),
        first_token_score(weights),
        self_score(weights),
        same_token_score(weights, idx),
    )
    return dict(zip(SCORE_NAMES, scores))


def key_token_preference(
    weights: torch.Tensor, idx: torch.Tensor, vocab_size: int, min_uniform: float = 5.0
) -> torch.Tensor:
    """``(..., h, V)``: the attention each token id receives as a key (from queries ``t >= 1``),
    divided by what a head attending evenly (:func:`uniform_attention`) would give it at the same
    positions. Above 1 the head seeks that token out. Ids whose even share sums to less than
    ``min_uniform`` (too rare in ``idx`` to judge), and ids that never occur, are NaN."""
    _check_weights(weights)
    B, T = weights.shape[-4], weights.shape[-1]
    if not isinstance(idx, torch.Tensor) or tuple(idx.shape) != (B, T):
        raise ValueError(
            f"idx must be the (B, T) = {(B, T)} token ids the weights were computed from."
        )
    received = (
        weights[..., 1:, :].sum(dim=-2).transpose(-3, -2)
    )  # (..., h, B, T): summed over queries
    received = received.reshape(*received.shape[:-2], B * T)
    index = idx.reshape(-1).expand_as(received)
    by_token = torch.zeros(
        *received.shape[:-1], vocab_size, dtype=weights.dtype, device=weights.device
    )
    by_token.scatter_add_(-1, index, received)  # (..., h, V)
    even = uniform_attention(T).to(weights)[1:].sum(dim=0).expand(B, T).reshape(-1)  # (B * T,)
    even_by_token = torch.zeros(
        vocab_size, dtype=weights.dtype, device=weights.device
    ).scatter_add_(0, idx.reshape(-1), even)
    ratio = by_token / even_by_token.clamp_min(1e-12)
    return ratio.masked_fill((even_by_token < min_uniform) | (even_by_token == 0), float("nan"))


def uniform_attention(num_tokens: int) -> torch.Tensor:
    """``(T, T)``: the weights of a head that spreads each query evenly over keys ``0 .. t``."""
    if num_tokens < 1:
        raise ValueError(f"num_tokens={num_tokens} must be at least 1.")
    keep = torch.ones(num_tokens, num_tokens).tril()
    return keep / keep.sum(dim=-1, keepdim=True)


def attention_distance(weights: torch.Tensor) -> torch.Tensor:
    """Mean distance ``t - s`` from query ``t`` to the keys ``s`` it attends to, weighted by the
    attention, over queries and batch: ``(..., B, h, T, T)`` -> ``(..., h)``."""
    _check_weights(weights)
    T = weights.shape[-1]
    pos = torch.arange(T, device=weights.device, dtype=weights.dtype)
    distance = (pos[:, None] - pos[None, :]).clamp(min=0)  # (T, T)
    return _mean_over_batch_and_queries((weights * distance).sum(dim=-1)[..., 1:])


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of the queries' attention rows: 0 when a head looks at one key,
    ``log(t + 1)`` when it spreads evenly. ``(..., B, h, T, T)`` -> ``(..., h)``."""
    _check_weights(weights)
    plogp = torch.where(
        weights > 0, weights * weights.clamp_min(1e-30).log(), torch.zeros_like(weights)
    )
    return _mean_over_batch_and_queries(-plogp.sum(dim=-1)[..., 1:])


# -- bertviz ---------------------------------------------------------------------------------------
def token_strings(tokenizer, ids) -> list[str]:
    """One printable string per token id: its bytes decoded on their own (a token that is part of a
    multi-byte character shows as U+FFFD), newlines and tabs written as ``\\n`` and ``\\t``."""
    ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
    out = []
    for i in ids:
        text = tokenizer.decode_bytes([i]).decode("utf-8", errors="replace")
        out.append(text.replace("\n", "\\n").replace("\t", "\\t"))
    return out


def bertviz_inputs(weights, tokens, batch_index: int = 0, decimals: int | None = 3):
    """``(attention, tokens)`` as ``bertviz.head_view(attention, tokens)`` and ``model_view`` take
    them: a tuple of ``L`` float64 CPU tensors ``(1, h, T, T)`` (batch item ``batch_index``),
    rounded to ``decimals`` (None keeps every digit), and the ``T`` tokens as a list of str.
    bertviz writes every weight into its HTML; in float64 a rounded 0.001 is written as 0.001
    (float32's nearest value would print as 0.0010000000474974513), which keeps notebooks small.
    ``weights`` is the list that ``model(idx, attn_weights=weights)`` fills, or a stacked ``(L, B,
    h, T, T)`` tensor."""
    if isinstance(weights, torch.Tensor):
        if weights.dim() != 5:
            raise ValueError(
                f"stacked weights must be (L, B, h, T, T), got shape {tuple(weights.shape)}."
            )
        weights = list(weights)
    weights = list(weights)
    if not weights:
        raise ValueError(
            "got no attention weights: pass the list that model(idx, attn_weights=weights) filled."
        )
    first = weights[0]
    for i, w in enumerate(weights):
        if (
            not isinstance(w, torch.Tensor)
            or w.dim() != 4
            or w.shape[-1] != w.shape[-2]
            or w.shape != first.shape
        ):
            shape = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
            raise ValueError(
                f"layer {i}'s weights have shape {shape}: every layer must be (B, h, T, T) "
                f"like layer 0's {tuple(first.shape)}."
            )
    B, _, T, _ = first.shape
    if not -B <= batch_index < B:
        raise ValueError(f"batch_index={batch_index} is out of range for a batch of {B}.")
    tokens = [str(t) for t in tokens]
    if len(tokens) != T:
        raise ValueError(
            f"got {len(tokens)} tokens for attention over T={T} positions: pass one string per "
            "token."
        )
    layers = []
    for w in weights:
        w = (
            w[batch_index : batch_index + 1 if batch_index != -1 else None].detach().cpu().double()
        )  # (1, h, T, T)
        layers.append(w.round(decimals=decimals) if decimals is not None else w)
    return tuple(layers), tokens


# -- the logit lens ----------------------------------------------------------------------------
@torch.no_grad()
def residual_stream(model, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(states, logits)``: ``states`` is ``(L + 1, B, T, C)``, the residual stream after the
    embeddings (0) and after each block (1 .. L), caught with forward hooks during one ordinary
    forward pass, whose logits ``(B, T, V)`` come back too."""
    states: list[torch.Tensor] = []

    def keep(module, inputs, output):
        states.append(output)  # (B, T, C): every block returns the residual stream alone

    modules = [model.drop_emb, *model.trf_blocks]
    handles = [m.register_forward_hook(keep) for m in modules]
    try:
        logits = model(idx)
    finally:
        for handle in handles:
            handle.remove()
    if len(states) != len(modules):
        raise RuntimeError(
            f"caught {len(states)} states for {len(modules)} modules: the model's forward "
            f"must call drop_emb and each block once."
        )
    return torch.stack(states), logits


@torch.no_grad()
def logit_lens(model, idx: torch.Tensor) -> torch.Tensor:
    """``(L + 1, B, T, V)``: each state of :func:`residual_stream` read out as next-token logits
    through the model's ``final_norm`` and ``out_head``. Entry ``L`` equals ``model(idx)``."""
    states, _ = residual_stream(model, idx)
    return model.out_head(model.final_norm(states))


# -- embeddings ---------------------------------------------------------------------------------
def cosine_similarity_matrix(table: torch.Tensor) -> torch.Tensor:
    """``(N, N)`` cosine similarities between the rows of an ``(N, C)`` table."""
    if not isinstance(table, torch.Tensor) or table.dim() != 2:
        shape = tuple(table.shape) if isinstance(table, torch.Tensor) else type(table).__name__
        raise ValueError(f"table must be a 2-D (N, C) tensor, got {shape}.")
    unit = torch.nn.functional.normalize(table.detach().float(), dim=-1)
    return unit @ unit.T


def nearest_tokens(table: torch.Tensor, token_id: int, k: int = 5) -> list[tuple[int, float]]:
    """The ``k`` rows of ``table  # (V, C)`` most cosine-similar to row ``token_id``, itself left
    out, as ``(id, similarity)`` pairs, most similar first."""
    if not isinstance(table, torch.Tensor) or table.dim() != 2:
        raise ValueError("table must be a 2-D (V, C) tensor such as model.tok_emb.weight.")
    V = table.shape[0]
    if not 0 <= token_id < V:
        raise ValueError(f"token id {token_id} is out of range: ids must be in 0..{V - 1}.")
    if not 1 <= k < V:
        raise ValueError(f"k={k} must be between 1 and {V - 1}.")
    unit = torch.nn.functional.normalize(table.detach().float(), dim=-1)
    sims = unit @ unit[token_id]  # (V,)
    sims[token_id] = -float("inf")
    values, ids = sims.topk(k)
    return [(int(i), float(v)) for i, v in zip(ids, values)]


# -- step-by-step generation ------------------------------------------------------------------
@dataclass
class Step:
    """One greedy step: the ``ids`` the model saw (``T``), the ``top_ids`` and ``top_probs`` of its
    next-token distribution (``k`` each, most likely first; the chosen token is ``top_ids[0]``) and
    its ``attention`` ``(L, h, T, T)``."""

    ids: list
    top_ids: list
    top_probs: list
    attention: torch.Tensor


@torch.no_grad()
def greedy_trace(model, idx: torch.Tensor, max_new_tokens: int, top_k: int = 5) -> list[Step]:
    """Greedy generation from one prompt ``idx  # (1, T)`` for ``max_new_tokens`` steps, keeping a
    :class:`Step` per step. The model sees the last ``context_length`` tokens of the text (prompt
    and generated tokens) at every step. The model is used in the mode it is in (call
    ``model.eval()``)."""
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
        model.check_ids(idx)  # raises its clear error for anything that is not (B, T)
    model.check_ids(idx[:, -model.cfg.context_length :])  # dtype and id range
    if idx.shape[0] != 1:
        raise ValueError(
            f"greedy_trace follows one prompt: got a batch of {idx.shape[0]}; pass idx[:1]."
        )
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} must be at least 1.")
    if not 1 <= top_k <= model.cfg.vocab_size:
        raise ValueError(f"top_k={top_k} must be between 1 and vocab_size={model.cfg.vocab_size}.")
    steps = []
    for _ in range(max_new_tokens):
        window = idx[:, -model.cfg.context_length :]  # (1, T)
        weights: list[torch.Tensor] = []
        logits = model(window, attn_weights=weights)
        probs = torch.softmax(logits[0, -1], dim=-1)  # (V,)
        top = probs.topk(top_k)
        steps.append(
            Step(
                window[0].tolist(),
                top.indices.tolist(),
                top.values.tolist(),
                torch.stack(weights)[:, 0],
            )
        )  # (L, h, T, T)
        idx = torch.cat([idx, top.indices[:1].view(1, 1)], dim=1)
    return steps
