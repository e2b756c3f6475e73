"""GPT-2 checkpoints found on disk or downloaded from the Hugging Face hub, built in Chapter 9
(Loading GPT-2's weights).

* :func:`resolve_checkpoint`: ``(config.json, model.safetensors)`` for a local directory or a hub
  name from :data:`helpers.gpt2_config.HUB_MODELS`; :func:`read_hf_checkpoint`: its config and
  tensors;
* the download runs in a child process with an overall deadline, and a cached file is verified
  against the hub's hash of it. Only safetensors are read: a ``.bin`` file is a pickle, which can
  run code when it is loaded.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from helpers.gpt2_config import (
    _HUB_NAMES,
    HUB_MODELS,
    CheckpointError,
    CheckpointFormatError,
    CheckpointNotFoundError,
    HubUnreachableError,
    UnknownModelError,
)
from helpers.offline import sha256_file

_PICKLE = "a pickle, which can run any code when it is loaded"


def resolve_checkpoint(
    path_or_name: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    timeout: float = 10.0,
    verify: bool = True,
    deadline: float | None = None,
) -> tuple[Path, Path]:
    """``(config.json, model.safetensors)`` for a local directory (or .safetensors file), or for a
    hub name from :data:`HUB_MODELS`, downloaded through ``huggingface_hub`` into its cache
    (resumed if interrupted). An existing path wins over a hub name. A cached copy is used without
    asking the network; otherwise one quick request (``timeout`` seconds, no retries) checks the
    hub first. ``verify`` re-hashes a cached weights file against the hub's id for it (the cache's
    blob name: a sha256, or git's sha1 for small files); a file it cannot check is refused
    (``verify=False`` skips the check). A download runs in a child process that is stopped after
    ``deadline`` seconds (default: 60 s plus 1 s per MB), so no server can hold it longer; the
    cache resumes it later."""
    path = Path(path_or_name).expanduser()
    if not path.exists() and str(path_or_name) in _HUB_NAMES:
        repo = _HUB_NAMES[str(path_or_name)].repo_id
        cap = 2 * _HUB_NAMES[str(path_or_name)].param_bytes + (1 << 20)
        offline = local_files_only
        config = _hub_file(repo, "config.json", cache_dir, offline, timeout, deadline, 1 << 20)
        weights = _hub_file(repo, "model.safetensors", cache_dir, offline, timeout, deadline, cap)
        if verify:
            _verify_blob(repo, weights)
        return config, weights
    known = ", ".join(HUB_MODELS)
    if not path.exists():
        if (
            any(c in str(path_or_name) for c in "/\\")
            or path.suffix
            or str(path_or_name).startswith(".")
        ):
            raise CheckpointNotFoundError(
                f"no file or directory at {path}: give a directory with config.json "
                f"and model.safetensors, or a hub model ({known})."
            )
        raise UnknownModelError(
            f"unknown model {str(path_or_name)!r}: use one of {known}, or the path of a "
            f"directory with config.json and model.safetensors."
        )
    if path.is_file() and path.suffix != ".safetensors":
        what = (
            _PICKLE if path.suffix in (".bin", ".pt", ".pth", ".ckpt") else "not a safetensors file"
        )
        raise CheckpointFormatError(f"{path} is {what}; this book reads model.safetensors only.")
    directory, weights = (
        (path, path / "model.safetensors") if path.is_dir() else (path.parent, path)
    )
    if not weights.exists():
        pickles = sorted(p.name for p in directory.glob("*.bin"))
        raise (
            CheckpointFormatError(
                f"{directory} has no model.safetensors, only {pickles[0]}, {_PICKLE}; "
                f"this book reads model.safetensors only."
            )
            if pickles
            else CheckpointNotFoundError(f"{directory} has no model.safetensors.")
        )
    if not (directory / "config.json").exists():
        raise CheckpointNotFoundError(
            f"{directory} has no config.json: a checkpoint directory holds config.json "
            f"and model.safetensors (as save_hf_checkpoint writes them)."
        )
    return directory / "config.json", weights


def _git_blob_sha1(path: Path) -> str:
    """git's id of a file (the hub's etag for a file kept outside LFS)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify_blob(repo: str, weights: Path) -> None:
    blob = Path(os.path.realpath(weights))
    if re.fullmatch(r"[0-9a-f]{64}", blob.name):
        actual, what = sha256_file(blob), "sha256"
    elif re.fullmatch(r"[0-9a-f]{40}", blob.name):
        actual, what = _git_blob_sha1(blob), "git sha1"
    else:
        raise CheckpointFormatError(
            f"the cached model.safetensors of {repo} ({blob}) is not "
            "named by "
            "its hash, so it could not be verified: delete it and run "
            "again "
            f"to download it afresh, or pass verify=False to trust it."
        )
    if actual != blob.name:
        raise CheckpointFormatError(
            f"the cached model.safetensors of {repo} is corrupt (its "
            f"{what} is "
            f"not {blob.name[:12]}...): delete {blob} and run again to "
            f"download it afresh."
        )


class CacheWriteError(CheckpointError, OSError):
    """The download could not be written into the cache (a full disk, no permission)."""


_CHILD = """import json, sys
try:
    from huggingface_hub import hf_hub_download
    repo, filename, cache_dir, timeout = sys.argv[1:5]
    print(json.dumps({"path": hf_hub_download(repo, filename, cache_dir=cache_dir or None,
                                              etag_timeout=float(timeout))}))
except BaseException as err:
    status = getattr(getattr(err, "response", None), "status_code", None)
    print(json.dumps({"type": type(err).__name__, "errno": getattr(err, "errno", None),
                      "status": status, "message": str(err)[:500]}))
    sys.exit(1)
"""


