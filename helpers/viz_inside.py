"""Figures of Chapters 8 to 10: what a model predicts, the perplexity windows, what it attends to.

The same conventions as ``helpers.viz`` (Chapters 2 to 6): every function draws on an ``ax`` it
is given (or on a new figure when ``ax`` is None) and returns the figure; nothing here sets
styles, rcParams or seeds.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from helpers.viz import COLUMN_INCHES, FONT_SIZE, _as_numpy, _fit

# --------------------------------------------------------------------------- Chapter 8 (Decoding)


def plot_next_token_probs(
    probs,
    labels: Sequence[str],
    ax=None,
    kept=None,
    title: str | None = None,
    ylabel: str = "probability",
):
    """Chapter 8: one bar per candidate token (``probs[i]`` for ``labels[i]``), e.g. the most
    probable next tokens. With ``kept`` (bools), the tokens a filter keeps are drawn solid and the
    removed ones faint and hatched. Returns the figure."""
    p = _as_numpy(probs)
    if p.ndim != 1 or len(p) != len(labels):
        raise ValueError(
            f"need one probability per label, got shape {p.shape} and {len(labels)} labels."
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    x = np.arange(len(p))
    keep = np.ones(len(p), dtype=bool) if kept is None else _as_numpy(kept).astype(bool)
    ax.bar(x[keep], p[keep], color="C0", label="kept" if kept is not None else None)
    if (~keep).any():
        ax.bar(x[~keep], p[~keep], color="C7", alpha=0.35, hatch="//", label="removed")
        ax.legend(fontsize=FONT_SIZE)
    ax.set_xticks(x, [repr(s)[1:-1] for s in labels], rotation=60, ha="right", fontsize=FONT_SIZE)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax.figure


def plot_frequencies(probs, freqs, labels: Sequence[str], ax=None, title: str | None = None):
    """Chapter 8: side-by-side bars of the probabilities ``probs`` and the observed frequencies
    ``freqs`` of the same tokens (e.g. over many sampled draws). Returns the figure."""
    p, f = _as_numpy(probs), _as_numpy(freqs)
    if p.shape != f.shape or p.ndim != 1 or len(p) != len(labels):
        raise ValueError(
            f"need probs and freqs of one shape (N,) and N labels, got {p.shape}, {f.shape}, "
            f"{len(labels)}."
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    x = np.arange(len(p))
    ax.bar(x - 0.2, p, width=0.4, color="C0", label="softmax probability")
    ax.bar(x + 0.2, f, width=0.4, color="C1", label="sampled frequency")
    ax.set_xticks(x, [repr(s)[1:-1] for s in labels], rotation=60, ha="right", fontsize=FONT_SIZE)
    ax.set_ylabel("share")
    ax.legend(fontsize=FONT_SIZE)
    if title:
        ax.set_title(title)
    return ax.figure


# ---------------------------------------------------------------------- Chapter 9 (GPT-2's weights)


def plot_sliding_windows(
    n_tokens: int, context: int, stride: int, ax=None, title: str | None = None
):
    """Chapter 9: the windows of a sliding-window perplexity (``helpers.perplexity.window_plan``),
    one row per window: the tokens it reads only as context in a light shade, the tokens it scores
    in a dark one. Returns the figure."""
    from helpers.perplexity import window_plan

    plan = window_plan(n_tokens, context, stride)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 0.35 * len(plan) + 1.2))
    for row, (begin, end, first) in enumerate(plan):
        ax.barh(
            row,
            first - begin,
            left=begin,
            color="C0",
            alpha=0.25,
            edgecolor="C0",
            label="context only" if row == 0 else None,
        )
        ax.barh(
            row,
            end - first,
            left=first,
            color="C0",
            edgecolor="C0",
            label="scored" if row == 0 else None,
        )
    ax.set_yticks(range(len(plan)), [f"window {i}" for i in range(len(plan))])
    ax.invert_yaxis()
    ax.set_xlim(0, n_tokens)
    ax.set_xlabel("token position")
    ax.legend(fontsize=FONT_SIZE, loc="upper right")
    if title:
        ax.set_title(title)
    return ax.figure


# ----------------------------------------------------------------------- Chapter 10 (Seeing inside)


def plot_attention_grid(weights, tokens: Sequence[str], axes=None, title: str | None = None):
    """Chapter 10: every head of every layer, ``(L, h, T, T)`` weights (one batch item), as an ``L x
    h`` grid of heatmaps on one colour scale from 0 to 1: rows are layers, columns heads, token
    labels on the outer axes. ``axes`` is an ``(L, h)`` array of axes (a new figure when None).
    Returns the figure."""
    w = _as_numpy(weights)
    if w.ndim != 4 or w.shape[-1] != w.shape[-2]:
        raise ValueError(
            f"weights must be (n_layers, n_heads, T, T), got shape {w.shape}: select one batch "
            "item of the stacked weights first."
        )
    L, h, T, _ = w.shape
    if len(tokens) != T:
        raise ValueError(f"got {len(tokens)} token labels for attention over T={T} positions.")
    if axes is None:
        size = min(0.9 + 0.1 * T, (COLUMN_INCHES - 1.6) / h)
        _, axes = plt.subplots(
            L, h, figsize=(size * h + 1.6, size * L + 0.8), squeeze=False, layout="constrained"
        )
    axes = np.asarray(axes)
    if axes.shape != (L, h):
        raise ValueError(f"got axes of shape {axes.shape} for {L} layers x {h} heads.")
    # Label every step-th token, so that FONT_SIZE-point labels do not overlap.
    panel_points = axes[0, 0].get_position().height * axes[0, 0].figure.get_figheight() * 72
    step = max(1, int(np.ceil(T * 1.25 * FONT_SIZE / max(panel_points, 1.0))))
    ticks, names = range(0, T, step), list(tokens)[::step]
    for i in range(L):
        for j in range(h):
            ax = axes[i, j]
            image = ax.imshow(w[i, j], cmap="Blues", vmin=0.0, vmax=1.0)
            ax.set_xticks(ticks, names if i == L - 1 else [], rotation=90, fontsize=FONT_SIZE)
            ax.set_yticks(ticks, names if j == 0 else [], fontsize=FONT_SIZE)
            if i == 0:
                ax.set_title(f"head {j}", fontsize=FONT_SIZE)
            if j == 0:
                ax.set_ylabel(f"layer {i}", fontsize=FONT_SIZE)
    figure = axes[0, 0].figure
    figure.colorbar(image, ax=axes, fraction=0.02, pad=0.01, label="attention weight")
    if title:
        figure.suptitle(title)
    return figure


def plot_head_scores(
    scores,
    ax=None,
    title: str | None = None,
    vmax: float | None = None,
    fmt: str = ".2f",
    cmap: str = "viridis",
):
    """Chapter 10: an ``(n_layers, n_heads)`` table of per-head scores as an annotated heatmap,
    layers as rows. ``vmax`` fixes the top of the colour scale (the table's maximum when None).
    Returns the figure."""
    s = _as_numpy(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be a 2-D (n_layers, n_heads) table, got shape {s.shape}.")
    if ax is None:
        _, ax = plt.subplots(figsize=_fit(0.8 * s.shape[1] + 1.6, 0.5 * s.shape[0] + 1.0))
    top = float(np.nanmax(s)) if vmax is None else vmax
    image = ax.imshow(s, cmap=cmap, vmin=0.0, vmax=top, aspect="auto")
    for i in range(s.shape[0]):
        for j in range(s.shape[1]):
            ax.text(
                j,
                i,
                format(s[i, j], fmt),
                ha="center",
                va="center",
                fontsize=FONT_SIZE,
                color="black" if s[i, j] > 0.6 * top else "white",
            )
    ax.set_xticks(range(s.shape[1]))
    ax.set_yticks(range(s.shape[0]))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    if title:
        ax.set_title(title, fontsize=FONT_SIZE + 1)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax.figure


def _shorten(text: str, n: int) -> str:
    """``text`` cut to at most ``n`` characters, an ellipsis marking a cut."""
    return text if len(text) <= n else text[: n - 1] + "…"


def plot_logit_lens(
    values,
    cell_text,
    tokens: Sequence[str],
    ax=None,
    title: str | None = None,
    value_label: str = "probability of the top token",
):
    """Chapter 10: the logit lens as a heatmap. ``values`` and ``cell_text`` are ``(L + 1, T)``: row
    0 reads the residual stream after the embeddings, row ``l`` after block ``l``; column ``t`` is
    the guess at position ``t`` (input token ``tokens[t]``) for the token that follows. Each cell
    shows its text (e.g. the top token) coloured by its value. Returns the figure."""
    v = _as_numpy(values)
    if v.ndim != 2 or np.shape(cell_text)[:2] != v.shape or len(tokens) != v.shape[1]:
        raise ValueError(
            f"values {v.shape}, cell_text {np.shape(cell_text)} and {len(tokens)} tokens do not "
            f"match: need (L + 1, T), (L + 1, T) and T."
        )
    if ax is None:
        width = min(COLUMN_INCHES, 0.95 * v.shape[1] + 2.0)
        _, ax = plt.subplots(figsize=(width, 0.45 * v.shape[0] + 1.4))
    # A cell's text gets at most the characters that fit its width at FONT_SIZE points.
    cell_points = ax.get_position().width * ax.figure.get_figwidth() * 72 / v.shape[1]
    fits = max(2, int(cell_points / (0.6 * FONT_SIZE)))
    image = ax.imshow(v, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            ax.text(
                j,
                i,
                _shorten(str(cell_text[i][j]), fits),
                ha="center",
                va="center",
                fontsize=FONT_SIZE,
                color="white" if v[i, j] > 0.6 else "black",
            )
    ax.set_xticks(range(v.shape[1]), list(tokens), rotation=45, ha="right", fontsize=FONT_SIZE)
    ax.set_yticks(
        range(v.shape[0]),
        ["embeddings"] + [f"block {i}" for i in range(1, v.shape[0])],
        fontsize=FONT_SIZE,
    )
    ax.set_xlabel("input token at this position")
    if title:
        ax.set_title(title, fontsize=FONT_SIZE + 1)
    ax.figure.colorbar(image, ax=ax, fraction=0.03, pad=0.02, label=value_label)
    return ax.figure
