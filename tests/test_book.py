"""The book builds with Jupyter Book 1.x, Sphinx warnings treated as errors (the same command
as `make book`)."""

import pytest
import yaml


@pytest.mark.slow
def test_book_builds_without_warnings(built_book, root):
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for page in pages + ["search", "index"]:
        assert (built_book / f"{page}.html").exists(), f"{page}.html was not built"
    for page in pages:
        if page.startswith("chapters/"):
            assert "colab.research.google.com" in (built_book / f"{page}.html").read_text(), (
                f"{page} has no Colab launch button"
            )
