"""Appendix benchmark: greedy generation with no cache, Chapter 8's KV cache, a pre-allocated cache,
and several prompts batched with padding.

Run from the repository root:  .venv/bin/python benchmarks/inference_speed.py [--repeat 3]
Writes book/tables/inference_speed.md. The model has GPT-2 small's configuration (124M parameters)
with random weights (speed does not depend on their values). Each way of generating produces
--new-tokens ids greedily; the script asserts that all ways give the same ids, then reports tokens
per second (the fastest of --repeat rounds in which the ways take turns, so a busy machine slows all
alike). Timings are measurements, not tests.
"""

import argparse
from pathlib import Path

import torch

from helpers.bench import time_turns
from helpers.generate import generate
from helpers.inference import generate_batched, generate_static
from helpers.kvcache import KVCache
from helpers.model import GPTConfig, GPTModel
from helpers.speed import markdown_table, provenance


def generate_grown(model, idx: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    """Greedy decoding with a cache that grows by ``torch.cat`` at every step (``KVCache()``)."""
    cache, out, new = KVCache(), idx, idx
    for _ in range(max_new_tokens):
        new = model(new, cache=cache)[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1)
        out = torch.cat([out, new], dim=1)
    return out


def timed_turns(fns: dict, repeat: int) -> tuple[dict[str, float], dict]:
    """The fastest seconds of each function (taking turns ``repeat`` times) and its first output."""
    outputs: dict = {}  # the minimum: others on the machine only slow a run down
    seconds = time_turns(fns, repeat=repeat, warmup=0, reduce="min", outputs=outputs)
    return seconds, outputs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument(
        "--prompt-lengths",
        default="16,5,9,12,7,14,3,10",
        help="the batch's prompts; the first is the single prompt",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--out", default="book/tables/inference_speed.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    header = provenance()
    torch.manual_seed(0)
    model = GPTModel(GPTConfig.from_preset("gpt2-small", drop_rate=0.0)).eval()
    g = torch.Generator().manual_seed(1)
    lengths = [int(n) for n in args.prompt_lengths.split(",")]
    prompts = [torch.randint(0, 50257, (n,), generator=g).tolist() for n in lengths]
    n = args.new_tokens
    idx = torch.tensor([prompts[0]])  # (1, T)
    with torch.no_grad():
        (
            generate_static(model, idx, 2),
            generate(model, idx, 2),
        )  # warm-up: one-off costs of a first call
        single = {
            "no cache (recompute every token)": lambda: generate(model, idx, n, use_cache=False),
            "KV cache, grown with torch.cat": lambda: generate_grown(model, idx, n),
            "KV cache, pre-allocated (generate_static)": lambda: generate_static(model, idx, n),
            "Chapter 8's generate (pre-allocated)": lambda: generate(model, idx, n),
        }
        s_single, out = timed_turns(single, args.repeat)
        first = next(iter(out.values()))
        assert all(torch.equal(o, first) for o in out.values()), "the single-prompt ids disagree"
        batch = {
            f"{len(prompts)} prompts one at a time (KV cache)": lambda: [
                generate(model, torch.tensor([p]), n)[0].tolist() for p in prompts
            ],
            f"{len(prompts)} prompts in one padded batch (pre-allocated cache, mask)": lambda: (
                generate_batched(model, prompts, n)
            ),
        }
        s_batch, out = timed_turns(batch, args.repeat)
        one_by_one, batched = out.values()
        assert one_by_one == batched, "batched generation gave other ids than one prompt at a time"
    rows = []
    base = n / s_single["no cache (recompute every token)"]
    for name, s in s_single.items():
        rows.append([name, 1, f"{n / s:,.1f}", f"{n / s / base:.1f}x"])
    for name, s in s_batch.items():
        rows.append(
            [
                name,
                len(prompts),
                f"{len(prompts) * n / s:,.1f}",
                f"{len(prompts) * n / s / base:.1f}x",
            ]
        )
    names = list(s_batch)
    text = (
        header + f"\nGPT-2 small configuration (124M parameters, random weights), float32, greedy, "
        f"{n} new tokens per prompt; prompts of {', '.join(map(str, lengths))} tokens (the "
        f"single-prompt rows use the first); the fastest of {args.repeat} rounds.\n\n"
        + markdown_table(
            ["generation", "prompts", "new tokens/s (all prompts)", "vs no cache"], rows
        )
        + "\nAll the single-prompt ways gave the same ids, and the padded batch gave each "
        "prompt the "
        f"same ids as generating it alone (both asserted by the script). Batching made "
        f"{len(prompts)} prompts {s_batch[names[0]] / s_batch[names[1]]:.1f}x faster than one at "
        "a time.\n"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
