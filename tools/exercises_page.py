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


def chapter_exercises(nb_path: Path) -> tuple[str, list[tuple[str, str]]]:
    cells = [c for c in json.loads(nb_path.read_text())["cells"] if c["cell_type"] == "markdown"]
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
            found.append((m.group(1), " ".join(body.split())))
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
