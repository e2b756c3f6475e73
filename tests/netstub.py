"""A stand-in for the network, on 127.0.0.1 only: the parts of the Hugging Face hub that
``huggingface_hub`` uses, the-verdict's download address, and gensim-data's files.

Used by the unit tests (``tests/test_worlds.py``) and by the online run (``tools/worlds.py
online``); nothing here sends a byte off the machine. The hub part answers the two requests that
``hf_hub_download`` makes, as the real hub answers them:

* ``HEAD /{repo}/resolve/{revision}/{file}``: ``X-Repo-Commit``, an ``ETag`` and, for a large
  (LFS) file, ``X-Linked-Etag`` (its sha256) and ``X-Linked-Size``;
* ``GET`` of the same address, honouring ``Range: bytes=N-`` (a resumed download).

:func:`gpt2_repo` builds GPT-2's repository as the hub lays it out: the real ``config.json`` and a
``model.safetensors`` with the real file's tensor names (no ``transformer.`` prefix, each block's
``attn.bias`` mask buffer, no ``lm_head``), shapes and dtype, filled with seeded random values made
at run time (never committed). :func:`glove_folder` writes a small ``glove-wiki-gigaword-50`` in
gensim-data's format and folder layout, with a few planted analogies.

Faults for tests: ``cut_first_get`` cuts the first ``GET`` of each named file after that many bytes
(a dropped connection, so the client must resume), and ``corrupt`` serves other bytes than the ones
the ``X-Linked-Etag`` promises.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

COMMIT = (
    "607a30d783dfa663caf39e06633721c8d4cfcd7e"  # any 40-hex commit id: the stub's only revision
)

# GPT-2 small's config.json as openai-community/gpt2 publishes it.
GPT2_CONFIG = {
    "activation_function": "gelu_new",
    "architectures": ["GPT2LMHeadModel"],
    "attn_pdrop": 0.1,
    "bos_token_id": 50256,
    "embd_pdrop": 0.1,
    "eos_token_id": 50256,
    "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05,
    "model_type": "gpt2",
    "n_ctx": 1024,
    "n_embd": 768,
    "n_head": 12,
    "n_layer": 12,
    "n_positions": 1024,
    "resid_pdrop": 0.1,
    "summary_activation": None,
    "summary_first_dropout": 0.1,
    "summary_proj_to_labels": True,
    "summary_type": "cls_index",
    "summary_use_proj": True,
    "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
    "vocab_size": 50257,
}


def gpt2_tensors(config: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Tensors named, shaped and typed as in the hub's GPT-2 ``model.safetensors``, with seeded
    random values (weights ~ N(0, 0.02), LayerNorm gains near 1) and the causal mask buffers."""
    g = torch.Generator().manual_seed(seed)
    C, V, T = config["n_embd"], config["vocab_size"], config["n_positions"]

    def normal(*shape, std=0.02):
        return torch.randn(*shape, generator=g) * std

    tensors = {
        "wte.weight": normal(V, C),
        "wpe.weight": normal(T, C, std=0.01),
        "ln_f.weight": 1 + normal(C),
        "ln_f.bias": normal(C),
    }
    mask = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
    for i in range(config["n_layer"]):
        h = f"h.{i}."
        tensors.update(
            {
                h + "ln_1.weight": 1 + normal(C),
                h + "ln_1.bias": normal(C),
                h + "attn.bias": mask.clone(),
                h + "attn.c_attn.weight": normal(C, 3 * C),
                h + "attn.c_attn.bias": normal(3 * C),
                h + "attn.c_proj.weight": normal(C, C),
                h + "attn.c_proj.bias": normal(C),
                h + "ln_2.weight": 1 + normal(C),
                h + "ln_2.bias": normal(C),
                h + "mlp.c_fc.weight": normal(C, 4 * C),
                h + "mlp.c_fc.bias": normal(4 * C),
                h + "mlp.c_proj.weight": normal(4 * C, C),
                h + "mlp.c_proj.bias": normal(C),
            }
        )
    return tensors


