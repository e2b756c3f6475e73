"""The book's command line, built in Chapter 8 (Loading GPT-2's weights): ``python -m helpers``.

* ``generate PROMPT``: continue a prompt with GPT-2 (or any checkpoint in its format), greedily,
  by sampling, or by beam search (``helpers.generate.generate``, Chapter 7);
* ``perplexity FILE``: the sliding-window perplexity of a text file (``helpers.perplexity``).

``--model`` is resolved by ``helpers.gpt2.load_hf_checkpoint``: ``gpt2``, ``gpt2-medium``,
``gpt2-large``, ``gpt2-xl`` or their hub ids (downloaded once into the Hugging Face cache), or a
directory with ``config.json`` and ``model.safetensors`` (or that file itself). Text is tokenized
with GPT-2's tokenizer (``helpers.offline.gpt2_encoding``, no network needed).

How the decoding options combine: greedy decoding is the default. Giving ``--temperature``,
``--top-k`` or ``--top-p`` switches to sampling (``do_sample=True``), with temperature 1.0 unless
given; ``--temperature 0`` means greedy whatever else is given. ``--num-beams N`` (N > 1) is beam
search, which does not sample, so it cannot be combined with the sampling options. A sampling run
without ``--seed`` draws a seed and reports it with ``--json``, so that any run can be repeated.
Generation stops at ``<|endoftext|>``, which is not printed.

Errors that a user can fix (an unknown model, a missing or corrupt file, no network and no cached
copy, a bad option) print one sentence on stderr and exit with status 2, as argparse does for a
bad argument. torch is imported only once a command runs, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EOT = "<|endoftext|>"
EOT_ID = 50256
MODEL_HELP = (
    "gpt2 (the default), gpt2-medium, gpt2-large, gpt2-xl or a hub id such as "
    "openai-community/gpt2 (downloaded once, then read from the Hugging Face cache); or a "
    "directory holding config.json and model.safetensors, or such a .safetensors file"
)
MODELS_EPILOG = """\
models:
  --model gpt2 downloads OpenAI's GPT-2 small (124M parameters, about 500 MB) from
  the Hugging Face hub the first time, resuming an interrupted download and checking
  the file's sha256, and reads it from the cache after that. HF_HUB_OFFLINE=1 keeps
  it off the network. Only safetensors files are read, never pickles.

exit status:
  0 on success; 2 for a bad option, an unknown model, a missing or corrupt file, or
  no network and no cached copy (one sentence on stderr says which).
"""
MAIN_EPILOG = (
    """\
examples:
  python -m helpers generate "Every effort moves you"
  python -m helpers generate "Every effort moves you" --top-k 50 --temperature 0.8
  python -m helpers generate "Every effort moves you" --num-beams 4 --json
  python -m helpers generate "Every effort moves you" --model path/to/checkpoint
  python -m helpers perplexity data/the-verdict.txt --model gpt2-medium --stride 512

"""
    + MODELS_EPILOG
)
GENERATE_EPILOG = (
    """\
decoding:
  Greedy (the most probable token at each step) unless you ask otherwise:
    --temperature, --top-k, --top-p  sample, after these filters (temperature 1
                                     unless given)
    --temperature 0                  greedy, whatever else is given
    --num-beams N                    beam search with N beams (it does not sample)
  A sampling run without --seed draws a seed; --json reports it, so that any run
  can be repeated. Generation stops at <|endoftext|>. An empty prompt "" starts
  from <|endoftext|>, as GPT-2's unconditional samples do.

examples:
  python -m helpers generate "Every effort moves you"
  python -m helpers generate "Every effort moves you" --top-p 0.9 --seed 1
  python -m helpers generate "Every effort moves you" --num-beams 5 --json

"""
    + MODELS_EPILOG
)
PERPLEXITY_EPILOG = (
    """\
how it is measured:
  The text is cut into windows of --context tokens that start --stride tokens
  apart; each window scores only the tokens that no earlier window scored, so every
  token is predicted once, with at least context - stride tokens before it. A
  smaller stride gives more context and costs more forward passes; --stride equal
  to --context gives non-overlapping windows. The loss is the mean negative
  log-likelihood per scored token (nats); the perplexity is exp(loss).

examples:
  python -m helpers perplexity data/the-verdict.txt
  python -m helpers perplexity data/the-verdict.txt --model gpt2-medium --stride 256
  python -m helpers perplexity notes.txt --model path/to/checkpoint --json

