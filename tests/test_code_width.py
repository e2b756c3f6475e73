"""Code that the book shows fits the rendered code column without scrolling sideways.

The limits, `tools/fit_code.py`'s `WIDTH` characters per line (`FOLDED_WIDTH` in a cell tagged
hide-cell, a folded solution, which the page draws narrower), and how they were measured are in
STYLE.md ("Layout on the page"). Checked: every line of every code cell of chapters/*.ipynb, and
every line of the helpers' code that the book's pages show through `literalinclude` (with
`:pyobject:`, the one function or class; without, the whole file), and every line of a fenced code
block (```python, ```bash...) in the chapters' markdown and the book's pages.
`tools/fit_code.py` fits a chapter's twin, `tools/fit_included.py` the helpers that pages show.
"""

import ast
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
try:
    from fit_code import WIDTH, fit_cell, same_program, width_of
finally:
    sys.path.pop(0)
CHAPTERS = sorted((ROOT / "chapters").glob("ch*.ipynb"))
INCLUDE = re.compile(r"```\{literalinclude\} (\S+)\n((?::[\w-]+:.*\n)*)```")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([^`\n]*)$")
FIX = "fit it with tools/fit_code.py or by hand (STYLE.md, 'Layout on the page')"


def long_lines(lines, where, limit=WIDTH, first=1):
    return [
        f"{where} line {k} ({len(line)} > {limit} chars): {line.strip()[:50]}"
        for k, line in enumerate(lines, first)
        if len(line) > limit
    ]


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_code_lines_fit_the_column(nb_path):
    cells = [c for c in json.loads(nb_path.read_text())["cells"] if c["cell_type"] == "code"]
    found = []
    for number, cell in enumerate(cells, 1):
        limit = width_of(cell.get("metadata", {}).get("tags", []))
        lines = "".join(cell["source"]).split("\n")
        found += long_lines(lines, f"{nb_path.stem} code cell {number}", limit)
    assert not found, (
        f"{len(found)} code lines scroll sideways on the page; {FIX}:\n" + "\n".join(found)
    )


def pyobject_lines(path: Path, name: str) -> tuple[int, list[str]]:
    """The number of the first line of `name` (e.g. `KVCache.update`) in `path` and its lines, as
    Sphinx's :pyobject: shows them: from its first decorator or `def`/`class` line to its last."""
    lines = path.read_text(encoding="utf-8").splitlines()
    body = ast.parse("\n".join(lines)).body
    for part in name.split("."):
        node = next(
            (n for n in body if getattr(n, "name", None) == part),
            None,
        )
        assert node is not None, f"{path.name} has no {name} (a literalinclude names it)"
        body = getattr(node, "body", [])
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return start, lines[start - 1 : node.end_lineno]


def shown_helpers():
    """(page, file, object or None) for every literalinclude of the book's pages."""
    for page in sorted((ROOT / "book").rglob("*.md")):
        for target, options in INCLUDE.findall(page.read_text(encoding="utf-8")):
            obj = re.search(r":pyobject:\s*(\S+)", options)
            yield page, (page.parent / target).resolve(), obj.group(1) if obj else None


def test_there_are_shown_helpers():
    assert list(shown_helpers()), "no literalinclude found in book/: has the syntax changed?"


def test_code_the_pages_include_fits_the_column():
    found = []
    for page, path, obj in shown_helpers():
        if obj:
            first, lines = pyobject_lines(path, obj)
        else:
            first, lines = 1, path.read_text(encoding="utf-8").splitlines()
        where = f"{page.relative_to(ROOT)} shows {path.relative_to(ROOT)}"
        found += long_lines(lines, where + (f" ({obj})" if obj else ""), first=first)
    assert not found, (
        f"{len(found)} lines that the book's pages show are longer than {WIDTH} characters; "
        f"{FIX}:\n" + "\n".join(found)
    )


def fenced_code(text: str):
    """(first line number, lines) of each fenced code block in markdown `text`; the fences of
    MyST directives (```{admonition}, ```{figure}...) hold prose and are skipped."""
    lines, k = text.split("\n"), 0
    while k < len(lines):
        m = FENCE.match(lines[k])
        if not m:
            k += 1
            continue
        fence, info = m.group(1), m.group(2).strip()
        end = k + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        if not info.startswith("{") or info.startswith(("{code-block}", "{code}")):
            yield k + 2, lines[k + 1 : end]
        k = end + 1


def test_code_blocks_in_the_prose_fit_the_column():
    found = []
    for nb_path in CHAPTERS:
        for number, cell in enumerate(json.loads(nb_path.read_text())["cells"], 1):
            if cell["cell_type"] == "markdown":
                for first, lines in fenced_code("".join(cell["source"])):
                    where = f"{nb_path.stem} cell {number} (markdown)"
                    found += long_lines(lines, where, first=first)
    for page in sorted((ROOT / "book").glob("*.md")):
        for first, lines in fenced_code(page.read_text(encoding="utf-8")):
            found += long_lines(lines, str(page.relative_to(ROOT)), first=first)
    assert not found, (
        f"{len(found)} lines of code blocks in the prose scroll sideways; wrap them by hand "
        f"(STYLE.md, 'Layout on the page'):\n" + "\n".join(found)
    )


def test_fit_code_fits_a_cell_without_changing_its_program():
    """tools/fit_code.py on a cell with each kind of long line it knows: a call, a trailing
    comment, a long f-string, a comment block; short statements stay exactly as written."""
    cell = [
        "x = {'a':1}  # short, as written",
        "total = some_function(first_argument, second_argument, third_argument, 4)",
        "y = torch.softmax(scores, dim=-1)  # (B, T, T): every row sums to one, always",
        'print(f"the value of x is {x!r} and of total {total:.3f}; both printed here")',
        "# a comment block long enough that it has to be wrapped onto a second line, to fit",
        "",
    ]
    fitted = fit_cell(cell, 40)
    assert fitted[0] == cell[0] and fitted[-1] == ""
    assert max(map(len, fitted)) <= 40, "\n".join(fitted)
    assert same_program("\n".join(cell), "\n".join(fitted))