def gpt2_repo(folder: Path, config: dict | None = None, seed: int = 0) -> Path:
    """Write ``config.json`` and ``model.safetensors`` of a GPT-2 repository into ``folder``.
    ``config`` defaults to GPT-2 small's (a 550 MB file); tests pass a smaller one."""
    folder.mkdir(parents=True, exist_ok=True)
    config = GPT2_CONFIG if config is None else config
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    save_file(gpt2_tensors(config, seed), folder / "model.safetensors", metadata={"format": "pt"})
    return folder


# Groups of related words, as real word vectors have them (Chapter 2 measures such groups), and
# relations planted as shared offsets: b - a + c lands exactly on d for every (a, b, c, d) below.
GLOVE_GROUPS = {
    "months": [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ],
    "numbers": ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"],
    "countries": ["france", "germany", "italy", "china", "japan", "spain", "russia", "india"],
    "capitals": ["paris", "berlin", "rome", "madrid", "tokyo", "london"],
    "family": [
        "man",
        "woman",
        "men",
        "women",
        "king",
        "queen",
        "father",
        "mother",
        "brother",
        "sister",
        "wife",
        "husband",
        "son",
        "daughter",
        "he",
        "she",
        "his",
        "her",
    ],
    "sciences": ["physics", "chemistry", "mathematics", "biology", "astronomy"],
    "other": [
        "music",
        "war",
        "water",
        "good",
        "better",
        "bad",
        "worse",
        "walk",
        "walked",
        "swim",
        "swam",
        "small",
        "smaller",
        "big",
        "bigger",
    ],
}
GLOVE_ANALOGIES = [
    ("man", "king", "woman", "queen"),
    ("man", "woman", "father", "mother"),
    ("man", "woman", "brother", "sister"),
    ("man", "woman", "he", "she"),
    ("man", "woman", "his", "her"),
    ("man", "men", "woman", "women"),
    ("france", "paris", "germany", "berlin"),
    ("france", "paris", "italy", "rome"),
    ("one", "two", "three", "four"),
    ("good", "better", "bad", "worse"),
    ("walk", "walked", "swim", "swam"),
    ("small", "smaller", "big", "bigger"),
]


def _glove_vectors(rng, words: list[str], dim: int) -> dict[str, np.ndarray]:
    """Filler words at random; each group's words around a centre of its own, with lengths that
    vary; then the analogies' answers placed by their offsets (in order: a planted word may serve
    as the start of a later relation)."""
    vectors = {w: rng.normal(scale=0.5, size=dim) for w in words}
    for group in GLOVE_GROUPS.values():
        centre = rng.normal(size=dim)
        centre *= 4 / np.linalg.norm(centre)
        for w in group:
            v = centre + rng.normal(scale=0.35, size=dim)
            vectors[w] = v * rng.uniform(1.0, 2.0)
    for a, b, c, d in GLOVE_ANALOGIES:
        vectors[d] = vectors[c] + vectors[b] - vectors[a]
    return vectors