"""
    + MODELS_EPILOG
)


class UsageError(Exception):
    """A bad option or input: one sentence, exit status 2."""


MAX_NEW_TOKENS = 100_000  # one forward pass each: more is hours of work, ask again to continue
MAX_BEAMS = 100  # each beam holds its own copy of the cache and a row of V log-probabilities


def _integer(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None


def _positive(value: str) -> int:
    n = _integer(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return n


def _non_negative(value: str) -> int:
    n = _integer(value)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{value} is not 0 or a positive integer")
    return n


def _at_most(limit: int, parse):
    def check(value: str) -> int:
        n = parse(value)
        if n > limit:
            raise argparse.ArgumentTypeError(
                f"{value} is more than {limit:,}, this command's limit"
            )
        return n

    check.__name__ = parse.__name__
    return check


def _seed(value: str) -> int:
    n = _integer(value)
    if not 0 <= n < 2**64:
        raise argparse.ArgumentTypeError(
            f"{value} is not in 0..2**64 - 1 (torch takes 64-bit seeds)"
        )
    return n


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None


def _temperature(value: str) -> float:
    t = _float(value)
    if not 0 <= t < float("inf"):
        raise argparse.ArgumentTypeError(f"{value} is not 0 or a positive number")
    return t


def _probability(value: str) -> float:
    p = _float(value)
    if not 0 < p <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not in (0, 1]")
    return p


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="python -m helpers",
        formatter_class=formatter,
        epilog=MAIN_EPILOG,
        description="Generate text with GPT-2, or measure its perplexity on a text file, "
        "with the model\n"
        'built in the book "Building GPT-2 from Scratch" holding OpenAI\'s weights or any\n'
        "checkpoint in the same format.",
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        title="commands (python -m helpers COMMAND --help for more)",
    )

    gen = commands.add_parser(
        "generate",
        formatter_class=formatter,
        epilog=GENERATE_EPILOG,
        help="continue a prompt",
        description="Continue PROMPT and print the text.",
    )
    gen.add_argument("prompt", metavar="PROMPT", help="the text to continue (quote it)")
    gen.add_argument("--model", default="gpt2", metavar="MODEL", help=MODEL_HELP)
    gen.add_argument(
        "--max-new-tokens",
        type=_at_most(MAX_NEW_TOKENS, _non_negative),
        default=50,
        metavar="N",
        help=f"generate at most N tokens (default: 50, at most {MAX_NEW_TOKENS:,})",
    )
    gen.add_argument(
        "--temperature",
        type=_temperature,
        metavar="T",
        help="sample with temperature T: below 1 sharper, above 1 flatter, 0 greedy",
    )
    gen.add_argument(
        "--top-k", type=_positive, metavar="K", help="sample among the K most probable tokens"
    )
    gen.add_argument(
        "--top-p",
        type=_probability,
        metavar="P",
        help="sample among the most probable tokens that together carry probability P (0 < P <= 1)",
    )
    gen.add_argument(
        "--num-beams",
        type=_at_most(MAX_BEAMS, _positive),
        default=1,
        metavar="N",
        help=f"beam search with N beams (default: 1, no beam search; at most {MAX_BEAMS})",
    )
    gen.add_argument(
        "--seed",
        type=_seed,
        metavar="S",
        help="seed for sampling (0 to 2**64 - 1), to repeat a run exactly",
    )
    gen.add_argument(
        "--json", action="store_true", help="print one JSON object instead of the text"
    )

    ppl = commands.add_parser(
        "perplexity",
        formatter_class=formatter,
        epilog=PERPLEXITY_EPILOG,
        help="perplexity of a text file",
        description="Measure how well the model predicts the text in FILE.",
    )
    ppl.add_argument("file", metavar="FILE", help="a UTF-8 text file")
    ppl.add_argument("--model", default="gpt2", metavar="MODEL", help=MODEL_HELP)
    ppl.add_argument(
        "--context",
        type=_positive,
        metavar="N",
        help="window length in tokens (default: the model's context length, 1024 for GPT-2)",
    )
    ppl.add_argument(
        "--stride",
        type=_positive,
        metavar="N",
        help="tokens between window starts, at most --context (default: half the context)",
    )
    ppl.add_argument(
        "--json", action="store_true", help="print one JSON object instead of the text"
    )
    return parser


def _load(model_arg: str):
    from helpers.gpt2 import load_hf_checkpoint

    return load_hf_checkpoint(model_arg)


def _encoding():
    from helpers.offline import gpt2_encoding

    return gpt2_encoding()


def decoding_settings(args) -> dict:
    """The keyword arguments for ``helpers.generate.generate`` that the options ask for."""
    sampling_options = [
        name for name in ("temperature", "top_k", "top_p") if getattr(args, name) is not None
    ]
    temperature = 1.0 if args.temperature is None else args.temperature
    do_sample = bool(sampling_options) and temperature > 0
    if do_sample and args.num_beams > 1:
        flags = ", ".join("--" + name.replace("_", "-") for name in sampling_options)
        raise UsageError(
            f"--num-beams {args.num_beams} (beam search) does not sample, so it cannot be combined "
            f"with {flags}: drop one or the other."
        )
    seed = args.seed
    if do_sample and seed is None:
        import random

        seed = random.SystemRandom().randrange(2**31)
    return dict(
        temperature=temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        num_beams=args.num_beams,
        do_sample=do_sample,
        seed=seed,
    )


def run_generate(args) -> dict:
    import torch

    from helpers.generate import generate

    settings = decoding_settings(args)  # checked before the (slow) model load
    model, enc = _load(args.model), _encoding()
    vocab, context = model.cfg.vocab_size, model.cfg.context_length
    eos_id = EOT_ID if vocab > EOT_ID else None
    prompt_ids = enc.encode(args.prompt, allowed_special={EOT})
    if not prompt_ids:
        if eos_id is None:
            raise UsageError(
                "the prompt is empty and this model's vocabulary has no <|endoftext|> to start "
                "from: give a prompt."
            )
        prompt_ids = [eos_id]
    if len(prompt_ids) > context:
        raise UsageError(
            f"the prompt has {len(prompt_ids)} tokens but the model reads at most {context}: "
            f"shorten it."
        )
    if max(prompt_ids) >= vocab:
        raise UsageError(
            f"the prompt has token id {max(prompt_ids)}, outside this model's vocabulary of "
            f"{vocab} tokens: the model was not trained with GPT-2's tokenizer."
        )
    idx = torch.tensor([prompt_ids])  # (1, T)
    out = generate(model, idx, args.max_new_tokens, eos_id=eos_id, **settings)
    new_ids = out[0, len(prompt_ids) :].tolist()
    stopped = "max_new_tokens"
    if eos_id is not None and eos_id in new_ids:
        new_ids, stopped = new_ids[: new_ids.index(eos_id)], "eos"
    completion = enc.decode(new_ids)
    decoding = (
        "beam search"
        if settings["num_beams"] > 1
        else "sampling"
        if settings["do_sample"]
        else "greedy"
    )
    return {
        "model": args.model,
        "prompt": args.prompt,
        "completion": completion,
        "text": args.prompt + completion,
        "prompt_tokens": len(prompt_ids),
        "new_tokens": len(new_ids),
        "token_ids": new_ids,
        "stopped": stopped,
        "decoding": decoding,
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "num_beams": args.num_beams,
        "seed": settings["seed"],
    }


def run_perplexity(args) -> dict:
    from helpers.perplexity import sliding_window_perplexity

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(
            f"{path} is a directory: give the path of a UTF-8 text file."
            if path.is_dir()
            else f"{path} is not a regular file: give the path of a UTF-8 text file."
            if path.exists()
            else f"there is no file at {path}: give the path of a UTF-8 text file."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            f"{path} is not UTF-8 text: convert it, e.g. with iconv -t UTF-8."
        ) from None
    model, enc = _load(args.model), _encoding()
    ids = enc.encode(text, allowed_special={EOT})
    if len(ids) < 2:
        raise UsageError(f"{path} holds {len(ids)} token(s): perplexity needs at least 2.")
    if max(ids) >= model.cfg.vocab_size:
        raise UsageError(
            f"{path} has token id {max(ids)}, outside this model's vocabulary of "
            f"{model.cfg.vocab_size} tokens: the model was not trained with GPT-2's tokenizer."
        )
    context = model.cfg.context_length if args.context is None else args.context
    if context > model.cfg.context_length:
        raise UsageError(
            f"--context {context} is longer than the model's context of {model.cfg.context_length} "
            f"tokens: use at most {model.cfg.context_length}."
        )
    if context < 2:
        raise UsageError(
            f"--context {context} is too short: a window needs one token to read "
            "and one "
            f"to score; use at least 2."
        )
    stride = max(1, context // 2) if args.stride is None else args.stride
    if stride > context:
        raise UsageError(
            f"--stride {stride} is larger than --context {context}: the tokens between two windows "
            f"would never be scored; use a stride of at most {context}."
        )
    result = sliding_window_perplexity(model, ids, context=context, stride=stride)
    return {
        "model": args.model,
        "file": str(path),
        "file_tokens": len(ids),
        "context": result.context,
        "stride": result.stride,
        "windows": result.n_windows,
        "tokens_scored": result.n_tokens,
        "loss": result.loss,
        "perplexity": result.perplexity,
    }


def _print_perplexity(r: dict) -> None:
    print(f"model:         {r['model']}")
    print(f"file:          {r['file']} ({r['file_tokens']:,} tokens)")
    print(
        f"windows:       {r['windows']:,} of at most {r['context']:,} tokens, "
        f"stride {r['stride']:,}"
    )
    print(f"tokens scored: {r['tokens_scored']:,}")
    print(f"loss:          {r['loss']:.4f} nats per token")
    print(f"perplexity:    {r['perplexity']:.2f}")


def _tolerant(stream) -> None:
    """Let ``stream`` print what its encoding cannot hold (a lone surrogate from a command line
    of undecodable bytes, Chinese under cp1252) as ``\\uXXXX`` escapes instead of crashing."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        try:
            reconfigure(errors="backslashreplace")
        except (ValueError, OSError):  # a stream that cannot change (closed, or already written)
            pass


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from helpers.gpt2 import CheckpointError

    try:
        result = run_generate(args) if args.command == "generate" else run_perplexity(args)
    except (CheckpointError, UsageError) as err:
        print(f"{parser.prog} {args.command}: error: {err}", file=sys.stderr)
        return 2
    _tolerant(sys.stdout)
    if args.json:  # ASCII escapes: valid JSON and valid UTF-8 whatever the text holds
        print(json.dumps(result, ensure_ascii=True))
    elif args.command == "generate":
        print(result["text"])
    else:
        _print_perplexity(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
