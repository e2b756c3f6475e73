"""The project's own promises: pinned environments agree, notebooks are paired and come from one
clean run, every chapter has its Colab setup cell, exercises and table-of-contents entry."""

import json
import re
import sys
import types
from pathlib import Path
from unittest import mock

import jupytext
import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("ch*.ipynb"))
REPO_URL = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
chapter_param = pytest.mark.parametrize("nb_path", CHAPTERS, ids=[p.stem for p in CHAPTERS])


def pins(lines):
    out = {}
    for line in lines:
        m = re.match(r"^\s*(?:-\s*)?([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_there_are_chapters():
    assert CHAPTERS, "chapters/ holds no chapter notebooks"


def test_environment_yml_pins_agree_with_requirements():
    req = pins((ROOT / "requirements.txt").read_text().splitlines())
    env_yml = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env_yml["dependencies"] if isinstance(d, dict))
    env = pins(pip_section)
    assert env, "environment.yml pins nothing"
    assert req["torch"] == env["torch"] == "2.13.0"
    mismatched = {name: (ver, req.get(name)) for name, ver in env.items() if req.get(name) != ver}
    assert not mismatched, f"environment.yml and requirements.txt disagree (env, req): {mismatched}"


def test_every_package_dependency_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    req = pins((ROOT / "requirements.txt").read_text().splitlines())
    deps = project["dependencies"] + [
        d for extra in project["optional-dependencies"].values() for d in extra
    ]
    names = {re.split(r"[<>=!~\[ ]", d)[0].lower().replace("_", "-") for d in deps}
    assert names - set(req) == set(), f"not pinned in requirements.txt: {names - set(req)}"


def test_repository_url_is_the_same_everywhere():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"] == REPO_URL
    assert REPO_URL in (ROOT / "STYLE.md").read_text()


def test_toc_lists_every_chapter_and_every_entry_exists():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for f in files:
        assert any((ROOT / f).with_suffix(s).exists() for s in (".md", ".ipynb")), (
            f"_toc.yml names a missing page: {f}"
        )
    for nb in CHAPTERS:
        assert f"chapters/{nb.stem}" in files, f"{nb.name} is not in _toc.yml"


def test_data_readme_lists_the_checksums():
    from helpers.data import THE_VERDICT_SHA256

    readme = (ROOT / "data" / "README.md").read_text()
    assert "the-verdict.txt" in readme and THE_VERDICT_SHA256 in readme


@chapter_param
def test_notebook_and_twin_are_in_sync(nb_path):
    twin = nb_path.with_suffix(".py")
    assert twin.exists(), f"{nb_path.name} has no paired {twin.name}: run `make sync`"
    expected = jupytext.writes(jupytext.read(nb_path), fmt="py:percent")
    assert twin.read_text().strip() == expected.strip(), (
        f"{twin.name} is out of sync with {nb_path.name}: run `make sync`"
    )


@chapter_param
def test_outputs_come_from_one_clean_run(nb_path):
    nb = json.loads(nb_path.read_text())
    cells = [c for c in code_cells(nb) if "".join(c["source"]).strip()]
    assert len(cells) == len(code_cells(nb)), f"{nb_path.name} has empty code cells"
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"{nb_path.name}: execution counts {counts[:5]}... are not 1..{len(cells)}: re-run it "
        f"with `make execute NB={nb_path.relative_to(ROOT)}`"
    )
    for c in cells:
        tags = c.get("metadata", {}).get("tags", [])
        for out in c["outputs"]:
            assert out["output_type"] != "error" or "raises-exception" in tags, (
                f"{nb_path.name}: a cell failed:\n{''.join(c['source'])}"
            )
            text = json.dumps(out)
            assert not re.search(r"(/work/|/root/|/home/\w+/|/tmp/)", text), (
                f"{nb_path.name}: an output shows a local path"
            )
            assert "Traceback" not in text or "raises-exception" in tags


IGNORED = tomllib.loads((ROOT / "tests" / "nbval_ignored.toml").read_text())["cell"]


@chapter_param
def test_no_nbval_comment_markers_in_chapters(nb_path):
    for cell in code_cells(json.loads(nb_path.read_text())):
        source = "".join(cell["source"])
        assert "NBVAL_" not in source and "# Why:" not in source, (
            f"{nb_path.name}: a cell shows an nbval marker to readers; tag it "
            f"`nbval-ignore-output` and list its reason in tests/nbval_ignored.toml:\n"
            f"{source[:200]}"
        )


@chapter_param
def test_every_ignored_output_is_listed_with_its_reason(nb_path):
    cells = code_cells(json.loads(nb_path.read_text()))
    entries = [e for e in IGNORED if e["chapter"] == nb_path.stem]
    listed = []
    for e in entries:
        assert e.get("reason", "").strip(), f"tests/nbval_ignored.toml: {e} gives no reason"
        hits = [i for i, c in enumerate(cells) if e["cell"] in "".join(c["source"])]
        assert len(hits) == 1, (
            f"{nb_path.name}: {e['cell']!r} is in {len(hits)} code cells, not one"
        )
        tags = cells[hits[0]].get("metadata", {}).get("tags", [])
        assert "nbval-ignore-output" in tags, (
            f"{nb_path.name}: the cell {e['cell']!r} is not tagged"
        )
        listed.append(hits[0])
    tagged = [
        i
        for i, c in enumerate(cells)
        if "nbval-ignore-output" in c.get("metadata", {}).get("tags", [])
    ]
    unlisted = ["".join(cells[i]["source"])[:80] for i in tagged if i not in listed]
    assert not unlisted, f"{nb_path.name}: tagged cells not in tests/nbval_ignored.toml: {unlisted}"


