"""Long string literals cut into pieces that Python joins back (implicit concatenation), for
`tools/fit_code.py`: the same string, on lines that fit the code column."""

import io
import re
import tokenize


def split_string(literal: str, room: int) -> list[str] | None:
    """A one-line string literal cut at spaces into pieces of at most `room` characters, to be
    written one per line (implicit concatenation: the same string). None if it cannot be cut:
    a triple-quoted or bytes string, or no space outside an f-string's replacement fields."""
    m = re.fullmatch(r"([rRfFuU]{0,2})(['\"])(.*)\2", literal, flags=re.S)
    if not m or "b" in m.group(1).lower() or literal.endswith(m.group(2) * 3):
        return None
    prefix, quote, body = m.groups()
    is_f = "f" in prefix.lower()
    cuts, depth, k = [], 0, 0  # cuts: positions in body just after a space outside {...}
    while k < len(body):
        c = body[k]
        if is_f and c in "{}" and body[k : k + 2] == c * 2 and depth == 0:
            k += 2
            continue
        if c == "\\" and "r" not in prefix.lower():
            k += 2
            continue
        depth += is_f and c == "{"
        depth -= is_f and c == "}" and depth > 0
        if c == " " and depth == 0:
            cuts.append(k + 1)
        k += 1
    pieces, start, last = [], 0, 0
    overhead = len(prefix) + 2
    for cut in cuts + [len(body)]:
        if cut - start + overhead > room and last > start:
            pieces.append(body[start:last])
            start = last
        last = cut
    pieces.append(body[start:])
    if len(pieces) < 2:
        return None

    plain = re.sub("[fF]", "", prefix)  # a piece without replacement fields needs no f
    return [
        (prefix if not is_f or "{" in p or "}" in p else plain) + quote + p + quote
        for p in pieces
    ]


def split_long_strings(lines: list[str], width: int) -> list[str]:
    """Each line over `width` that is one string literal inside brackets (after an optional
    trailing comma) becomes several literals, one per line: Python joins them back. The lone
    literals on the lines next to it are cut afresh with it, so that no short piece is left."""
    code = "\n".join(lines) + "\n"
    lone, depth = {}, 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.OP and tok.string in "([{":
                depth += 1
            elif tok.type == tokenize.OP and tok.string in ")]}":
                depth -= 1
            elif tok.type == tokenize.STRING and depth > 0 and tok.start[0] == tok.end[0]:
                row = tok.start[0] - 1
                rest = lines[row][tok.end[1] :].strip()
                if lines[row][: tok.start[1]].strip() == "" and rest in ("", ","):
                    lone[row] = (tok.start[1], tok.string, rest)
    except (tokenize.TokenError, SyntaxError):
        return lines
    out = list(lines)
    for run in reversed(runs_of(lone)):
        if max(len(lines[row]) for row in run) <= width:
            continue
        col, rest = lone[run[0]][0], lone[run[-1]][2]
        literal = merge_literals([lone[row][1] for row in run])
        pieces = split_string(literal, width - col - len(rest)) if literal else None
        if pieces and max(map(len, pieces)) <= width - col - len(rest):
            pieces[-1] += rest
            out[run[0] : run[-1] + 1] = [" " * col + piece for piece in pieces]
    return out


def runs_of(lone: dict[int, tuple[int, str, str]]) -> list[list[int]]:
    """The rows of `lone` grouped into runs on consecutive lines at one indentation, no comma
    between them: the pieces of one implicit concatenation."""
    runs: list[list[int]] = []
    for row in sorted(lone):
        prev = lone.get(row - 1)
        if runs and runs[-1][-1] == row - 1 and prev[2] == "" and prev[0] == lone[row][0]:
            runs[-1].append(row)
        else:
            runs.append([row])
    return runs


def merge_literals(literals: list[str]) -> str | None:
    """Adjacent string literals as one (an f-string if any of them is one), or None when they
    do not mix simply (raw or bytes strings, different quotes)."""
    parts = [re.fullmatch(r"([fFuU]?)(['\"])(.*)\2", lit, flags=re.S) for lit in literals]
    if not all(parts) or len({m.group(2) for m in parts}) > 1:
        return None
    if not any(m.group(1).lower() == "f" for m in parts):
        return parts[0].group(2) + "".join(m.group(3) for m in parts) + parts[0].group(2)
    body = "".join(
        m.group(3) if m.group(1).lower() == "f"
        else m.group(3).replace("{", "{{").replace("}", "}}")
        for m in parts
    )
    return "f" + parts[0].group(2) + body + parts[0].group(2)


def parenthesize_long_string(lines: list[str], row: int) -> list[str]:
    """Line `row` with its longest one-line string literal moved into parentheses on a line of its
    own, where `split_long_strings` can cut it. Left alone: a docstring or other string statement,
    and a piece of an implicit concatenation (a string next to another string)."""
    code = "\n".join(lines) + "\n"
    try:
        toks = [t for t in tokenize.generate_tokens(io.StringIO(code).readline)
                if t.type not in (tokenize.NL, tokenize.COMMENT)]
    except (tokenize.TokenError, SyntaxError):
        return lines
    best = None
    for k, tok in enumerate(toks[1:-1], 1):
        before, after = toks[k - 1], toks[k + 1]
        if tok.type != tokenize.STRING or tok.start[0] - 1 != row or tok.start[0] != tok.end[0]:
            continue
        if before.type in STATEMENT_START or tokenize.STRING in (before.type, after.type):
            continue
        if best is None or len(tok.string) > len(best.string):
            best = tok
    if best is None:
        return lines
    line, (a, b) = lines[row], (best.start[1], best.end[1])
    indent = re.match(r"\s*", line).group(0)
    moved = [line[:a] + "(", indent + "    " + line[a:b], indent + ")" + line[b:]]
    return lines[:row] + moved + lines[row + 1 :]


STATEMENT_START = (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
