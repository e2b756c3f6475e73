"""Tests for helpers.distributed: DDP on 2 CPU processes (gloo) follows the 1-process losses."""

import json
import socket
import subprocess
import sys

import pytest
import torch

from helpers.data import SlidingWindowDataset
from helpers.distributed import check_backend, make_loader


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(root, out, nproc, batch_size, steps=6):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        "-m",
        "helpers.distributed",
        "--backend",
        "gloo",
        "--batch-size",
        str(batch_size),
        "--steps",
        str(steps),
        "--data-dir",
        str(root / "data"),
        "--out",
        str(out),
    ]
    result = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((out / "summary.json").read_text())


def test_two_processes_follow_the_one_process_losses(root, tmp_path):
    one = launch(root, tmp_path / "one", nproc=1, batch_size=8)
    two = launch(root, tmp_path / "two", nproc=2, batch_size=4)
    assert (
        one["world_size"] == 1
        and two["world_size"] == 2
        and len(one["losses"]) == len(two["losses"]) == 6
    )
    # The same windows per step, and the average of two 4-window gradients is the 8-window gradient:
    # only the order of float32 sums differs (the all-reduce), about 1e-6 on losses near 10.8 after
    # 6 steps; 1e-4 leaves room for other BLAS builds while any data or gradient mix-up moves ~1e-2.
    torch.testing.assert_close(
        torch.tensor(two["losses"]), torch.tensor(one["losses"]), rtol=0, atol=1e-4
    )
    # Only rank 0 writes: one log line per step (two writers would append twice), all from rank 0.
    lines = [json.loads(line) for line in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, 7)) and {
        line["rank"] for line in lines
    } == {0}
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "checkpoint.safetensors",
        "log.jsonl",
        "summary.json",
    ]


def test_more_processes_than_batches_is_named():
    dataset = SlidingWindowDataset(list(range(50)), context_length=8, stride=8)  # 6 windows
    with pytest.raises(
        ValueError, match=r"6 windows, fewer than 4 processes x batch_size=2 = 8.*fewer processes"
    ):
        make_loader(dataset, batch_size=2, rank=0, world_size=4)
    assert (
        len(make_loader(dataset, batch_size=3, rank=1, world_size=2)) == 1
    )  # 3 windows each: one batch


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without GPUs"
)
def test_unavailable_backend_is_named():
    with pytest.raises(ValueError, match="backend='nccl' needs NVIDIA GPUs.*use --backend gloo"):
        check_backend("nccl")
    with pytest.raises(ValueError, match="backend='mpi' is not one of"):
        check_backend("mpi")
    check_backend("gloo")  # the CPU path works
