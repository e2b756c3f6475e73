"""Fit the code cells of chapter twins to the rendered code column (STYLE.md, "Layout on the page").

    .venv/bin/python tools/fit_code.py chapters/ch03_attention.py [more.py ...]   # rewrite
    .venv/bin/python tools/fit_code.py --check chapters/*.py   # only list the lines still too long

Works on the py:percent twins, never on the notebooks: each code cell that has a line longer than
`WIDTH` characters (`FOLDED_WIDTH` in a folded solution cell) is run through `ruff format` at that
width (cells that already fit are left exactly as written), and in it each comment block with a
line that is too long is re-wrapped to the width. Markdown cells stay byte for byte. What a
formatter cannot shorten (a long string, a long inline comment after code) is listed with
chapter, cell and line, to be fitted by hand. Then carry the twins into the notebooks, keeping
their outputs:

    .venv/bin/jupytext --update --to ipynb chapters/ch03_attention.py

and run `pytest tests/test_code_width.py`. The cell numbers printed are those of the notebook's
code cells, counted from 1 (the test names cells the same way).
"""

import argparse
import ast
import io
import re
import subprocess
import sys
import textwrap
import tokenize
from pathlib import Path

from fit_strings import parenthesize_long_string, split_long_strings

BIN = Path(sys.executable).parent
# Characters per code line (STYLE.md says how they were measured; tests/test_code_width.py reads
# them here): an ordinary cell, and a cell tagged hide-cell (a folded solution, drawn narrower).
WIDTH = 77
FOLDED_WIDTH = 72
CELL = re.compile(r"^# %%(.*)$")
COMMENT = re.compile(r"^(\s*)# ?(.*)$")
LAID_OUT = re.compile(r"^(\s|[-*|]|\d+[.)] )")  # a list item, a table row, an indented line


def split_cells(text: str) -> list[tuple[str | None, list[str]]]:
    """The twin as (header line or None for the text before the first cell, body lines)."""
    cells: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in text.split("\n"):
        if CELL.match(line):
            cells.append((line, []))
        else:
            cells[-1][1].append(line)
    return cells


def is_code(header: str | None) -> bool:
    return header is not None and not re.match(r"^# %% \[(markdown|md|raw)\]", header)


def width_of(tags, width: int = WIDTH) -> int:
    """The limit for a code cell with these tags (a header line or a list): a folded solution
    cell (tag hide-cell) is `WIDTH - FOLDED_WIDTH` narrower on the page."""
    return width - (WIDTH - FOLDED_WIDTH) if "hide-cell" in tags else width