def _hub_error(repo: str, filename: str, kind: str, errno_: int | None, status, message: str):
    """The right sentence for a failed hub request: missing file, full disk, or no network."""
    if errno_ in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
        return CacheWriteError(
            f"could not write {filename} of {repo} into the Hugging Face cache "
            f"({os.strerror(errno_)}): free some space, or point HF_HOME at a "
            f"writable disk with room."
        )
    if status == 404 or kind in (
        "EntryNotFoundError",
        "RepositoryNotFoundError",
        "RevisionNotFoundError",
        "RemoteEntryNotFoundError",
    ):
        return CheckpointNotFoundError(
            f"the hub answered that {repo} has no {filename} ({kind}, "
            f"HTTP {status}): check the model name, or pass a local "
            f"checkpoint directory."
        )
    return HubUnreachableError(
        f"could not download {filename} of {repo} ({kind}: {message}) and "
        f"there is no cached copy: connect to the network, or pass a local "
        f"checkpoint directory."
    )


def _relay(stream) -> None:
    """Copy a child's stderr (a progress bar: text with carriage returns) to ``sys.stderr``."""
    for chunk in iter(lambda: stream.read1(4096), b""):
        sys.stderr.write(chunk.decode("utf-8", "replace"))
        sys.stderr.flush()


def _wait(proc: subprocess.Popen, deadline: float) -> str:
    """The child's stdout once it exits; ``TimeoutExpired`` after ``deadline`` seconds."""
    proc.wait(timeout=deadline)
    return proc.stdout.read().decode("utf-8", "replace")


def _hub_file(
    repo: str,
    filename: str,
    cache_dir,
    local_files_only: bool,
    timeout: float,
    deadline: float | None = None,
    max_bytes: int | None = None,
) -> Path:
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:  # the cache first: no network at all when the file is there
        return Path(hf_hub_download(repo, filename, cache_dir=cache_dir, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    if local_files_only or constants.HF_HUB_OFFLINE:
        why = "local_files_only=True" if local_files_only else "HF_HUB_OFFLINE=1"
        raise HubUnreachableError(
            f"{repo} ({filename}) is not in the Hugging Face cache and downloads are off "
            f"({why}): run once with a network, or pass a local checkpoint directory."
        )
    try:  # one request without retries, so that no network fails in `timeout` seconds, not minutes
        meta = get_hf_file_metadata(hf_hub_url(repo, filename), timeout=timeout)
    except Exception as err:  # connection refused, DNS, timeouts, hub errors
        status = getattr(getattr(err, "response", None), "status_code", None)
        raise _hub_error(
            repo, filename, type(err).__name__, getattr(err, "errno", None), status, str(err)
        ) from err
    size = meta.size or 0
    if max_bytes is not None and size > max_bytes:
        raise CheckpointFormatError(
            f"the hub announces {size:,} bytes for {filename} of {repo}, "
            f"more than the {max_bytes:,} such a file can hold: refused."
        )
    deadline = 60.0 + size / 1e6 if deadline is None else deadline
    # huggingface_hub retries a cut download without limit while bytes keep coming, and each
    # stalled read waits its own timeout: a child process bounds the whole download in time
    seconds = str(max(1, math.ceil(timeout)))  # huggingface_hub reads whole seconds
    env = {
        **os.environ,
        "HF_ENDPOINT": constants.ENDPOINT,
        "HF_HUB_DOWNLOAD_TIMEOUT": seconds,
        "HF_HUB_ETAG_TIMEOUT": seconds,
        "TQDM_POSITION": "-1",
    }  # -1: a bar even without a TTY
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, repo, filename, str(cache_dir or ""), str(timeout)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    # The child's progress bar, passed on to this process's stderr: in a notebook the child's own
    # stderr would reach the kernel's terminal, not the page.
    relay = threading.Thread(target=_relay, args=(proc.stderr,), daemon=True)
    relay.start()
    try:
        stdout = _wait(proc, deadline)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise HubUnreachableError(
            f"could not download {filename} of {repo} within "
            f"deadline={deadline:g} "
            "s (the server is too slow or keeps cutting the file): try "
            "again "
            f"later (the cache resumes it), or pass a local checkpoint "
            f"directory."
        ) from None
    relay.join(timeout=5)
    try:
        answer = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        answer = {"type": "ChildError", "message": "the download process ended without an answer"}
    if "path" in answer:
        return Path(answer["path"])
    raise _hub_error(
        repo,
        filename,
        answer.get("type"),
        answer.get("errno"),
        answer.get("status"),
        answer.get("message", ""),
    )


def read_hf_checkpoint(path_or_name, **resolve_kwargs) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(config.json as a dict, {hub name: tensor})`` of a checkpoint (see
    :func:`resolve_checkpoint`)."""
    config_path, weights = resolve_checkpoint(path_or_name, **resolve_kwargs)
    try:
        hf_config = json.loads(config_path.read_text(encoding="utf-8"))
        with safe_open(weights, framework="pt") as f:
            return hf_config, {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointFormatError(
            f"{weights.parent} holds a corrupt or truncated checkpoint ({err}): "
            f"download or save it again."
        ) from None
    except OSError as err:  # a directory where a file should be, permissions, a disk error
        raise CheckpointFormatError(
            f"cannot read the checkpoint in {weights.parent} "
            f"({type(err).__name__}: {err.strerror or err}: "
            f"{err.filename or weights}): config.json and "
            "model.safetensors "
            f"must be readable files."
        ) from None
