"""Looking inside a trained GPT, built in Chapter 10 (Seeing inside).

Read in this order:

* :func:`helpers.heads.attention_of` and the head scores live in ``helpers.heads``;
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