def ruff_format(code: str, width: int, line: int) -> str:
    """`code` with the statement that holds line `line` (from 1) formatted by ruff at `width`,
    every other statement left as written (ruff's own defaults, not the repo's config)."""
    ruff = BIN / "ruff" if (BIN / "ruff").exists() else "ruff"
    done = subprocess.run(
        [str(ruff), "format", "--isolated", "--line-length", str(width),
         "--range", f"{line}:1-{line}:{len(code.split(chr(10))[line - 1]) + 1}", "-"],
        input=code, capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise ValueError(f"ruff could not format this cell ({done.stderr.strip()}):\n{code}")
    return done.stdout


def wrap_comment(text: str, indent: str, width: int) -> list[str]:
    """`text` as comment lines of at most `width` characters (where its words allow), never
    breaking inside `code in backticks`."""
    prefix = indent + "# "
    glued = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", "\0"), text)
    lines = textwrap.wrap(glued, width=width, initial_indent=prefix, subsequent_indent=prefix,
                          break_long_words=False, break_on_hyphens=False)
    return [line.replace("\0", " ") for line in lines] or [prefix.rstrip()]


def rewrap_comments(lines: list[str], width: int) -> list[str]:
    """Re-wrap each run of whole-line comments (same indent) that has a line over `width`.

    Lines that look laid out on purpose (a list item, an indented continuation, a table row)
    start a run of their own rather than being folded into the one before."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = COMMENT.match(lines[i])
        if not m or not m.group(2).strip():
            out.append(lines[i])
            i += 1
            continue
        indent, j = m.group(1), i + 1
        while j < len(lines):
            mj = COMMENT.match(lines[j])
            if not mj or mj.group(1) != indent or not mj.group(2).strip():
                break
            if LAID_OUT.match(mj.group(2)):
                break
            j += 1
        block = lines[i:j]
        if max(len(line) for line in block) <= width:
            out.extend(block)
        else:
            text = " ".join(COMMENT.match(line).group(2).strip() for line in block)
            out.extend(wrap_comment(text, indent, width))
        i = j
    return out


NOT_CODE = (tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)


def trailing_comments(code: str) -> dict[int, tuple[int, int]]:
    """{line index: (column of its trailing comment, index of the first line of its statement)}
    for each line that has code and then a comment."""
    found, start, seen_code = {}, None, set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            row = tok.start[0] - 1
            if tok.type == tokenize.COMMENT:
                if row in seen_code:
                    found[row] = (tok.start[1], start)
            elif tok.type == tokenize.NEWLINE:
                start = None  # the statement ends here
            elif tok.type not in NOT_CODE:
                seen_code.add(row)
                start = row if start is None else start
    except (tokenize.TokenError, SyntaxError):
        return {}
    return found


def lift_comments(lines: list[str], width: int) -> list[str]:
    """A line over `width` that ends in a comment: the comment goes on lines of its own above the
    line (above the whole statement when only closing brackets are left before it; as the first
    line of the block for an `except`, `elif` or `else` line)."""
    comments = trailing_comments("\n".join(lines) + "\n")
    out = list(lines)
    for row in sorted(comments, reverse=True):
        line = lines[row]
        if len(line) <= width:
            continue
        col, first = comments[row]
        code_part, text = line[:col].rstrip(), line[col:].lstrip("#").strip()
        at = first if re.fullmatch(r"\s*[)\]}]+[,:]?", code_part) else row
        indent = re.match(r"\s*", lines[at]).group(0)
        out[row] = code_part
        if BRANCH.match(code_part) and code_part.endswith(":"):  # into the branch it names
            out[row + 1 : row + 1] = wrap_comment(text, indent + "    ", width)
        else:
            out[at:at] = wrap_comment(text, indent, width)
    return out


BRANCH = re.compile(r"\s*(except|elif|else|finally|case)\b")


def long_code_rows(lines: list[str], width: int) -> list[int]:
    return [k for k, line in enumerate(lines) if len(line) > width and not COMMENT.match(line)]


def fit_cell(body: list[str], width: int) -> list[str]:
    """A code cell's lines (with its trailing blank lines) fitted to `width` where a tool can:
    long comments re-wrapped or lifted above their line, then each statement that still has a
    long line formatted by ruff. Statements that fit are left exactly as written."""
    n = len(body)
    while n and not body[n - 1].strip():
        n -= 1
    code, tail = body[:n], body[n:]
    if max((len(line) for line in code), default=0) <= width:
        return body
    code = rewrap_comments(lift_comments(code, width), width)
    formatted: set[str] = set()  # each long line goes to ruff once, then to parentheses once
    parenthesized: set[str] = set()
    while rows := [r for r in long_code_rows(code, width) if code[r] not in parenthesized]:
        if fresh := [r for r in rows if code[r] not in formatted]:
            formatted.add(code[fresh[-1]])
            code = ruff_format("\n".join(code) + "\n", width, fresh[-1] + 1)
            code = code.rstrip("\n").split("\n")
        else:
            parenthesized.add(code[rows[-1]])
            code = parenthesize_long_string(code, rows[-1])
        code = split_long_strings(code, width)
        code = rewrap_comments(lift_comments(code, width), width)
    if same_program("\n".join(body[:n]), "\n".join(code)) is False:
        raise ValueError("fitting changed what this cell computes:\n" + "\n".join(body[:n]))
    return code + tail


def same_program(before: str, after: str) -> bool | None:
    """Whether two versions of a cell parse to the same syntax tree, up to the line breaks of
    docstrings (None: `before` does not parse; such a cell is checked by nobody)."""
    try:
        tree = docstrings_collapsed(ast.parse(before))
    except SyntaxError:
        return None
    return tree == docstrings_collapsed(ast.parse(after))


def docstrings_collapsed(tree: ast.AST) -> str:
    """The tree's dump with the whitespace of every string statement (a docstring) collapsed:
    re-wrapping a docstring changes no program."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str):
                node.value.value = " ".join(node.value.value.split())
    return ast.dump(tree)


def too_long(path: Path, width: int) -> list[str]:
    """'chapter cell N line L (K chars): text' for each code line still over `width`."""
    found, number = [], 0
    for header, body in split_cells(path.read_text(encoding="utf-8")):
        if not is_code(header):
            continue
        number += 1
        limit = width_of(header, width)
        for k, line in enumerate(body, 1):
            if len(line) > limit:
                found.append(f"{path.stem} cell {number} line {k} ({len(line)} chars): {line}")
    return found


def fit_twin(path: Path, width: int) -> int:
    """Rewrite `path` with its code cells fitted; return how many cells changed."""
    changed, parts = 0, []
    for header, body in split_cells(path.read_text(encoding="utf-8")):
        new = fit_cell(body, width_of(header, width)) if is_code(header) else body
        changed += new != body
        parts.append(([header] if header is not None else []) + new)
    path.write_text("\n".join(line for part in parts for line in part), encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("twins", nargs="+", type=Path, help="chapters/chNN_*.py twins")
    parser.add_argument("--width", type=int, default=WIDTH, help="(folded cells: 5 fewer)")
    parser.add_argument("--check", action="store_true", help="list long lines, change nothing")
    args = parser.parse_args(argv)
    left = []
    for path in args.twins:
        if path.suffix != ".py":
            parser.error(f"{path} is not a py:percent twin; pass chapters/chNN_*.py")
        if not args.check:
            print(f"{path}: {fit_twin(path, args.width)} code cells reformatted")
        left += too_long(path, args.width)
    print("\n".join(left) or f"every code line fits ({args.width} characters, folded cells fewer)")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
