"""Sphinx extension: the book's own page furniture, one CSS and one JS file (in static/).

- Phones and tablets: with sphinx-book-theme 1.3.0 on pydata-sphinx-theme 0.17.1, pydata's top
  header holds a second "Search Ctrl+K" box (its default `navbar_persistent`) and, hidden by the
  book theme, a second ☰ and "on this page" button. Both themes bind their handlers to
  `document.querySelector(...)`, the first, hidden copy, so the visible buttons did nothing
  (pydata-sphinx-theme #2451, sphinx-book-theme #988). _config.yml sets `navbar_persistent: []`,
  which leaves that header empty: one search box, and the visible buttons are the bound ones.
  book_pages.js also forwards clicks from any further copy to the bound one, in case a theme
  option fills the header again. tests/test_browser.py opens the drawer at 420 px.
- Long inline code breaks instead of making a page wider than a phone; the right-hand contents
  wrap long section titles.
- Each exercise's solution (a dropdown admonition followed by a `hide-cell` code cell) opens with
  one click: the code cell is moved inside the admonition, already unfolded.
- Print (and the whole-book PDF, `make pdf`): long code lines wrap, figures fit the page, folded
  solutions print open.
"""

from pathlib import Path

STATIC = Path(__file__).parent / "static"


def _add_static_path(app):
    app.config.html_static_path.append(str(STATIC))


def setup(app):
    app.connect("builder-inited", _add_static_path)
    app.add_css_file("book_pages.css")
    app.add_js_file("book_pages.js")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
