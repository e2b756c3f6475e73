"""Making training fast, one change at a time (Appendix: training speed).

Each change is a switch on :class:`SpeedOptions`; :func:`build_variant` turns the book's plain
``GPTModel`` into a copy with those switches (same weights), and :func:`make_train_step` gives one
training step (forward, cross-entropy, backward, AdamW) with them:

* ``sdpa``: attention through ``scaled_dot_product_attention`` instead of the explicit
  ``softmax(Q K^T / sqrt(d_h)) V`` of :func:`helpers.attention.causal_attention` (the layer's
  ``use_sdpa`` switch);
* ``fused_qkv``: one ``(C, 3C)`` projection (GPT-2's ``c_attn``) instead of three ``(C, C)`` ones
  (``MultiHeadAttention.fuse_qkv``);
* ``autocast``: the forward pass and loss under ``torch.autocast`` in ``bfloat16``;
* ``fused_adamw``: ``torch.optim.AdamW(..., fused=True)``, one kernel for the whole update;
* and ``torch.compile`` (see :func:`try_compile`, which falls back to the eager model and says
  why when the compiler is not available);
* ``pad_vocab_to``: the vocabulary rounded up to a multiple (64): extra rows that no input uses,
  whose logits are cut off before the loss, so the loss is unchanged.

The plain model is :class:`helpers.model.GPTModel`; nothing here changes it. Memory accounting
for the memory appendix lives in ``helpers.memory``; the inputs for an MFU estimate are
:func:`training_flops_per_token` and :func:`cpu_peak_flops`.
"""

from __future__ import annotations

import copy
import math
import os
import platform
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers.model import GPTConfig, flops_per_token


@dataclass(frozen=True)
class SpeedOptions:
    """Which speed-ups a training step uses; the defaults: the plain model,
    naive attention."""

    sdpa: bool = False
    fused_qkv: bool = False
    autocast: str | None = None  # None (float32) or "bfloat16"
    fused_adamw: bool = False
    # 1: the vocabulary as it is; 64: rounded up to a multiple of 64
    pad_vocab_to: int = 1

    def __post_init__(self):
        if self.autocast not in (None, "bfloat16", "float16"):
            raise ValueError(
                f"autocast={self.autocast!r} is not a dtype name: use None, "
                "'bfloat16' or 'float16'."
            )
        if (
            isinstance(self.pad_vocab_to, bool)
            or not isinstance(self.pad_vocab_to, int)
            or self.pad_vocab_to < 1
        ):
            raise ValueError(
                f"pad_vocab_to={self.pad_vocab_to!r} must be a positive "
                "integer (1: no padding)."
            )


