"""Chapter 3 benchmark: explicit causal attention against torch's scaled_dot_product_attention
(SDPA).

Run from the repository root:  .venv/bin/python benchmarks/attention.py [--device cuda] [--repeat 3]
On GPT-2-sized input by default (batch 8, 1024 tokens, 768 features, 12 heads) it prints, for the
attention core (q, k, v -> context) and for the whole helpers.attention.MultiHeadAttention layer
(explicit path with attn_weights=[] against the SDPA fast path): median forward and backward
times, their ratios, and the memory autograd keeps for the backward pass (on CUDA also the peak).
Timings are measurements, not tests: they change from run to run.
"""

import argparse
import platform

import torch

from helpers.attention import MultiHeadAttention, attention_benchmark, saved_tensor_bytes
from helpers.bench import time_call


def layer_benchmark(batch_size, num_tokens, emb_dim, num_heads, repeat, device):
    """Forward and backward seconds of the whole layer, weights path against fast path."""
    torch.manual_seed(0)
    layer = (
        MultiHeadAttention(emb_dim, emb_dim, num_tokens, num_heads, qkv_bias=True)
        .to(device)
        .train()
    )
    x = torch.randn(batch_size, num_tokens, emb_dim, device=device, requires_grad=True)
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    paths = {"naive": lambda: layer(x, attn_weights=[]), "sdpa": lambda: layer(x)}
    result = {}
    for name, fn in paths.items():

        def forward():
            fn()
            sync()

        def forward_backward():
            fn().sum().backward()
            layer.zero_grad(set_to_none=True)
            x.grad = None
            sync()

        fwd, both = time_call(forward, repeat=repeat), time_call(forward_backward, repeat=repeat)
        result[f"{name}_forward_s"], result[f"{name}_backward_s"] = fwd, max(both - fwd, 0.0)
        result[f"{name}_saved_MiB"] = saved_tensor_bytes(fn)[1] / 2**20
    result["forward_speedup"] = result["naive_forward_s"] / result["sdpa_forward_s"]
    result["backward_speedup"] = result["naive_backward_s"] / max(result["sdpa_backward_s"], 1e-12)
    result["saved_ratio"] = result["naive_saved_MiB"] / result["sdpa_saved_MiB"]
    return result


def report(title, r):
    print(f"\n{title}")
    print(
        f"  {'':6s} {'forward':>10s} {'backward':>10s} {'kept for backward':>18s}"
        + (" peak" if "naive_peak_MiB" in r else "")
    )
    for path in ["naive", "sdpa"]:
        peak = f" {r[f'{path}_peak_MiB']:8.1f} MiB" if f"{path}_peak_MiB" in r else ""
        print(
            f"  {path:6s} {r[f'{path}_forward_s'] * 1e3:8.1f}ms "
            f"{r[f'{path}_backward_s'] * 1e3:8.1f}ms {r[f'{path}_saved_MiB']:14.1f} MiB{peak}"
        )
    print(
        f"  SDPA: {r['forward_speedup']:.1f}x faster forward, {r['backward_speedup']:.1f}x faster "
        f"backward, {r['saved_ratio']:.1f}x less memory kept for backward"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-tokens", type=int, default=1024)
    parser.add_argument("--emb-dim", type=int, default=768)
    parser.add_argument("--num-heads", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-layer", action="store_true", help="time the attention core only")
    args = parser.parse_args()
    shape = (args.batch_size, args.num_tokens, args.emb_dim, args.num_heads)
    device = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else f"{platform.machine()} CPU"
    )
    print(
        f"{device}, {torch.get_num_threads()} threads, torch {torch.__version__}, Python "
        f"{platform.python_version()}"
    )
    print(
        f"input (B, T, C) = ({shape[0]}, {shape[1]}, {shape[2]}), {shape[3]} heads, float32, "
        f"median of {args.repeat}"
    )
    report(
        "attention core: q, k, v (B, h, T, d_h) -> context",
        attention_benchmark(*shape, repeat=args.repeat, device=args.device),
    )
    if not args.skip_layer:
        report(
            "whole layer: helpers.attention.MultiHeadAttention, attn_weights=[] vs the fast path",
            layer_benchmark(*shape, repeat=args.repeat, device=args.device),
        )


if __name__ == "__main__":
    main()
