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


def _texts_of(fig):
    """Every visible piece of text of a drawn figure."""
    fig.canvas.draw()
    found = fig.findobj(matplotlib.text.Text)
    return [t for t in found if t.get_visible() and t.get_text().strip()]


def test_every_figure_fits_the_page_column_with_legible_text():
    """A figure that a function makes on its own is at most COLUMN_INCHES wide, so the page shows
    it at its natural size, and none of its text is smaller than FONT_SIZE points."""
    from helpers.train import History
    from helpers.viz import (
        COLUMN_INCHES,
        FONT_SIZE,
        plot_attention,
        plot_attention_heads,
        plot_curves,
        plot_losses,
        plot_per_layer,
        plot_similarity_by_distance,
        plot_table,
        plot_word_map,
    )
    from helpers.viz_inside import (
        plot_attention_grid,
        plot_frequencies,
        plot_head_scores,
        plot_logit_lens,
        plot_next_token_probs,
        plot_sliding_windows,
    )

    gen = torch.Generator().manual_seed(0)
    history = History(
        steps=[0, 5],
        epochs=[0, 1],
        tokens_seen=[0, 80],
        train_loss=[5.0, 4.0],
        val_loss=[5.1, 4.5],
        tokens_per_epoch=80,
    )
    words = [f"word{i}" for i in range(24)]
    table = torch.randn(100, 64, generator=gen)
    probs = torch.softmax(torch.randn(12, generator=gen), -1)
    drawings = {
        "plot_attention": lambda: plot_attention(torch.rand(12, 12), words[:12]),
        "plot_attention_heads": lambda: plot_attention_heads(torch.rand(12, 6, 6), words[:6]),
        "plot_word_map": lambda: plot_word_map(
            torch.randn(6, 2, generator=gen), words[:6], ["a", "a", "b", "b", "c", "c"]
        ),
        "plot_table": lambda: plot_table(table),
        "plot_similarity_by_distance": lambda: plot_similarity_by_distance(table, [0, 30], 50),
        "plot_curves": lambda: plot_curves([0, 1, 2], {"relu": [0, 1, 2]}),
        "plot_per_layer": lambda: plot_per_layer({"std": [1.0, 2.0, 4.0]}),
        "plot_losses": lambda: plot_losses(history, label="run"),
        "plot_next_token_probs": lambda: plot_next_token_probs(probs, words[:12]),
        "plot_frequencies": lambda: plot_frequencies(probs, probs, words[:12]),
        "plot_sliding_windows": lambda: plot_sliding_windows(20, 8, 4),
        "plot_attention_grid": lambda: plot_attention_grid(
            torch.softmax(torch.randn(4, 4, 24, 24, generator=gen), -1), words
        ),
        "plot_head_scores": lambda: plot_head_scores(torch.rand(12, 12)),
        "plot_logit_lens": lambda: plot_logit_lens(torch.rand(5, 16), [words[:16]] * 5, words[:16]),
    }
    for name, draw in drawings.items():
        fig = draw()
        width = fig.get_figwidth()
        small = sorted(
            {
                (t.get_text(), t.get_fontsize())
                for t in _texts_of(fig)
                if t.get_fontsize() < FONT_SIZE
            }
        )
        plt.close(fig)
        assert width <= COLUMN_INCHES, f"{name}: {width:.2f} in is wider than the column"
        assert not small, f"{name}: text smaller than {FONT_SIZE} pt: {small[:3]}"