def test_nbval_ignored_list_names_existing_chapters():
    stems = {p.stem for p in CHAPTERS}
    assert {e["chapter"] for e in IGNORED} <= stems


@chapter_param
def test_progress_bars_are_stored_in_their_final_state(nb_path):
    for cell in code_cells(json.loads(nb_path.read_text())):
        for out in cell["outputs"]:
            if out["output_type"] == "stream":
                assert "\r" not in "".join(out["text"]), (
                    f"{nb_path.name}: a stored stream keeps carriage-return updates (states of a "
                    f"progress bar); re-run it with `make execute NB={nb_path.relative_to(ROOT)}`"
                )


def test_execute_keeps_what_a_terminal_shows():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import execute
    finally:
        sys.path.pop(0)
    assert execute.terminal_text("\r  0%| 0/3\r 33%| 1/3\r100%| 3/3\n") == "100%| 3/3\n"
    assert execute.terminal_text("a\r\nb\rc\r") == "a\nc"
    assert execute.terminal_text("plain\ntext") == "plain\ntext"
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "outputs": [
                    {"output_type": "stream", "name": "stderr", "text": "\r 0%"},
                    {"output_type": "stream", "name": "stderr", "text": "\r50%"},
                    {"output_type": "stream", "name": "stdout", "text": "done\n"},
                    {"output_type": "stream", "name": "stderr", "text": "\r100%\n"},
                ],
            }
        ]
    }
    execute.coalesce_streams(nb)
    assert nb["cells"][0]["outputs"] == [  # the bar's 50% state is overwritten after the print
        {"output_type": "stream", "name": "stdout", "text": "done\n"},
        {"output_type": "stream", "name": "stderr", "text": "100%\n"},
    ]


def test_execute_records_each_chapters_time_in_one_table(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import execute
    finally:
        sys.path.pop(0)
    table = tmp_path / "times.md"
    execute.record_time("ch02_b", 12.4, "cpu A, 2 cores", table)
    execute.record_time("ch01_a", 40.0, "cpu A, 2 cores", table)
    execute.record_time("ch02_b", 10.0, "cpu A, 2 cores", table)  # a re-run replaces its row
    lines = table.read_text().splitlines()
    assert lines[2:] == [
        "| `ch01_a` | 40 | cpu A, 2 cores |",
        "| `ch02_b` | 10 | cpu A, 2 cores |",
        "| all 2 | 50 | |",
    ]


def test_chapter_times_table_lists_every_chapter_from_one_processor():
    """book/running.md shows this table; it must cover the chapters that exist, measured on one
    processor (the one the stored outputs come from)."""
    text = (ROOT / "book" / "tables" / "chapter_times.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(ch\d\d_\w+)` \| [\d.]+ \| (.+) \|$", text, flags=re.M)
    assert sorted(name for name, _ in rows) == sorted(p.stem for p in CHAPTERS)
    assert len({cpu for _, cpu in rows}) == 1, "re-execute every chapter on one machine"


@chapter_param
def test_first_code_cell_installs_helpers_only_in_colab(nb_path):
    source = "".join(code_cells(json.loads(nb_path.read_text()))[0]["source"])
    assert f'REPO = "{REPO_URL}"' in source, (
        f"{nb_path.name}: the setup cell must use the address in pyproject.toml"
    )
    calls = []
    with mock.patch("subprocess.run", side_effect=lambda cmd, **kw: calls.append(cmd)):
        exec(compile(source, "setup-cell", "exec"), {})  # not in Colab: nothing happens
        assert calls == []
        with mock.patch.dict(sys.modules, {"google.colab": types.ModuleType("google.colab")}):
            exec(compile(source, "setup-cell", "exec"), {})
    assert len(calls) == 1
    cmd = calls[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"] and cmd[-1] == f"git+{REPO_URL}"
    assert not any(arg.startswith(("torch", "--upgrade", "-U")) for arg in cmd), (
        "Colab's own torch must stay"
    )


@chapter_param
def test_chapter_has_summary_and_at_least_four_exercises_with_solutions(nb_path):
    nb = json.loads(nb_path.read_text())
    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "## Summary" in markdown and "## Exercises" in markdown
    exercises = re.findall(r"\*\*Exercise (\d+\.\d+)\.\*\*", markdown)
    solutions = re.findall(r"```\{admonition\} Solution (\d+\.\d+)", markdown)
    assert len(exercises) >= 4 and exercises == solutions, (
        f"{nb_path.name}: exercises {exercises}, solutions {solutions}"
    )
    solution_cells = [
        c for c in code_cells(nb) if "hide-cell" in c.get("metadata", {}).get("tags", [])
    ]
    assert len(solution_cells) >= len(exercises), (
        f"{nb_path.name}: each exercise needs a runnable solution cell tagged hide-cell"
    )
    assert all("assert" in "".join(c["source"]) for c in solution_cells), (
        f"{nb_path.name}: every solution cell checks its result"
    )


def test_exercises_page_is_up_to_date():
    import subprocess

    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "exercises_page.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr.strip()


def test_the_reading_list_names_every_module_once(root):
    """helpers/__init__.py is a numbered reading list of every module (issue 16)."""
    import helpers

    modules = {p.stem for p in (root / "helpers").glob("*.py") if p.stem != "__init__"}
    listed = re.findall(r"^\d+\. ``(\w+)``", helpers.__doc__, flags=re.M)
    assert sorted(listed) == sorted(modules) and len(listed) == len(set(listed))
