"""Smoke tests for the plotting functions of helpers.viz and helpers.viz_inside that no other test
draws (the attention heatmaps, word maps and tables, and the decoding bars have their own)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def test_every_figure_of_chapters_4_to_9_draws():
    """Each plotting function without a test of its own draws on the ax and returns its figure."""
    from helpers.train import History
    from helpers.viz import plot_curves, plot_losses, plot_per_layer
    from helpers.viz_inside import (
        plot_attention_grid,
        plot_head_scores,
        plot_logit_lens,
        plot_sliding_windows,
    )

    history = History(
        steps=[0, 5],
        epochs=[0, 1],
        tokens_seen=[0, 80],
        train_loss=[5.0, 4.0],
        val_loss=[5.1, 4.5],
        tokens_per_epoch=80,
    )
    weights = torch.softmax(torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)), -1)
    tokens = ["a", "b", "c", "d"]
    for draw in [
        lambda ax: plot_curves([0, 1, 2], {"relu": [0, 1, 2], "gelu": [0, 0.8, 2]}, ax=ax),
        lambda ax: plot_per_layer({"std": [1.0, 2.0, 4.0]}, ax=ax),
        lambda ax: plot_losses(history, ax=ax, label="run"),
        lambda ax: plot_sliding_windows(20, 8, 4, ax=ax),
        lambda ax: plot_head_scores(torch.rand(2, 3), ax=ax, title="scores"),
        lambda ax: plot_logit_lens(torch.rand(3, 4), [["x"] * 4] * 3, tokens, ax=ax),
    ]:
        fig, ax = plt.subplots()
        assert draw(ax) is fig and ax.has_data()
        plt.close(fig)
    fig, axes = plt.subplots(2, 3)
    assert plot_attention_grid(weights, tokens, axes=axes) is fig
    plt.close(fig)
