"""Every figure of the book fits the page column, so the page shows it at its natural size and no
label is shrunk below legibility.

The rendered column is about 784 px wide. A matplotlib figure is stored in its chapter as a retina
PNG (``set_matplotlib_formats("retina")``): twice the pixels, and a ``width`` in the output's
metadata that the page uses as its displayed width. The hand-drawn pictures are SVG files in
``book/figures/``, drawn in a ``viewBox`` no wider than the column with text of at least 12 px
(9 pt).
"""

import base64
import json
import re
import struct
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("ch*.ipynb"))
SVGS = sorted((ROOT / "book" / "figures").glob("*.svg"))
COLUMN_PX = 784
SMALLEST_SVG_FONT_PX = 12


def stored_pngs(nb_path):
    """(cell number, pixel width, displayed width) of each PNG stored in a notebook."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    for number, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png is None:
                continue
            raw = base64.b64decode(png)
            assert raw[:8] == b"\x89PNG\r\n\x1a\n", f"cell {number}: not a PNG"
            pixels = struct.unpack(">I", raw[16:20])[0]  # the IHDR chunk's width
            shown = output.get("metadata", {}).get("image/png", {}).get("width", pixels)
            yield number, pixels, int(shown)


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_stored_figures_fit_the_column_and_are_retina(nb_path):
    for number, pixels, shown in stored_pngs(nb_path):
        assert shown <= COLUMN_PX, (
            f"{nb_path.name}, cell {number}: a figure {shown} px wide is shrunk by the "
            f"{COLUMN_PX}-px column; make it at most helpers.viz.COLUMN_INCHES wide."
        )
        assert pixels >= 2 * shown - 2, (
            f"{nb_path.name}, cell {number}: {pixels} px stored for {shown} px shown is blurry "
            f'on high-resolution screens; call set_matplotlib_formats("retina") in the chapter.'
        )


def svg_width(text):
    view_box = re.search(r'viewBox="([-\d.\s]+)"', text)
    assert view_box, "an SVG figure needs a viewBox"
    return float(view_box.group(1).split()[2])


def test_there_are_svg_figures():
    assert len(SVGS) >= 6


@pytest.mark.parametrize("svg", SVGS, ids=lambda p: p.stem)
def test_svg_figures_fit_the_column_with_legible_text(svg):
    text = svg.read_text(encoding="utf-8")
    assert svg_width(text) <= COLUMN_PX
    sizes = [float(s) for s in re.findall(r'font-size[=:]\s*"?([\d.]+)', text)]
    assert sizes, f"{svg.name}: give the text an explicit font-size"
    assert min(sizes) >= SMALLEST_SVG_FONT_PX, f"{svg.name}: text of {min(sizes)} px"
    assert "<title>" in text, f"{svg.name}: needs a <title> for screen readers"


@pytest.mark.parametrize("svg", SVGS, ids=lambda p: p.stem)
def test_every_svg_figure_is_shown_by_a_chapter(svg):
    twins = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "chapters").glob("ch*.py"))
    assert f"../book/figures/{svg.name}" in twins
