"""The book's training loop on several processes with DistributedDataParallel
(Appendix: distributed).

Run it with PyTorch's launcher, which starts the processes and sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE`` in each::

    torchrun --nproc_per_node=2 -m helpers.distributed --backend gloo --out runs/ddp  # 2 CPU procs
    torchrun --nproc_per_node=8 -m helpers.distributed --backend nccl --out runs/ddp  # 8 GPUs

Without ``torchrun`` it runs as one plain process. Every process builds the same model (same seed),
reads its own share of the training windows (:func:`make_loader`, a ``DistributedSampler``) and
computes the gradient of its batch; ``DistributedDataParallel`` averages the gradients across the
processes during ``backward()``, so every process takes the same optimizer step. With equal batches
that average is the gradient of the union of the batches: ``N`` processes with batch ``b`` follow
the same losses as one process with batch ``N * b`` (up to float rounding). Only rank 0 writes the
log (``log.jsonl``, one line per step), ``summary.json`` and the checkpoint
(``helpers.checkpoint``'s format).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

BACKENDS = ("gloo", "nccl")


def check_backend(backend: str) -> None:
    """Raise a ValueError naming the problem and the fix if ``backend``
    cannot run here."""
    if backend not in BACKENDS:
        raise ValueError(
            f"backend={backend!r} is not one of {BACKENDS}: use gloo on "
            "CPUs, nccl on NVIDIA GPUs."
        )
    if not dist.is_available():
        raise ValueError(
            f"this torch build ({torch.__version__}) has no "
            "torch.distributed: install a build with it, or train in one "
            "process (helpers.train.train)."
        )
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError(
            "backend='nccl' needs NVIDIA GPUs, but "
            "torch.cuda.is_available() is False here: use --backend gloo to "
            "train on CPU processes."
        )
    if not dist.is_backend_available(backend):
        raise ValueError(
            f"backend={backend!r} is not built into this torch "
            f"({torch.__version__}): use "
            f"{'gloo' if backend == 'nccl' else 'nccl'} instead."
        )


def make_loader(
    dataset, batch_size: int, rank: int, world_size: int, seed: int = 123
) -> DataLoader:
    """Rank ``rank``'s batches: a ``DistributedSampler`` shuffles all windows
    with ``seed`` (and the epoch, see ``set_epoch``) and deals them out in
    turn, ``rank, rank + world_size, ...``. Raises a ValueError when there
    are too few windows for one batch on every process."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be at least 1.")
    if len(dataset) // world_size < batch_size:
        raise ValueError(
            f"the training data has {len(dataset)} windows, fewer than "
            f"{world_size} processes x batch_size={batch_size} = "
            f"{world_size * batch_size}, so some process would get no "
            "batch: use fewer processes (--nproc_per_node), a smaller "
            "--batch-size, or more text."
        )
    sampler = DistributedSampler(
        dataset,
        num_replicas=world_size,
        rank=rank,
        shuffle=True,
        seed=seed,
        drop_last=True,
    )
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, drop_last=True
    )


def train_ddp(
    model,
    loader: DataLoader,
    optimizer,
    max_steps: int,
    rank: int,
    world_size: int,
    out_dir: Path | None = None,
) -> list[float]:
    """Train ``model`` (wrapped in ``DistributedDataParallel`` when
    ``world_size > 1``) for up to ``max_steps`` steps and return the loss of
    every step, averaged over the processes (the loss of the whole global
    batch). Rank 0 appends one JSON line per step to
    ``out_dir / "log.jsonl"``."""
    from helpers.train import calc_loss_batch

    losses, step, epoch = [], 0, 0
    log = None
    if rank == 0 and out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        log = open(out_dir / "log.jsonl", "a", encoding="utf-8")
    model.train()
    try:
        while step < max_steps:
            # a new shuffle per epoch, the same on every rank
            loader.sampler.set_epoch(epoch)
            for inputs, targets in loader:
                optimizer.zero_grad(set_to_none=True)
                loss = calc_loss_batch(inputs, targets, model)
                # DDP averages the gradients across processes here
                loss.backward()
                optimizer.step()
                mean = loss.detach().clone()
                if world_size > 1:
                    # gloo has no AVG: sum, then divide
                    dist.all_reduce(mean, op=dist.ReduceOp.SUM)
                    mean /= world_size
                losses.append(mean.item())
                step += 1
                if log is not None:
                    log.write(
                        json.dumps(
                            {
                                "step": step,
                                "loss": losses[-1],
                                "rank": rank,
                                "tokens": step * world_size * inputs.numel(),
                            }
                        )
                        + "\n"
                    )
                if step == max_steps:
                    break
            epoch += 1
    finally:
        if log is not None:
            log.close()
    return losses


