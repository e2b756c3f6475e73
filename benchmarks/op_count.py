"""Appendix benchmark: how many operations one cached generation step dispatches, ours against
transformers' GPT2LMHeadModel.

Run from the repository root:  .venv/bin/python benchmarks/op_count.py [--markdown PATH]
A count, not a timing: the same on every run. Both models have GPT-2 small's layout (12 blocks,
12 heads) at a width of 96 and a vocabulary of 500 (the count of operations does not depend on the
width); after a prompt of 4 tokens fills each one's cache, torch.profiler counts the aten
operations of the forward pass for one new token, and the operations inside them (views,
copies, scalar conversions) too.
"""

import argparse
import tempfile
from collections import Counter
from pathlib import Path

import torch
from torch.profiler import profile

from helpers.gpt2 import save_hf_checkpoint
from helpers.kvcache import KVCache
from helpers.model import GPTConfig, GPTModel
from helpers.speed import markdown_table, provenance


def aten_ops(fn) -> Counter:
    """How many times ``fn()`` calls each aten operation, nested calls included."""
    with profile() as prof:
        fn()
    return Counter({e.key: e.count for e in prof.key_averages() if e.key.startswith("aten::")})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", type=Path, default=None, help="also write a markdown table")
    args = parser.parse_args()
    import transformers

    torch.manual_seed(0)
    cfg = GPTConfig.from_preset("gpt2-small", emb_dim=96, vocab_size=500, drop_rate=0.0)
    model = GPTModel(cfg).eval()
    with tempfile.TemporaryDirectory() as directory:
        save_hf_checkpoint(model, directory)
        hf = transformers.GPT2LMHeadModel.from_pretrained(directory).eval()
    prompt, new = torch.tensor([[1, 2, 3, 4]]), torch.tensor([[5]])
    with torch.no_grad():
        cache = KVCache(max_len=8)
        model(prompt, cache=cache)
        past = hf(prompt, use_cache=True).past_key_values
        counts = {
            "ours": aten_ops(lambda: model(new, cache=cache)),
            "transformers": aten_ops(lambda: hf(new, past_key_values=past, use_cache=True)),
        }
    totals = {name: sum(c.values()) for name, c in counts.items()}
    common = (counts["ours"] + counts["transformers"]).most_common(8)
    rows = [[name, counts["ours"][name], counts["transformers"][name]] for name, _ in common]
    rows.append(["**all aten operations**", totals["ours"], totals["transformers"]])
    text = (
        provenance()
        + f"\nOne cached generation step (one new token after a prompt of 4) of GPT-2's layout, "
        f"{cfg.n_layers} blocks; aten operations counted by torch.profiler, nested ones "
        "included; the eight most frequent, then all.\n\n"
        + markdown_table(["operation", "ours", "transformers"], rows)
        + f"\nOur step dispatches {totals['ours'] / totals['transformers']:.2f}x as many "
        "operations as transformers'.\n"
    )
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
