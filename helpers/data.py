"""Data for training: the-verdict, safe downloads, and the sliding-window loader (Chapter 1).

``fetch_the_verdict(data_dir)`` returns the path of Edith Wharton's short story "The Verdict",
downloading it once (with a sha256 check and a short timeout) only when ``data_dir`` lacks it.
``create_dataloader`` turns a token sequence into ``(inputs, targets)`` batches of shape
``(batch_size, context_length)``, the targets being the inputs shifted by one token.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

THE_VERDICT_URL = (
    "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch02/01_main-chapter-code/the-verdict.txt"
)
THE_VERDICT_SHA256 = "b41e41a68f0398a3154ae69e2e4c0e2694e17fe0d66730536837f1b01935b31f"


def download(url: str, dest: str | Path, sha256: str | None = None, timeout: float = 10.0) -> Path:
    """Download ``url`` to ``dest``; if ``sha256`` is given the file must match it.

    The bytes go to ``dest`` + ".part" first and are renamed only after the checksum passes, so a
    failed or corrupt download never leaves a file at ``dest`` (and the ".part" file is removed).
    Network errors are raised as ``ConnectionError`` naming the URL.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            for block in iter(lambda: response.read(1 << 16), b""):
                digest.update(block)
                out.write(block)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise ValueError(
                f"the download from {url} has sha256 {digest.hexdigest()}, expected {sha256}: "
                f"the file at that address changed or was corrupted; nothing was saved to {dest}."
            )
        os.replace(part, dest)
    except OSError as err:  # URLError, timeouts and refused connections are all OSErrors
        raise ConnectionError(f"could not download {url} ({err}).") from None
    finally:
        part.unlink(missing_ok=True)
    return dest


def fetch_the_verdict(data_dir: str | Path, url: str | None = None, timeout: float = 10.0) -> Path:
    """Path of ``the-verdict.txt`` in ``data_dir``, downloaded once (from ``url``, by default
    :data:`THE_VERDICT_URL`) if it is not there yet."""
    url = THE_VERDICT_URL if url is None else url
    path = Path(data_dir) / "the-verdict.txt"
    if path.exists():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != THE_VERDICT_SHA256:
            raise ValueError(
                f"{path} has sha256 {digest}, not {THE_VERDICT_SHA256}: it is not the book's copy of the story; "
                f"delete it and run again to download the right one."
            )
        return path
    try:
        return download(url, path, sha256=THE_VERDICT_SHA256, timeout=timeout)
    except ConnectionError as err:
        raise FileNotFoundError(
            f"{path} is missing and the download failed ({err}): with no network, copy the-verdict.txt "
            f"(sha256 {THE_VERDICT_SHA256[:12]}...) into {Path(data_dir).resolve()}."
        ) from None


def count_windows(n_tokens: int, context_length: int, stride: int) -> int:
    """How many ``(input, target)`` windows :class:`SlidingWindowDataset` makes from ``n_tokens`` tokens.

    A window needs ``context_length + 1`` tokens (the target is shifted by one); windows start at
    ``0, stride, 2*stride, ...`` while ``start < n_tokens - context_length``.
    """
    return max(0, -(-(n_tokens - context_length) // stride))


class SlidingWindowDataset(Dataset):
    """Fixed-length windows over one long token sequence: item ``i`` is ``(x, y)`` with
    ``x = ids[i*stride : i*stride + context_length]`` and ``y`` the same window shifted by one."""

    def __init__(self, token_ids, context_length: int, stride: int):
        if context_length < 1:
            raise ValueError(f"context_length={context_length} must be at least 1.")
        if stride < 1:
            raise ValueError(
                f"stride={stride} must be at least 1: it is how far each window moves "
                f"(stride=context_length gives non-overlapping windows)."
            )
        ids = torch.as_tensor(token_ids, dtype=torch.long)
        if ids.ndim != 1:
            raise ValueError(f"token_ids must be one flat sequence, got a tensor of shape {tuple(ids.shape)}.")
        if len(ids) <= context_length:
            raise ValueError(
                f"the text has {len(ids)} tokens, but one window needs context_length + 1 = {context_length + 1} "
                f"(inputs plus the shifted target): use a longer text or a context_length below {len(ids)}."
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
    """A DataLoader of ``(inputs, targets)`` batches, each of shape ``(batch_size, context_length)``.

    ``seed`` fixes the shuffling order through the loader's own ``torch.Generator`` (no global seed
    is touched). With ``drop_last=True`` a last, smaller batch is dropped.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be at least 1.")
    dataset = SlidingWindowDataset(token_ids, context_length, stride)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=num_workers, generator=generator)
