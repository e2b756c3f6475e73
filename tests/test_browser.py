"""The rendered book in a real browser: Debian's chromium, driven by playwright-core
(tests/browser/).

Every page of the table of contents loads and has its title; images load; math is typeset; chapter
pages show code cells and outputs and a Colab button that opens their own notebook; internal links
and anchors resolve; bertviz views draw their attention lines; the search page finds a chapter term.
The page furniture: one search box, a favicon, the home page's chapter links, "Start with
Chapter 1" and the PDF link, solutions that open in one click. At phone width (420 px) no page
is wider than the screen and the ☰ opens a drawer with every chapter. With every outside request
blocked the pages still work, except the features book/running.md says need the CDN. The whole-book
PDF (`make pdf`, tools/print_book.mjs) holds every chapter's title, every figure and typeset math.
The explorers of Chapters 8 and 10 (``helpers.page_explorers``) answer their controls on the page
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
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BROWSER_DIR = ROOT / "tests" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PHONE_WIDTH = 420
# What needs the CDN, as book/running.md says (its "Offline" section): the offline check allows
# exactly these to fail when every outside request is blocked.
NEEDS_CDN = {"math": "MathJax", "bertviz": "bertviz"}
# the pages with explorers that need no kernel (helpers.page_explorers), and their kinds
EXPLORERS = {
    "chapters/ch08_decoding.html": {"decoding"},
    "chapters/ch10_visualization.html": {"attention", "embedding"},
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


def skip_unless_ready(reason: str | None) -> None:
    if reason:
        if os.environ.get("BOOK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"the browser test cannot run: {reason}")
        pytest.skip(f"browser test skipped: {reason}")


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


@pytest.fixture(scope="module")
def book_pdf(built_book) -> Path:
    """The whole-book PDF as `make pdf` makes it (the single-page build printed by chromium),
    written beside the HTML pages where the home page links it. Returns its path; the list of
    what went into it is beside it (book.json)."""
    skip_unless_ready(missing_tools())
    out = built_book.parents[1]  # the --path-output of the HTML build: its doctrees are reused
    jb = Path(sys.executable).parent / "jupyter-book"
    single = subprocess.run(
        [
            str(jb),
            "build",
            str(ROOT),
            "--path-output",
            str(out),
            "--builder",
            "singlehtml",
            "--warningiserror",
            "--nitpick",
            "--keep-going",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert single.returncode == 0, f"the single-page build failed:\n{single.stdout[-4000:]}"
    pdf = built_book / "book.pdf"
    printed = subprocess.run(
        [
            "node",
            str(ROOT / "tools" / "print_book.mjs"),
            str(out / "_build" / "singlehtml"),
            str(pdf),
            CHROMIUM,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert printed.returncode == 0, f"printing the PDF failed:\n{printed.stderr[-4000:]}"
    return pdf


@pytest.fixture(scope="module")
def report(built_book, book_pdf, tmp_path_factory):
    skip_unless_ready(missing_tools())
    handler = functools.partial(QuietHandler, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    screenshots = ROOT / "_build" / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    pages = toc_pages()
    chapters = [p for p in pages if p.startswith("chapters/")]
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
        "furniture": {
            "home": f"{pages[0]}.html",
            "chapters": len(chapters),
            "first": f"{chapters[0]}.html",
            "solutions": "chapters/ch03_attention.html",
        },
        "mobile": {
            "width": PHONE_WIDTH,
            "drawerPage": "chapters/ch03_attention.html",
            "chapters": [title_of(p) for p in pages[1:]],
            "screenshot": "chapters/ch03_attention.html",
        },
        "offline": {"needsCdn": sorted(NEEDS_CDN), "screenshot": "chapters/ch03_attention.html"},
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
    """Chapter 10 shows bertviz's head view and model view; in the browser (require.js, d3 and
    jQuery served locally in place of the CDN) both must draw attention lines (a view without
    lines is reported as a page problem above)."""
    page = report["pages"]["chapters/ch10_visualization.html"]
    assert page["bertviz"] >= 2, (
        f"expected the head view and the model view, found {page['bertviz']} bertviz views"
    )
    assert not [p for p in page["problems"] if "bertviz" in p], page["problems"]


@pytest.mark.slow
def test_page_furniture(report):
    """One search box (no duplicated top strip), a favicon, the home page's chapter table links
    every chapter, "Start with Chapter 1" and the PDF link work, a solution opens in one click."""
    assert not report["furniture"]["problems"], report["furniture"]


@pytest.mark.slow
def test_phones_can_navigate_and_nothing_scrolls_sideways(report):
    """At 420 px (a phone) the ☰ opens the drawer with every page's title, "on this page" opens
    the page's contents, and no page's document is wider than the screen."""
    mobile = report["mobile"]
    assert mobile["drawer"], "the ☰ button opened no drawer"
    assert not mobile["problems"], "\n".join(mobile["problems"])


@pytest.mark.slow
def test_pages_work_offline_except_what_needs_the_cdn(report, root):
    """Every outside request blocked: each page still loads with its title and its own images;
    what fails is only what book/running.md lists as needing the CDN (NEEDS_CDN)."""
    offline = report["offline"]
    assert not offline["problems"], "\n".join(offline["problems"])
    failing = {need for r in offline["pages"].values() for need in r["needs"]}
    assert failing <= set(NEEDS_CDN), failing
    running = (root / "book" / "running.md").read_text()
    section = running[running.index("## Offline") :]
    section = section[: section.find("\n## ", 4) if "\n## " in section[4:] else None]
    for need, name in NEEDS_CDN.items():
        assert name in section, (
            f"book/running.md's Offline section does not say {name} needs the CDN"
        )


@pytest.mark.slow
def test_the_pdf_holds_every_chapter_figure_and_formula(book_pdf):
    """The whole-book PDF: every page of the table of contents is in it (each title in the PDF's
    text), every figure of the single-page build loaded, every formula was typeset."""
    pdftotext = shutil.which("pdftotext")
    skip_unless_ready(None if pdftotext else "pdftotext is not installed (Debian: poppler-utils)")
    contents = json.loads(book_pdf.with_suffix(".json").read_text())
    assert not contents["brokenImages"], contents["brokenImages"]
    assert contents["figures"] >= 1 and contents["typeset"] >= contents["formulas"], contents
    text = subprocess.run(
        [pdftotext, str(book_pdf), "-"], capture_output=True, text=True, check=True
    ).stdout

    def plain(t: str) -> str:
        t = t.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"')
        return re.sub(r"\s+", " ", t.replace("\u201d", '"'))

    missing = [t for t in map(title_of, toc_pages()) if plain(t) not in plain(text)]
    assert not missing, f"titles missing from the PDF: {missing}"
    assert len(contents["documents"]) == len(toc_pages()) - 1, contents["documents"]


@pytest.mark.slow
def test_the_page_explorers_answer_their_controls_when_opened_from_disk(report):
    """Chapter 8's decoding explorer keeps, for each setting stored by Python, exactly the number of
    tokens helpers.sampling keeps; Chapter 10's attention explorer redraws for another layer and
    head; hovering a point of its embedding map shows the token. No kernel and no server: the pages
    are file:// URLs."""
    for page, kinds in EXPLORERS.items():
        r = report["explorers"][page]
        assert {e["kind"] for e in r["explorers"]} >= kinds, (page, r["explorers"])
        assert not r["problems"], (page, r["problems"])
        assert all(e["changed"] for e in r["explorers"]), (page, r["explorers"])
    checks = [c for e in report["explorers"]["chapters/ch08_decoding.html"]["explorers"]
              for c in e.get("checks", [])]
    assert checks and all(c["shown"] == c["kept"] for c in checks), checks
