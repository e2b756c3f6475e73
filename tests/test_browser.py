"""The rendered book in a real browser: Debian's chromium, driven by playwright-core
(tests/browser/).

Every page of the table of contents loads and has its title; images load; math is typeset; chapter
pages show code cells and outputs and a Colab button that opens their own notebook; internal links
and anchors resolve; bertviz views draw their attention lines; the search page finds a chapter term;
the explorers of Chapters 7 and 9 (``helpers.page_explorers``) answer their controls on the page
opened from disk.
The CDN scripts the book loads (MathJax; require.js, d3 and jQuery for bertviz; the ipywidgets HTML
manager) are served from npm packages, so the test needs no network. A screenshot of each chapter's
first screen is written to ``_build/screenshots/`` for review, with the browser's report
(``report.json``).

Readers without node or chromium get a skip with the reason; CI sets BOOK_REQUIRE_BROWSER=1, which
turns that skip into a failure.
"""

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BROWSER_DIR = ROOT / "tests" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# the pages with explorers that need no kernel (helpers.page_explorers), and their kinds
EXPLORERS = {
    "chapters/ch07_decoding.html": {"decoding"},
    "chapters/ch09_visualization.html": {"attention", "embedding"},
}


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output readable
        pass


def title_of(page: str) -> str:
    """The first level-1 heading of a page of the book (markdown file or notebook)."""
    md, nb = ROOT / f"{page}.md", ROOT / f"{page}.ipynb"
    if md.exists():
        lines = md.read_text().splitlines()
    else:
        cell = next(c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "markdown")
        lines = "".join(cell["source"]).splitlines()
    return next(line[2:].strip() for line in lines if line.startswith("# "))


def missing_tools() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if CHROMIUM is None:
        return "chromium is not installed (Debian: apt-get install chromium)"
    if not (BROWSER_DIR / "node_modules" / "playwright-core").exists():
        return (
            "the npm packages of tests/browser are not installed (make test installs them "
            "when npm is present)"
        )
    return None


@pytest.fixture(scope="module")
def report(built_book, tmp_path_factory):
    reason = missing_tools()
    if reason:
        if os.environ.get("BOOK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"the browser test cannot run: {reason}")
        pytest.skip(f"browser test skipped: {reason}")
    handler = functools.partial(QuietHandler, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    screenshots = ROOT / "_build" / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    plan = {
        "base": f"http://127.0.0.1:{server.server_address[1]}/",
        "chromium": CHROMIUM,
        "screenshots": str(screenshots),
        "pages": [
            {
                "path": f"{p}.html",
                "title": title_of(p),
                **({"notebook": f"{p}.ipynb"} if (ROOT / f"{p}.ipynb").exists() else {}),
            }
            for p in pages
        ],
        "search": {"term": "tokenizer", "expect": "chapters/ch01_tokenization.html"},
        # opened from disk, as a reader who saved the page would: no server behind them
        "explorers": {"base": built_book.resolve().as_uri() + "/", "pages": list(EXPLORERS)},
    }
    plan_file = tmp_path_factory.mktemp("browser") / "plan.json"
    plan_file.write_text(json.dumps(plan))
    try:
        result = subprocess.run(
            ["node", str(BROWSER_DIR / "check_book.mjs"), str(plan_file)],
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        server.shutdown()
    assert result.returncode == 0, f"the browser run failed:\n{result.stderr[-4000:]}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    (screenshots / "report.json").write_text(
        json.dumps(report, indent=1)
    )  # for review, beside the screenshots
    return report


@pytest.mark.slow
def test_every_page_renders_completely(report):
    problems = {page: r["problems"] for page, r in report["pages"].items() if r["problems"]}
    assert not problems, "pages with problems:\n" + json.dumps(problems, indent=1)


@pytest.mark.slow
def test_chapters_show_code_outputs_and_math(report):
    chapters = {p: r for p, r in report["pages"].items() if p.startswith("chapters/")}
    assert chapters
    for page, r in chapters.items():
        assert r["cells"] > 0 and r["outputs"] > 0, page
        assert r["links"] > 0, page
    assert sum(r["math"] for r in report["pages"].values()) > 0, "no page had math to check"


@pytest.mark.slow
def test_search_finds_a_chapter_term(report):
    assert report["search"]["found"], (
        f"searching {report['search']['term']!r} gave {report['search']['hits'][:5]}"
    )


@pytest.mark.slow
def test_bertviz_views_draw_in_the_visualization_chapter(report):
    """Chapter 9 shows bertviz's head view and model view; in the browser (require.js, d3 and jQuery
    served locally in place of the CDN) both must draw attention lines (a view without lines is
    reported as a page problem above)."""
    page = report["pages"]["chapters/ch09_visualization.html"]
    assert page["bertviz"] >= 2, (
        f"expected the head view and the model view, found {page['bertviz']} bertviz views"
    )
    assert not [p for p in page["problems"] if "bertviz" in p], page["problems"]


@pytest.mark.slow
def test_the_page_explorers_answer_their_controls_when_opened_from_disk(report):
    """Chapter 7's decoding explorer keeps, for each setting stored by Python, exactly the number of
    tokens helpers.sampling keeps; Chapter 9's attention explorer redraws for another layer and
    head; hovering a point of its embedding map shows the token. No kernel and no server: the pages
    are file:// URLs."""
    for page, kinds in EXPLORERS.items():
        r = report["explorers"][page]
        assert {e["kind"] for e in r["explorers"]} >= kinds, (page, r["explorers"])
        assert not r["problems"], (page, r["problems"])
        assert all(e["changed"] for e in r["explorers"]), (page, r["explorers"])
    checks = [c for e in report["explorers"]["chapters/ch07_decoding.html"]["explorers"]
              for c in e.get("checks", [])]
    assert checks and all(c["shown"] == c["kept"] for c in checks), checks
