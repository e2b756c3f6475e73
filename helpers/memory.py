"""What takes memory when training GPT-2 (Appendix: memory).

A training step holds four things: the weights, their gradients, the optimizer's state (AdamW keeps
two numbers per weight, ``exp_avg`` and ``exp_avg_sq``) and the activations that autograd saves
between the forward and the backward pass.

* :func:`training_memory`: all four in bytes, from a :class:`helpers.model.GPTConfig` alone;
* :func:`saved_activation_bytes`: the activations of one real forward pass, counted exactly
  (the storages autograd keeps, parameters left out), to check the formula against;
* :func:`rss_bytes` / :func:`peak_rss_bytes`: the process's resident memory now and at its peak
  (Linux ``/proc/self/status``), for measured peaks on a CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from helpers.model import GPTConfig, predicted_parameters


def activation_floats_per_token(cfg: GPTConfig) -> int:
    """Values autograd saves per token in one forward pass of
    ``GPTModel(cfg)`` plus cross-entropy, with ``drop_rate=0`` and the SDPA
    attention path (no ``(T, T)`` weights are kept).

    Per block ``16 C + h + 4``: each LayerNorm (one fused kernel) keeps its
    input and two numbers per token, the mean and ``1 / std`` (``C + 2``);
    attention keeps its input, q, k, v, the context (SDPA's output, which
    ``out_proj`` reads in place) and one log-sum-exp per head (``5 C + h``);
    the feed-forward keeps ``C`` in, its ``4C`` expansion (the fused GELU's
    input) and the GELU's ``4C`` output (``9 C``). After the blocks: the
    final LayerNorm (``C + 2``), its output, which the head reads (``C``),
    and the log-softmax of the logits (``V``). Counted by
    :func:`saved_activation_bytes` and checked against it in
    ``tests/test_speed.py``."""
    C, h, L, V = cfg.emb_dim, cfg.n_heads, cfg.n_layers, cfg.vocab_size
    return L * (16 * C + h + 4) + 2 * C + 2 + V


def training_memory(
    cfg: GPTConfig,
    batch_size: int,
    num_tokens: int | None = None,
    bytes_per_value: int = 4,
) -> dict[str, int]:
    """Bytes of one float32 AdamW training step of ``GPTModel(cfg)`` on
    ``(batch_size, num_tokens)`` ids (``num_tokens`` defaults to
    ``context_length``): ``weights``, ``gradients``, ``adamw`` (two states
    per weight), ``activations`` (see :func:`activation_floats_per_token`,
    plus the int64 ids, targets and positions) and their ``total``. Temporary
    buffers (the logits, their gradient) and the allocator's own overhead
    come on top of the total."""
    T = cfg.context_length if num_tokens is None else num_tokens
    if batch_size < 1 or T < 1:
        raise ValueError(
            f"batch_size={batch_size} and num_tokens={T} must both be at "
            "least 1."
        )
    n = predicted_parameters(cfg)
    N = batch_size * T
    saved = activation_floats_per_token(cfg) * bytes_per_value  # per token
    out = {
        "weights": n * bytes_per_value,
        "gradients": n * bytes_per_value,
        "adamw": 2 * n * 4,  # exp_avg and exp_avg_sq, float32
        "activations": N * saved + 16 * N + 8 * T + 4,
    }
    out["total"] = sum(out.values())
    return out


def saved_activation_bytes(model, inputs: torch.Tensor, targets: torch.Tensor) -> int:
    """Bytes that autograd saves for the backward pass of ``cross_entropy(model(inputs), targets)``,
    each storage counted once, the model's parameters left out."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = model(inputs)  # (B, T, V)
        F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    return sum(storages.values())


def _status_kib(field: str) -> int:
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    raise ValueError(
        f"cannot read {field} from /proc/self/status (not Linux): measure memory with your "
        f"system's tools, or torch.cuda.max_memory_allocated() on a GPU."
    )


def rss_bytes() -> int:
    """Resident memory of this process now (Linux)."""
    return _status_kib("VmRSS") * 1024


def peak_rss_bytes() -> int:
    """The most resident memory this process has had so far (Linux ``VmHWM``)."""
    return _status_kib("VmHWM") * 1024
