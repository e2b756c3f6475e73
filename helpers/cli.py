"""The command line's options, parsed and checked, built in Chapter 9 (Loading GPT-2's weights).

:func:`build_parser` is ``python -m helpers``'s argument parser (its ``generate`` and ``perplexity``
commands, each option checked as it is parsed); :func:`decoding_settings` turns the decoding
options into the keyword arguments of ``helpers.generate.generate``; :class:`UsageError` is a bad
option or input. ``helpers.__main__`` runs the commands.

How the decoding options combine: greedy decoding is the default. Giving ``--temperature``,
``--top-k`` or ``--top-p`` switches to sampling (``do_sample=True``), with temperature 1.0 unless
given; ``--temperature 0`` means greedy whatever else is given. ``--num-beams N`` (N > 1) is beam
search, which does not sample, so it cannot be combined with the sampling options. A sampling run
without ``--seed`` draws a seed and reports it with ``--json``, so that any run can be repeated.
"""

from __future__ import annotations

import argparse

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
