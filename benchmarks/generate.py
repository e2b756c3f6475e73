"""Chapter 8 benchmark: greedy generation speed with and without the KV cache, and transformers'
generate.

Run from the repository root:  .venv/bin/python benchmarks/generate.py [--new-tokens 128 256]
[--repeat 3]. The model has GPT-2 small's configuration (124M parameters, context 1024, no
dropout) with its random initial weights (speed does not depend on what the weights are). The same
weights go into transformers' GPT2LMHeadModel through a hub-format checkpoint
(helpers.gpt2.save_hf_checkpoint). For each --new-tokens, each way generates that many ids greedily
from the same prompt; the script checks that they agree id for id, and prints tokens per second
(the median over --repeat runs taken in turns, so a busy machine slows all alike) and the ratios.
--threads sets torch's CPU threads (default: torch's choice, one per core). Timings are
measurements, not tests.
"""

import argparse
import platform
import tempfile
from pathlib import Path

import torch

from helpers.bench import time_turns
from helpers.generate import generate
from helpers.gpt2 import save_hf_checkpoint
from helpers.model import GPTConfig, GPTModel, count_parameters
from helpers.offline import gpt2_encoding


def build(seed: int = 0):
    """GPT-2 small (random weights) and transformers' copy of it."""
    import transformers

    torch.manual_seed(seed)
    model = GPTModel(GPTConfig.from_preset("gpt2-small", drop_rate=0.0)).eval()
    with tempfile.TemporaryDirectory() as directory:
        save_hf_checkpoint(model, directory)
        hf = transformers.GPT2LMHeadModel.from_pretrained(directory).eval()
    return model, hf


def runners(model, hf, idx, new_tokens):
    """The three ways to generate ``new_tokens`` greedy ids; each returns ``(1, T + new)`` ids."""

    def hf_generate():
        return hf.generate(
            idx,
            attention_mask=torch.ones_like(idx),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=50256,
        )

    return {
        "ours, no cache": lambda: generate(model, idx, new_tokens, use_cache=False),
        "ours, KV cache": lambda: generate(model, idx, new_tokens, use_cache=True),
        "transformers": hf_generate,
    }


def tokens_per_second(fns: dict, new_tokens: int, repeat: int) -> tuple[dict[str, float], dict]:
    """Median tokens/s of each function, the functions taking turns ``repeat`` times (so that a
    busy machine slows all alike), and each one's output from the first round."""
    outputs: dict = {}
    with torch.no_grad():
        seconds = time_turns(fns, repeat=repeat, warmup=0, outputs=outputs)
    return {name: new_tokens / s for name, s in seconds.items()}, outputs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's choice)"
    )
    parser.add_argument(
        "--markdown", type=Path, default=None, help="also write the result as a markdown table here"
    )
    parser.add_argument(
        "--skip-no-cache",
        action="store_true",
        help="leave out the slow loop without a cache (to repeat the other two more often)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers

    from helpers.speed import markdown_table, provenance

    header = provenance()
    model, hf = build()
    idx = torch.tensor([gpt2_encoding().encode("Every effort moves you")])  # (1, T)
    for fn in runners(model, hf, idx, 2).values():  # warm-up: one-off costs of a first call
        fn()
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s); "
        f"GPT-2 small config, {count_parameters(model):,} parameters"
    )
    rows, ratios = [], {}
    for new_tokens in args.new_tokens:
        fns = runners(model, hf, idx, new_tokens)
        if args.skip_no_cache:
            del fns["ours, no cache"]
        speed, outputs = tokens_per_second(fns, new_tokens, args.repeat)  # turns, medians
        first = next(iter(outputs.values()))
        assert all(torch.equal(out, first) for out in outputs.values()), "the ids disagree"
        ratio = speed["ours, KV cache"] / speed["transformers"]
        ratios[new_tokens] = ratio
        print(f"greedy, {new_tokens} new tokens, median of {args.repeat} run(s); the ids agree")
        for name, tps in speed.items():
            print(f"  {name:16s} {tps:8.1f} tokens/s")
        print(f"ours (KV cache) vs transformers: {ratio:.2f}x")
        rows.append(
            [
                new_tokens,
                *(f"{speed[name]:.1f}" for name in speed),
                f"{ratio:.2f}x",
            ]
        )
    if args.markdown:
        names = list(fns)
        text = (
            header
            + "\n"
            + f"GPT-2 small configuration ({count_parameters(model):,} parameters, random "
            "weights), float32, batch 1, greedy, "
            f"a prompt of {idx.shape[1]} tokens; for each number of new tokens the median of "
            f"{args.repeat} rounds in which the ways take turns. They give the same ids "
            "(asserted).\n\n"
            + markdown_table(
                ["new tokens", *(f"{name}, tokens/s" for name in names), "ours / transformers"],
                rows,
            )
            + "\n"
            + "Our KV cache generates "
            + " and ".join(f"{r:.2f}x (at {n} tokens)" for n, r in ratios.items())
            + " as many tokens per second as transformers' `generate` on the same weights.\n"
        )
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
        print(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
