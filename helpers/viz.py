"""Figures of Chapters 2 to 6; each function's docstring names the chapter that draws it.

Chapters 8 to 10 draw with ``helpers.viz_inside``.

Every function draws on an ``ax`` it is given (or on a new figure when ``ax`` is None) and returns
the figure, so a notebook cell can end with ``plt.show()`` and show one stable output. Nothing here
sets styles, rcParams or seeds.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

# The book's page column is about 784 px wide, 7.8 inches at the 100 dpi of a notebook figure: a
# figure at most COLUMN_INCHES wide is shown at its natural size, so its FONT_SIZE-point labels stay
# FONT_SIZE points on the page. tests/test_viz.py holds every function here to both.
COLUMN_INCHES = 7.5
FONT_SIZE = 9


def _fit(width: float, height: float) -> tuple[float, float]:
    """A figure size scaled down, keeping its shape, to at most ``COLUMN_INCHES`` wide."""
    scale = min(1.0, COLUMN_INCHES / width)
    return (width * scale, height * scale)


def _as_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, possibly on a GPU or needing grad
        values = values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=float)


def plot_attention(
    weights,
    tokens: Sequence[str],
    ax=None,
    title: str | None = None,
    annotate: bool = True,
    cmap: str = "Blues",
    vmax: float | None = None,
):
    """Chapter 3: heatmap of one ``(T, T)`` attention matrix. Row ``i`` is how query token ``i``
    spreads its attention over the key tokens (columns). ``annotate`` writes each weight in its
    cell (use it for small T). Returns the figure."""
    w = _as_numpy(weights)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(
            f"weights must be one square (T, T) matrix, got shape {w.shape}: select a batch item "
            "and a head first."
        )
    if len(tokens) != w.shape[0]:
        raise ValueError(
            f"got {len(tokens)} token labels for a {w.shape[0]} x {w.shape[1]} attention matrix."
        )
    if ax is None:
        _, ax = plt.subplots(figsize=_fit(0.6 * len(tokens) + 1.5, 0.6 * len(tokens) + 1.0))
    vmax = float(w.max()) if vmax is None else vmax
    image = ax.imshow(w, cmap=cmap, vmin=0.0, vmax=vmax)
    ax.set_xticks(range(len(tokens)), list(tokens), rotation=45, ha="right")
    ax.set_yticks(range(len(tokens)), list(tokens))
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if annotate:
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                ax.text(
                    j,
                    i,
                    f"{w[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=FONT_SIZE,
                    color="white" if w[i, j] > 0.6 * vmax else "black",
                )
    if title:
        ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax.figure


def plot_attention_heads(
    weights, tokens: Sequence[str], axes=None, annotate: bool = False, ncols: int = 4
):
    """Chapter 3: one heatmap per head for ``(num_heads, T, T)`` weights, titled "head 0", "head
    1", ...; ``axes`` is a sequence of at least ``num_heads`` axes (a new grid of ``ncols`` columns
    when None). Returns the figure."""
    w = _as_numpy(weights)
    if w.ndim != 3:
        raise ValueError(
            f"weights must be (num_heads, T, T), got shape {w.shape}: select one batch item first."
        )
    if axes is None:
        nrows = -(-w.shape[0] // ncols)
        cols = min(ncols, w.shape[0])
        size = 4.4 if annotate else 3.2
        _, grid = plt.subplots(
            nrows,
            cols,
            figsize=_fit(size * cols, 0.9 * size * nrows),
            squeeze=False,
            layout="constrained",
        )
        axes = grid.ravel()
        for extra in axes[w.shape[0] :]:
            extra.axis("off")
    if len(axes) < w.shape[0]:
        raise ValueError(f"got {len(axes)} axes for {w.shape[0]} heads.")
    for h in range(w.shape[0]):
        plot_attention(w[h], tokens, ax=axes[h], title=f"head {h}", annotate=annotate, vmax=1.0)
    return axes[0].figure


# --------------------------------------------------------------------------- Chapter 2 (Embeddings)


def plot_word_map(
    points, words: Sequence[str], groups: Sequence[str], ax=None, title: str | None = None
):
    """Scatter of 2-D word positions ``(N, 2)`` (e.g. from ``helpers.word_vectors.pca_2d``), one
    colour per group, each point labelled with its word and the legend naming the groups. Returns
    the figure."""
    p = _as_numpy(points)
    if p.ndim != 2 or p.shape[1] != 2 or not len(p) == len(words) == len(groups):
        raise ValueError(
            f"need points of shape (N, 2) and N words and groups, got {p.shape}, "
            f"{len(words)} words and {len(groups)} groups."
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 5))
    names = list(dict.fromkeys(groups))  # first-seen order
    for k, name in enumerate(names):
        rows = [i for i, g in enumerate(groups) if g == name]
        ax.scatter(p[rows, 0], p[rows, 1], color=f"C{k}", label=name)
        for i in rows:
            ax.annotate(
                words[i],
                (p[i, 0], p[i, 1]),
                xytext=(3, 3),
                textcoords="offset points",
                fontsize=FONT_SIZE,
            )
    ax.set_xlabel("first principal direction")
    ax.set_ylabel("second principal direction")
    ax.legend(fontsize=FONT_SIZE)
    if title:
        ax.set_title(title)
    return ax.figure


def plot_table(
    table,
    ax=None,
    title: str | None = None,
    xlabel: str = "embedding dimension",
    ylabel: str = "position",
    centered: bool = True,
):
    """Heatmap of a 2-D table such as a ``(T, C)`` position table or a ``(T, T)`` matrix of dot
    products. ``centered`` colours it red/blue symmetrically around zero; otherwise from its
    minimum to its maximum. Returns the figure."""
    t = _as_numpy(table)
    if t.ndim != 2:
        raise ValueError(f"table must be 2-D, got shape {t.shape}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    if centered:
        vmax = float(np.abs(t).max()) or 1.0
        cmap, vmin = "RdBu_r", -vmax
    else:
        cmap, vmin, vmax = "viridis", float(t.min()), float(t.max())
    image = ax.imshow(t, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax.figure


def plot_similarity_by_distance(
    table, starts: Sequence[int], max_distance: int, ax=None, title: str | None = None
):
    """Cosine similarity of row ``p`` and row ``p + k`` of a ``(T, C)`` position table against the
    distance ``k = 0 .. max_distance``, one line per start ``p`` in ``starts``. Returns the
    figure."""
    t = _as_numpy(table)
    if t.ndim != 2:
        raise ValueError(f"table must be a 2-D (T, C) position table, got shape {t.shape}.")
    if max(starts) + max_distance >= len(t):
        raise ValueError(
            f"start {max(starts)} + max_distance {max_distance} runs past the table's {len(t)} "
            "rows."
        )
    unit = t / np.linalg.norm(t, axis=1, keepdims=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    distances = np.arange(max_distance + 1)
    for p in starts:
        ax.plot(distances, unit[p + distances] @ unit[p], label=f"from position {p}")
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.set_xlabel("distance k between positions")
    ax.set_ylabel("cosine similarity")
    ax.legend(fontsize=FONT_SIZE)
    if title:
        ax.set_title(title)
    return ax.figure


# -------------------------------------------------------------------- Chapters 4 and 5 (Block, GPT)


def plot_curves(
    x,
    curves: dict,
    ax=None,
    title: str | None = None,
    xlabel: str = "x",
    ylabel: str = "y",
    logy: bool = False,
    zero_line: bool = True,
):
    """Several curves over the same ``x``, one line per ``{label: y}`` item of ``curves`` (e.g.
    ReLU and both GELUs, or their derivatives, or loss curves). ``logy`` uses a log scale for y;
    ``zero_line`` draws a thin line at y = 0 (linear scale only). Returns the figure."""
    xs = _as_numpy(x)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for k, (label, y) in enumerate(curves.items()):
        ys = _as_numpy(y)
        if ys.shape != xs.shape:
            raise ValueError(f"curve {label!r} has shape {ys.shape} but x has shape {xs.shape}.")
        ax.plot(xs, ys, label=label, color=f"C{k}", linestyle=("-", "--", ":", "-.")[k % 4])
    if logy:
        ax.set_yscale("log")
    elif zero_line:
        ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=FONT_SIZE)
    if title:
        ax.set_title(title)
    return ax.figure


def plot_per_layer(
    series: dict,
    ax=None,
    title: str | None = None,
    ylabel: str = "value",
    xlabel: str = "layer",
    logy: bool = True,
    first_layer: int = 0,
):
    """One line with markers per ``{label: values}`` item, ``values[i]`` belonging to layer
    ``first_layer + i`` (e.g. the mean absolute gradient of each layer's weights, or the residual
    stream's standard deviation after each block). Log scale for y by default. Returns the
    figure."""
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for k, (label, values) in enumerate(series.items()):
        v = _as_numpy(values)
        ax.plot(
            np.arange(first_layer, first_layer + len(v)), v, marker="o", label=label, color=f"C{k}"
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=FONT_SIZE)
    if title:
        ax.set_title(title)
    return ax.figure


# -------------------------------------------------------------------------- Chapter 6 (Pretraining)


def plot_losses(
    history,
    ax=None,
    label: str | None = None,
    color: str | None = None,
    title: str | None = None,
    epochs_axis: bool = True,
):
    """Training (solid) and validation (dashed) loss of a ``helpers.train.History`` against tokens
    seen. Call it again on the same ``ax`` with another ``label`` and ``color`` to compare runs.
    With ``epochs_axis`` a top axis counts epochs (from ``history.tokens_per_epoch``). Returns the
    figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
    prefix = f"{label}: " if label else ""
    tokens = _as_numpy(history.tokens_seen)
    (line,) = ax.plot(
        tokens, _as_numpy(history.train_loss), color=color, label=f"{prefix}training loss"
    )
    ax.plot(
        tokens,
        _as_numpy(history.val_loss),
        color=line.get_color(),
        linestyle="--",
        label=f"{prefix}validation loss",
    )
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("cross-entropy loss (nats)")
    ax.legend(fontsize=FONT_SIZE)
    per_epoch = getattr(history, "tokens_per_epoch", 0)
    if (
        epochs_axis
        and per_epoch
        and not any(getattr(a, "_is_epochs_axis", False) for a in ax.child_axes)
    ):
        top = ax.secondary_xaxis(
            "top", functions=(lambda t: t / per_epoch, lambda e: e * per_epoch)
        )
        top.set_xlabel("epochs")
        top._is_epochs_axis = True
    if title:
        ax.set_title(title)
    return ax.figure