def padded_size(vocab_size: int, multiple: int) -> int:
    """``vocab_size`` rounded up to a multiple of ``multiple`` (50257 -> 50304 for 64)."""
    return -(-vocab_size // multiple) * multiple


def pad_vocabulary(model: nn.Module, multiple: int) -> nn.Module:
    """Give ``model`` (a ``GPTModel``, changed in place) ``padded_size(V, multiple)`` embedding
    rows and logits; the extra rows start at zero and no token id uses them. ``model.cfg`` keeps
    the true ``V``."""
    V, C = model.cfg.vocab_size, model.cfg.emb_dim
    Vp = padded_size(V, multiple)
    if Vp == V:
        return model
    emb = nn.Embedding(Vp, C).to(model.tok_emb.weight.device)
    head = nn.Linear(C, Vp, bias=False).to(emb.weight.device)
    with torch.no_grad():
        emb.weight.zero_()[:V] = model.tok_emb.weight
        head.weight.zero_()[:V] = model.out_head.weight
    model.tok_emb = emb
    model.out_head = head
    if model.cfg.tie_weights:
        model.out_head.weight = emb.weight  # still one matrix
    return model


def build_variant(model: nn.Module, options: SpeedOptions) -> nn.Module:
    """A copy of ``model`` (a ``GPTModel``) with ``options``' attention and vocabulary changes; the
    same function as ``model`` up to float rounding; :func:`try_compile` compiles it."""
    fast = copy.deepcopy(model)
    for block in fast.trf_blocks:
        block.att.use_sdpa = options.sdpa
        if options.fused_qkv:
            block.att.fuse_qkv()
    return pad_vocabulary(fast, options.pad_vocab_to)


def try_compile(
    model: nn.Module, example: torch.Tensor
) -> tuple[nn.Module, str | None]:
    """``(torch.compile(model), None)`` if compiling works here (checked with
    one forward and backward on ``example``), else ``(model, reason)``: the
    eager model and one sentence saying why."""
    dynamo = getattr(torch, "_dynamo", None)
    if (
        dynamo is not None
        and hasattr(dynamo, "is_dynamo_supported")
        and not dynamo.is_dynamo_supported()
    ):
        return model, (
            "torch.compile is not supported with Python "
            f"{platform.python_version()} on {platform.system()} in torch "
            f"{torch.__version__}: the eager model is used."
        )
    try:
        compiled = torch.compile(model)
        # compiling happens at the first call
        compiled(example).float().sum().backward()
        model.zero_grad(set_to_none=True)
        return compiled, None
    except Exception as err:
        # no C++ compiler, an unsupported platform, an inductor bug...
        first = (str(err).strip().splitlines() or [""])[0][:160]
        return model, (
            f"torch.compile failed here ({type(err).__name__}: {first}); "
            "the eager model is used. It needs a working C++ compiler on "
            "CPU (on Windows, MSVC) or Triton on a GPU."
        )


def make_optimizer(
    params, lr: float, fused: bool = False, weight_decay: float = 0.1
) -> torch.optim.AdamW:
    """AdamW; with ``fused=True`` the single-kernel update, or a ValueError that says to switch
    it off."""
    params = list(params)
    try:
        return torch.optim.AdamW(
            params, lr=lr, weight_decay=weight_decay, fused=True if fused else None
        )
    except RuntimeError as err:
        raise ValueError(
            f"fused AdamW is not available for these parameters ({err}): use fused_adamw=False."
        ) from None


def make_train_step(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    vocab_size: int,
    options: SpeedOptions = SpeedOptions(),
    lr: float = 1e-4,
):
    """A function that runs one training step on the batch
    ``inputs, targets  # (B, T)`` and returns the loss (a float). ``model``
    is used as it is (build it with :func:`build_variant`, compile it with
    :func:`try_compile`); logits beyond ``vocab_size`` (padding) are cut off
    before the loss."""
    optimizer = make_optimizer(
        model.parameters(), lr, fused=options.fused_adamw
    )
    dtype = getattr(torch, options.autocast) if options.autocast else None
    device_type = inputs.device.type
    model.train()

    def step() -> float:
        with torch.autocast(
            device_type, dtype=dtype, enabled=dtype is not None
        ):
            logits = model(inputs)  # (B, T, V) or (B, T, V_padded)
            loss = F.cross_entropy(
                logits[..., :vocab_size].flatten(0, 1).float(),
                targets.flatten(),
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()  # also waits for the GPU

    return step


def training_flops_per_token(cfg: GPTConfig, num_tokens: int | None = None) -> int:
    """FLOPs of one training step per token: 3x :func:`helpers.model.flops_per_token` (the forward,
    and a backward that costs twice the forward)."""
    return 3 * flops_per_token(cfg, num_tokens)


def cpu_peak_flops(threads: int | None = None) -> tuple[float, str]:
    """An estimate of this CPU's float32 peak FLOP/s and how it was made:
    threads x clock x FLOPs per cycle, the latter 2 (multiply and add of an
    FMA) x vector lanes (16 with AVX-512, 8 with AVX2, 4 otherwise) x 2 FMA
    units (assumed; some CPUs have 1). The clock is the one ``/proc/cpuinfo``
    reports (base, not turbo). A rough upper bound, not a measurement; Linux
    only."""
    threads = threads or torch.get_num_threads()
    try:
        info = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        raise ValueError(
            "cannot read /proc/cpuinfo (not Linux): pass the peak FLOP/s of "
            "your CPU yourself."
        ) from None
    mhz = max(
        float(line.split(":")[1])
        for line in info.splitlines()
        if line.startswith("cpu MHz")
    )
    flags = next(
        line for line in info.splitlines() if line.startswith("flags")
    ).split()
    avx2 = "avx2" in flags and "fma" in flags
    lanes = 16 if "avx512f" in flags else 8 if avx2 else 4
    per_cycle = 2 * lanes * 2
    peak = threads * mhz * 1e6 * per_cycle
    how = (
        f"{threads} thread{'s' if threads != 1 else ''} x {mhz / 1e3:.2f} "
        f"GHz x {per_cycle} float32 FLOPs per cycle (2 FMA units x {lanes} "
        f"lanes x 2) = {peak / 1e9:.0f} GFLOP/s"
    )
    return peak, how


def machine_line() -> str:
    """One line naming the machine a measurement ran on: CPU model, threads, torch version."""
    model = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{model} ({os.cpu_count()} cores), torch threads: {torch.get_num_threads()}, "
        f"torch {torch.__version__}, Python {platform.python_version()}, {platform.system()}"
    )


def mfu(
    cfg: GPTConfig,
    tokens_per_s: float,
    peak_flops: float,
    num_tokens: int | None = None,
) -> float:
    """Model FLOPs utilization: training FLOPs per token x tokens/s, as a
    fraction of ``peak_flops``."""
    if peak_flops <= 0 or not math.isfinite(peak_flops):
        raise ValueError(
            f"peak_flops={peak_flops!r} must be a positive number of FLOP/s."
        )
    return (
        training_flops_per_token(cfg, num_tokens) * tokens_per_s / peak_flops
    )


def markdown_table(headers: list[str], rows: list[list]) -> str:
    """A markdown table, for the benchmark scripts that write ``book/tables/*.md``."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def provenance() -> str:
    """Where and when a table was measured: the machine, today's date and the load on the machine
    (other processes slow the timings down), as one markdown line."""
    import datetime

    load = (
        f", load average {os.getloadavg()[0]:.1f} at the start" if hasattr(os, "getloadavg") else ""
    )
    return f"*Measured on {machine_line()}, {datetime.date.today().isoformat()}{load}.*\n"
