"""Write book/exercises.md: every chapter's exercises on one page, taken from the notebooks.

.venv/bin/python tools/exercises_page.py          # rewrite the page
.venv/bin/python tools/exercises_page.py --check  # exit 1 if the page is stale (the tests do this)
"""

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "exercises.md"
EXERCISE = re.compile(r"\*\*Exercise (\d+\.\d+)\.\*\*\s*(.*)", re.S)


HOW_TO_CHECK = """\
## Checking your own answer

Every exercise whose answer is code or a value comes with a check. Under the question the
chapter has a cell that is yours, with a stub to replace (`def my_num_batches(...): raise
NotImplementedError`, or `my_counts = ...`), and a cell that checks it, for example
`check("1.2", my_num_batches)`. The check runs your answer on a few cases, the edge cases that
matter included (a tie, a sequence of one token, the last window...), and answers in one or two
sentences: *not attempted yet*; what is wrong, on which case, with a hint that points at the idea
without giving the solution; or *right*, with what it was checked on. If your code raises an
error, the check names the line of your code that raised it. The worked solution stays folded
away under the check cell until you open it.

- **In Google Colab**: open the chapter's notebook in Colab and run its first cell, the setup
  cell; it installs this book's `helpers` package, checks included. Run the chapter's cells from
  the top (the exercises use what the chapter built), then write your answer in your cell, run
  it, and run the check cell. Edit and run both again until the check says *right*.
- **Locally, in Jupyter**: with the book installed as the README says, open the chapter's
  notebook from `chapters/`, run it from the top, and use the two cells the same way.
- **Anywhere in Python**: `from helpers.check import check`; `check("1.2", my_num_batches)`
  returns a verdict whose `passed` is `True`, `False`, or `None` (not attempted yet).

Exercises marked *discussion* have an answer in words, an argument or an experiment to run and
read: they have no check, only the worked answer.
"""


def chapter_exercises(nb_path: Path) -> tuple[str, list[tuple[str, str]]]:
    """The chapter's title and its exercises, each as (number, its paragraph); the paragraph of
    an exercise without a check starts with *(discussion)* when the chapter checks the others."""
    all_cells = json.loads(nb_path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in all_cells if c["cell_type"] == "code")
    checked = set(re.findall(r"\bcheck\(\"(\d+\.\d+)\"", code))
    cells = [c for c in all_cells if c["cell_type"] == "markdown"]
    title = next(
        line[2:].strip()
        for line in "".join(cells[0]["source"]).splitlines()
        if line.startswith("# ")
    )
    found = []
    for cell in cells:
        text = "".join(cell["source"])
        for part in re.split(r"(?=\*\*Exercise \d+\.\d+\.\*\*)", text)[1:]:
            m = EXERCISE.match(part)
            body = re.split(r"\n\s*\n", m.group(2).strip())[0]  # the exercise's own paragraph
            text = " ".join(body.split())
            if checked and m.group(1) not in checked:
                text = f"*(discussion)* {text}"
            found.append((m.group(1), text))
    return title, found


def render() -> str:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters = [
        c["file"]
        for part in toc["parts"]
        for c in part["chapters"]
        if c["file"].startswith("chapters/")
    ]
    out = [
        "# All exercises",
        "",
        "Every chapter ends with exercises; each has a worked solution, folded away under it "
        "in the",
        "chapter, that runs and checks its own result whenever the book's tests run. This page "
        "lists",
        "them all. (It is generated from the chapters by `tools/exercises_page.py`.)",
        "",
        HOW_TO_CHECK,
    ]
    for file in chapters:
        title, exercises = chapter_exercises(ROOT / f"{file}.ipynb")
        out += [f"## {title}", "", f"Solutions: {{doc}}`in the chapter <../{file}>`.", ""]
        out += [f"**{number}.** {text}" + "\n" for number, text in exercises]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(
            0
            if PAGE.exists() and PAGE.read_text() == text
            else "book/exercises.md is out of date: run tools/exercises_page.py"
        )
    PAGE.write_text(text)
    print(f"wrote {PAGE.relative_to(ROOT)}")
