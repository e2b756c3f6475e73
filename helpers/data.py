"""Data for training: the-verdict, safe downloads, and the sliding-window loader (Chapter 1).

``fetch_the_verdict(data_dir)`` returns the path of Edith Wharton's short story "The Verdict",
downloading it once (with a sha256 check and a short timeout) only when ``data_dir`` lacks it.
``create_dataloader`` turns a token sequence into ``(inputs, targets)`` batches of shape
``(batch_size, context_length)``, the targets being the inputs shifted by one token.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import operator
import os
import tempfile
import time
import urllib.request
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

THE_VERDICT_URL = "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch02/01_main-chapter-code/the-verdict.txt"
THE_VERDICT_SHA256 = "b41e41a68f0398a3154ae69e2e4c0e2694e17fe0d66730536837f1b01935b31f"


DEFAULT_MAX_BYTES = 1 << 30  # download()'s size cap: 1 GiB unless the caller names another


def _write_all(fd: int, block: bytes) -> None:
    view = memoryview(block)
    while view:
        view = view[os.write(fd, view) :]


def download(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    timeout: float = 10.0,
    deadline: float = 300.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Path:
    """Download ``url`` to ``dest``; if ``sha256`` is given the file must match it.

    Bounded: each network wait takes at most ``timeout`` seconds, the whole download at most about
    ``deadline`` seconds (checked between reads, each bounded by ``timeout``), and a body over
    ``max_bytes`` bytes is refused. A body shorter than the server's Content-Length is refused too.
    The bytes go to a fresh temporary file in ``dest``'s folder (a unique name, created exclusively,
    so no link is followed and two processes never share it), renamed to ``dest`` only once it is
    complete and checked: a failed download leaves nothing behind. Network errors are raised as
    ``ConnectionError``, errors writing the file (a full disk) as ``OSError``, each naming the
    cause.
    """
    _check_download_limits(timeout, deadline, max_bytes)
    dest = Path(dest)
    if dest.is_dir():
        raise IsADirectoryError(
            f"{dest} is a directory: give download() the path of the file to write."
        )
    fd, part = _open_part_file(dest)
    try:
        digest, size, expected = _receive(url, dest, fd, timeout, deadline, max_bytes)
        _check_received(url, dest, sha256, digest, size, expected)
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o644)  # mkstemp makes it private; the file is a plain download
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.replace(part, dest)
        except OSError as err:
            raise _WriteError(err) from None
    except _TooBig as err:
        raise ConnectionError(
            f"could not download {url}: {err}, more than max_bytes={max_bytes:,}; "
            f"nothing was saved to {dest} (pass a larger max_bytes if it is right)."
        ) from None
    except _WriteError as err:
        cause = err.args[0]
        raise OSError(
            cause.errno,
            f"could not write the download of {url} into {dest.parent} "
            f"({cause.strerror or cause}): free some space or choose another folder; "
            f"nothing was saved to {dest}.",
        ) from None
    finally:
        if fd >= 0:
            os.close(fd)
        Path(part).unlink(missing_ok=True)
    return dest


def _check_download_limits(timeout, deadline, max_bytes) -> None:
    """Refuse a ``timeout``, ``deadline`` or ``max_bytes`` that is not a positive finite number."""
    for name, value in (("timeout", timeout), ("deadline", deadline), ("max_bytes", max_bytes)):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not 0 < value < math.inf:
            raise ValueError(f"{name}={value!r} must be a positive number.")


def _open_part_file(dest: Path) -> tuple[int, str]:
    """A fresh, exclusively created temporary file next to ``dest``: its descriptor and path."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as err:
        raise OSError(
            err.errno,
            f"cannot write into {dest.parent} ({err.strerror or err}): give "
            f"download() a destination in a folder you can write to.",
        ) from None


def _receive(url: str, dest: Path, fd: int, timeout: float, deadline: float, max_bytes: int):
    """Stream ``url``'s body into ``fd``: ``(sha256 digest, size, announced size or None)``.

    Network errors (timeouts and the overall ``deadline`` included) become ``ConnectionError``;
    a body over ``max_bytes`` raises :class:`_TooBig`, a failed write :class:`_WriteError`.
    """
    stop = time.monotonic() + deadline
    digest, size = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=min(timeout, deadline)) as response:
            expected = _announced_size(response, max_bytes)
            while block := response.read1(1 << 16):  # read1: one receive, so time is checked
                size += len(block)
                if size > max_bytes:
                    raise _TooBig(f"the body goes on past {max_bytes:,} bytes")
                digest.update(block)
                try:
                    _write_all(fd, block)
                except OSError as err:
                    raise _WriteError(err) from None
                if time.monotonic() > stop:
                    raise TimeoutError(
                        f"it took longer than deadline={deadline} s ({size:,} bytes so far)"
                    )
    except http.client.IncompleteRead as err:
        raise ConnectionError(
            f"could not download {url}: the connection closed after "
            f"{size + len(err.partial):,} bytes, before the body was complete; "
            f"nothing was saved to {dest}, try again."
        ) from None
    except (OSError, http.client.HTTPException, ValueError) as err:
        # URLError, HTTP errors, timeouts and refused connections are all OSErrors
        raise ConnectionError(
            f"could not download {url} ({type(err).__name__}: {err}); nothing was saved to {dest}."
        ) from None
    return digest, size, expected


