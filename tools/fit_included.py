"""Fit the helpers' code that the book's pages show to the code column (STYLE.md, "Layout on the
page"): every function or class that a page of book/ includes with `literalinclude` and
`:pyobject:`.

    .venv/bin/python tools/fit_included.py           # rewrite those objects in helpers/
    .venv/bin/python tools/fit_included.py --check   # only list the lines still too long

Each object with a line longer than `fit_code.WIDTH` (as the page shows it, indentation included)
goes through `fit_code.fit_cell` (ruff on the long statements, comments lifted or re-wrapped, long
strings cut), after its docstring paragraphs are re-wrapped to the width. Nothing else in the
module changes. `ruff format` at the repository's 100 characters would join some of these lines
again: tests/test_code_width.py then names them.
"""

import argparse
import ast
import io
import re
import sys
import textwrap
import tokenize
from pathlib import Path

from fit_code import WIDTH, fit_cell

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = re.compile(r"```\{literalinclude\} (\S+)\n((?::[\w-]+:.*\n)*)```")
LAID_OUT = re.compile(r"^\s*([-*]|\d+[.)]|>>>|\.\. )")


def included_objects() -> list[tuple[Path, str]]:
    """(file, dotted name) for every `literalinclude ... :pyobject:` of the book's pages."""
    found = []
    for page in sorted((ROOT / "book").rglob("*.md")):
        for target, options in INCLUDE.findall(page.read_text(encoding="utf-8")):
            if obj := re.search(r":pyobject:\s*(\S+)", options):
                found.append(((page.parent / target).resolve(), obj.group(1)))
    return found


def object_span(source: str, name: str) -> tuple[int, int]:
    """First and last line (from 1) of `name`, e.g. `KVCache.update`, decorators included."""
    body = ast.parse(source).body
    for part in name.split("."):
        node = next((n for n in body if getattr(n, "name", None) == part), None)
        if node is None:
            raise ValueError(f"no {name} in this module: is the literalinclude's :pyobject: right?")
        body = getattr(node, "body", [])
    return min([node.lineno] + [d.lineno for d in node.decorator_list]), node.end_lineno


def glue(text: str) -> str:
    return re.sub(r"``[^`]*``|`[^`]*`", lambda m: m.group(0).replace(" ", "\0"), text)


def rewrap_docstring(literal: str, indent: str, width: int) -> str:
    """A triple-quoted docstring with each paragraph that has a line over `width` re-wrapped;
    laid-out paragraphs (lists, examples, directives) are kept."""
    quote, body = literal[:3], literal[3:-3]
    paragraphs = re.split(r"\n[ \t]*\n", body)
    out = []
    for k, para in enumerate(paragraphs):
        lines = para.split("\n")
        first = indent + quote if k == 0 else ""
        shown = [first + lines[0]] + lines[1:]
        last = k == len(paragraphs) - 1
        closes_inline = last and not lines[-1].strip() == ""
        if last and closes_inline:
            shown[-1] += quote
        rest = lines[1:]
        if max(map(len, shown)) <= width or any(LAID_OUT.match(line) for line in rest):
            out.append(para)
            continue
        words = glue(" ".join(line.strip() for line in lines if line.strip()))
        if closes_inline:
            words += quote
        wrapped = textwrap.wrap(words, width=width, initial_indent=first or indent,
                                subsequent_indent=indent, break_long_words=False,
                                break_on_hyphens=False)
        text = "\n".join(line.replace("\0", " ") for line in wrapped)
        text = text[len(first):] if k == 0 else text
        if closes_inline:
            text = text[: -len(quote)]
        elif last:
            text += "\n" + indent
        out.append(text)
    return quote + "\n\n".join(out) + quote


def rewrap_docstrings(lines: list[str], width: int) -> list[str]:
    code = "\n".join(lines) + "\n"
    edits, statement_start = [], True
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            statement_start = True
            continue
        if tok.type in (tokenize.NL, tokenize.COMMENT):
            continue
        if statement_start and tok.type == tokenize.STRING and tok.string[:3] in ('"""', "'''"):
            edits.append(tok)
        statement_start = False
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    for tok in reversed(edits):  # from the end, so that earlier offsets stay right
        a = starts[tok.start[0] - 1] + tok.start[1]
        b = starts[tok.end[0] - 1] + tok.end[1]
        indent = lines[tok.start[0] - 1][: tok.start[1]]
        code = code[:a] + rewrap_docstring(tok.string, indent, width) + code[b:]
    return code[:-1].split("\n")


def fit_object(path: Path, name: str, width: int) -> bool:
    lines = path.read_text(encoding="utf-8").split("\n")
    start, end = object_span("\n".join(lines), name)
    block = lines[start - 1 : end]
    if max(map(len, block)) <= width:
        return False
    indent = min(len(line) - len(line.lstrip()) for line in block if line.strip())
    flat = [line[indent:] for line in block]
    fitted = fit_cell(rewrap_docstrings(flat, width - indent), width - indent)
    lines[start - 1 : end] = [(" " * indent + line) if line else line for line in fitted]
    path.write_text("\n".join(lines), encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="list long lines, change nothing")
    args = parser.parse_args(argv)
    left = []
    for path, name in included_objects():
        if not args.check and fit_object(path, name, WIDTH):
            print(f"{path.relative_to(ROOT)}: {name} fitted")
        source = path.read_text(encoding="utf-8")
        start, end = object_span(source, name)
        for k, line in enumerate(source.split("\n")[start - 1 : end], start):
            if len(line) > WIDTH:
                left.append(f"{path.relative_to(ROOT)}:{k} ({name}, {len(line)} chars): {line}")
    print("\n".join(left) or f"every included line fits in {WIDTH} characters")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