def parse_args(argv=None) -> argparse.Namespace:
    # the docstring's first paragraph (its summary, wrapped over two lines) as one line
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument(
        "--backend",
        default=None,
        help="gloo (CPU) or nccl (GPUs); default: nccl if CUDA, else gloo",
    )
    p.add_argument("--batch-size", type=int, default=4, help="windows per process and step")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--context-length", type=int, default=32)
    p.add_argument("--emb-dim", type=int, default=32)
    p.add_argument("--n-layers", type=int, default=1)
    p.add_argument("--n-heads", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--data-dir", default="data")
    p.add_argument(
        "--out", default=None, help="folder for log.jsonl, summary.json and checkpoint (rank 0)"
    )
    return p.parse_args(argv)


def main(argv=None) -> list[float]:
    """Entry point for ``torchrun ... -m helpers.distributed``; returns this process's step
    losses."""
    from helpers.checkpoint import save_checkpoint
    from helpers.data import SlidingWindowDataset, fetch_the_verdict
    from helpers.model import GPTConfig, GPTModel
    from helpers.offline import gpt2_encoding

    args = parse_args(argv)
    for name in ("batch_size", "steps", "context_length"):
        if getattr(args, name) < 1:
            raise ValueError(
                f"--{name.replace('_', '-')} {getattr(args, name)} must be a positive integer."
            )
    if not 0 < args.lr < float("inf"):
        raise ValueError(f"--lr {args.lr} must be a positive number, e.g. 1e-3.")
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    backend = args.backend or ("nccl" if torch.cuda.is_available() else "gloo")
    check_backend(backend)
    device = torch.device(f"cuda:{local_rank}" if backend == "nccl" else "cpu")
    tokenizer = gpt2_encoding()
    ids = tokenizer.encode(fetch_the_verdict(args.data_dir).read_text(encoding="utf-8"))
    T = args.context_length
    loader = make_loader(
        SlidingWindowDataset(ids, T, stride=T), args.batch_size, rank, world_size, args.seed
    )
    if world_size > 1:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, rank=rank, world_size=world_size)
    try:
        torch.manual_seed(args.seed)  # the same weights on every rank (DDP also copies rank 0's)
        cfg = GPTConfig.from_preset(
            "gpt2-small",
            emb_dim=args.emb_dim,
            n_layers=args.n_layers,
            n_heads=args.n_heads,
            context_length=T,
            drop_rate=0.0,
            vocab_size=tokenizer.n_vocab,
        )
        model = GPTModel(cfg).to(device)
        net = model
        if world_size > 1:
            net = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[local_rank] if device.type == "cuda" else None
            )
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
        out = Path(args.out) if args.out else None
        start = time.perf_counter()
        losses = train_ddp(net, loader, optimizer, args.steps, rank, world_size, out)
        seconds = time.perf_counter() - start
        if (
            rank == 0 and out is not None
        ):  # one writer: the checkpoint and summary come from rank 0 only
            save_checkpoint(out / "checkpoint.safetensors", model, optimizer)
            tokens = len(losses) * world_size * args.batch_size * T
            summary = {
                "rank": rank,
                "world_size": world_size,
                "backend": backend,
                "batch_size": args.batch_size,
                "steps": len(losses),
                "losses": losses,
                "seconds": seconds,
                "tokens_per_s": tokens / seconds,
                "threads": torch.get_num_threads(),
            }
            (out / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
        if world_size > 1:
            dist.barrier()  # nobody exits while rank 0 is still writing
        return losses
    finally:
        if world_size > 1:
            dist.destroy_process_group()


def cli(argv=None) -> int:
    """``main`` for the command line: a user's error (a bad option, a missing file, no network, an
    unusable backend) is printed once, by rank 0, as one sentence, and every rank exits with 2."""
    try:
        main(argv)
    except (ValueError, FileNotFoundError, ConnectionError) as err:
        if int(os.environ.get("RANK", 0)) == 0:
            print(f"python -m helpers.distributed: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