def glove_folder(base_dir: Path, n_words: int = 3000, dim: int = 50, seed: int = 0) -> Path:
    """A small ``glove-wiki-gigaword-50`` in gensim-data's layout: ``base_dir/NAME/NAME.gz``, a
    gzipped word2vec text file (a ``"N dim"`` header, then one word and its numbers a line), plus
    the loader module gensim-data ships beside it (which the book never runs). It holds every word
    Chapter 2 looks up, in groups (:data:`GLOVE_GROUPS`), with :data:`GLOVE_ANALOGIES` planted."""
    name = "glove-wiki-gigaword-50"
    rng = np.random.default_rng(seed)
    words = ["the", ",", ".", "of", "to", "and", "in", "a"]
    words += [w for ws in GLOVE_GROUPS.values() for w in ws if w not in words]
    words += [f"w{i:05d}" for i in range(n_words - len(words))]
    vectors = _glove_vectors(rng, words, dim)
    folder = base_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{len(words)} {dim}"] + [
        w + " " + " ".join(f"{x:.5f}" for x in vectors[w]) for w in words
    ]
    with gzip.open(folder / f"{name}.gz", "wt", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    (folder / "__init__.py").write_text(
        "import os\nfrom gensim.models import KeyedVectors\n\n\ndef load_data():\n"
        f"    path = os.path.join(os.path.dirname(__file__), '{name}.gz')\n"
        "    return KeyedVectors.load_word2vec_format(path)\n",
        encoding="utf-8",
    )
    return folder


@dataclass
class NetStub:
    """The local server's content and faults; :meth:`start` serves it on 127.0.0.1."""

    repos: dict[str, Path] = field(default_factory=dict)  # repo id -> folder of its files
    files: dict[str, Path] = field(default_factory=dict)  # other paths ("/the-verdict.txt") -> file
    cut_first_get: dict[str, int] = field(default_factory=dict)  # file name -> bytes sent, then cut
    corrupt: set[str] = field(default_factory=set)  # file names served with other bytes
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path), for assertions

    def start(self) -> tuple[ThreadingHTTPServer, str]:
        """Serve in a daemon thread; returns the server (``shutdown()`` it) and its base URL."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_port}"

    def lookup(self, path: str) -> tuple[Path | None, bool]:
        """The file for a request path, and whether it is a hub file (hub headers)."""
        if path in self.files:
            return self.files[path], False
        for repo, folder in self.repos.items():
            for revision in ("main", COMMIT):
                prefix = f"/{repo}/resolve/{revision}/"
                if path.startswith(prefix) and (folder / path[len(prefix) :]).is_file():
                    return folder / path[len(prefix) :], True
        return None, False


_SHA256: dict[Path, str] = {}


def _sha256(path: Path) -> str:
    if path not in _SHA256:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _SHA256[path] = digest.hexdigest()
    return _SHA256[path]


def _handler(stub: NetStub) -> type[BaseHTTPRequestHandler]:
    """A request handler class serving ``stub`` (the server makes one handler per request)."""
    return type("Handler", (_Handler,), {"stub": stub})


class _Handler(BaseHTTPRequestHandler):
    """Serves :attr:`stub` (set per server by :func:`_handler`): files, hub headers, faults."""

    protocol_version = "HTTP/1.1"
    stub: NetStub

    def log_message(self, *args):  # quiet
        pass

    def _headers(self, path: Path, hub: bool, start: int) -> int:
        size = path.stat().st_size
        self.send_header("Content-Length", str(size - start))
        self.send_header("Accept-Ranges", "bytes")
        if hub:
            self.send_header("X-Repo-Commit", COMMIT)
            if path.suffix == ".safetensors":  # an LFS file: its sha256 is its etag
                self.send_header("X-Linked-Etag", f'"{_sha256(path)}"')
                self.send_header("X-Linked-Size", str(size))
            self.send_header("ETag", f'"{hashlib.sha1(path.name.encode()).hexdigest()}"')
        if start:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.end_headers()
        return size

    def _find(self):
        self.stub.requests.append((self.command, self.path))
        path, hub = self.stub.lookup(self.path.split("?")[0])
        if path is None:
            body = b"Entry not found"
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)
        return path, hub

    def do_HEAD(self):
        path, hub = self._find()
        if path is not None:
            self.send_response(200)
            self._headers(path, hub, 0)

    def do_GET(self):
        path, hub = self._find()
        if path is None:
            return
        start = 0
        if self.headers.get("Range", "").startswith("bytes="):
            start = int(self.headers["Range"][6:].split("-")[0] or 0)
        self.send_response(206 if start else 200)
        size = self._headers(path, hub, start)
        cut = self.stub.cut_first_get.pop(path.name, None)
        with open(path, "rb") as f:
            f.seek(start)
            sent = start
            while sent < size:
                block = f.read(min(1 << 20, size - sent))
                if path.name in self.stub.corrupt:
                    block = bytes(b ^ 0xFF for b in block[:16]) + block[16:]
                if cut is not None and sent + len(block) > cut:
                    self.wfile.write(block[: max(0, cut - sent)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(block)
                sent += len(block)