def _announced_size(response, max_bytes: int) -> int | None:
    """The response's Content-Length (None if it has none); :class:`_TooBig` if over the cap."""
    length = response.headers.get("Content-Length")
    expected = int(length) if length and length.isdigit() else None
    if expected is not None and expected > max_bytes:
        raise _TooBig(f"the server announces {expected:,} bytes")
    return expected


def _check_received(url, dest, sha256, digest, size: int, expected: int | None) -> None:
    """Refuse a body shorter or longer than announced, or one whose sha256 is not ``sha256``."""
    if expected is not None and size != expected:
        raise ConnectionError(
            f"could not download {url}: the server announced {expected:,} bytes "
            f"but sent {size:,}; nothing was saved to {dest}, try again."
        )
    if sha256 is not None and digest.hexdigest() != sha256:
        raise ValueError(
            f"the download from {url} has sha256 {digest.hexdigest()}, expected {sha256}: "
            f"the file at that address changed or was corrupted; nothing was saved to {dest}."
        )


class _TooBig(Exception):
    pass


class _WriteError(Exception):
    pass


def fetch_the_verdict(
    data_dir: str | Path, url: str | None = None, timeout: float = 10.0, deadline: float = 60.0
) -> Path:
    """Path of ``the-verdict.txt`` in ``data_dir``, downloaded once (from ``url``, by default
    :data:`THE_VERDICT_URL`) if it is not there yet (within ``deadline`` seconds, at most 1 MiB:
    the story is 20 KB)."""
    url = THE_VERDICT_URL if url is None else url
    path = Path(data_dir) / "the-verdict.txt"
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not the story: remove it and run again.")
    if path.exists():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != THE_VERDICT_SHA256:
            raise ValueError(
                f"{path} has sha256 {digest}, not {THE_VERDICT_SHA256}: it is not the book's copy "
                f"of the story; delete it and run again to download the right one."
            )
        return path
    try:
        return download(
            url,
            path,
            sha256=THE_VERDICT_SHA256,
            timeout=timeout,
            deadline=deadline,
            max_bytes=1 << 20,
        )
    except ConnectionError as err:
        raise FileNotFoundError(
            f"{path} is missing and the download failed ({err}): copy the-verdict.txt "
            f"(sha256 {THE_VERDICT_SHA256[:12]}...) into {Path(data_dir).resolve()}."
        ) from None


def _integer(name: str, value) -> int:
    """``value`` as an int (numpy and torch integers too), or one sentence naming it."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name}={value!r} must be a positive integer.") from None


def count_windows(n_tokens: int, context_length: int, stride: int) -> int:
    """How many ``(input, target)`` windows :class:`SlidingWindowDataset` makes from ``n_tokens``
    tokens.

    A window needs ``context_length + 1`` tokens (the target is shifted by one); windows start at
    ``0, stride, 2*stride, ...`` while ``start < n_tokens - context_length``.
    """
    return max(0, -(-(n_tokens - context_length) // stride))


class SlidingWindowDataset(Dataset):
    """Fixed-length windows over one long token sequence: item ``i`` is ``(x, y)`` with
    ``x = ids[i*stride : i*stride + context_length]`` and ``y`` the same window shifted by one."""

    def __init__(self, token_ids, context_length: int, stride: int):
        context_length = _integer("context_length", context_length)
        stride = _integer("stride", stride)
        if context_length < 1:
            raise ValueError(f"context_length={context_length} must be at least 1.")
        if stride < 1:
            raise ValueError(
                f"stride={stride} must be at least 1: it is how far each window moves "
                f"(stride=context_length gives non-overlapping windows)."
            )
        try:
            ids = torch.as_tensor(token_ids, dtype=torch.long)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(
                f"token_ids must be integer token ids ({err}): encode the text first."
            ) from None
        if ids.ndim != 1:
            raise ValueError(
                f"token_ids must be one flat sequence, got a tensor of shape {tuple(ids.shape)}."
            )
        if len(ids) <= context_length:
            raise ValueError(
                f"the text has {len(ids)} tokens, but one window needs context_length + 1 = "
                f"{context_length + 1} (inputs plus the shifted target): use a longer text or a "
                f"context_length below {len(ids)}."
            )
        self.ids, self.context_length, self.stride = ids, context_length, stride

    def __len__(self) -> int:
        return count_windows(len(self.ids), self.context_length, self.stride)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} out of range for a dataset of {len(self)} windows.")
        start = i * self.stride
        chunk = self.ids[start : start + self.context_length + 1]
        return chunk[:-1], chunk[1:]


def create_dataloader(
    token_ids,
    batch_size: int = 4,
    context_length: int = 256,
    stride: int = 128,
    shuffle: bool = True,
    drop_last: bool = True,
    num_workers: int = 0,
    seed: int | None = None,
) -> DataLoader:
    """A DataLoader of ``(inputs, targets)`` batches, each of shape
    ``(batch_size, context_length)``.

    ``seed`` fixes the shuffling order through the loader's own ``torch.Generator`` (no global seed
    is touched). With ``drop_last=True`` a last, smaller batch is dropped.
    """
    if _integer("batch_size", batch_size) < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer.")
    if seed is not None and not 0 <= _integer("seed", seed) < 2**63:
        raise ValueError(f"seed={seed!r} must be an integer in 0..2**63 - 1, or None.")
    dataset = SlidingWindowDataset(token_ids, context_length, stride)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=num_workers,
        generator=generator,
    )
