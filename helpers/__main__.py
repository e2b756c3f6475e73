"""The book's command line, built in Chapter 9 (Loading GPT-2's weights): ``python -m helpers``.

* ``generate PROMPT``: continue a prompt with GPT-2 (or any checkpoint in its format), greedily,
  by sampling, or by beam search (``helpers.generate.generate``, Chapter 8);
* ``perplexity FILE``: the sliding-window perplexity of a text file (``helpers.perplexity``).

``--model`` is resolved by ``helpers.gpt2.load_hf_checkpoint``: ``gpt2``, ``gpt2-medium``,
``gpt2-large``, ``gpt2-xl`` or their hub ids (downloaded once into the Hugging Face cache), or a
directory with ``config.json`` and ``model.safetensors`` (or that file itself). Text is tokenized
with GPT-2's tokenizer (``helpers.offline.gpt2_encoding``, no network needed).

The options are parsed and checked by ``helpers.cli`` (which also says how the decoding options
combine). Generation stops at ``<|endoftext|>``, which is not printed.

Errors that a user can fix (an unknown model, a missing or corrupt file, no network and no cached
copy, a bad option) print one sentence on stderr and exit with status 2, as argparse does for a
bad argument. torch is imported only once a command runs, so ``--help`` answers at once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers.cli import UsageError, build_parser, decoding_settings

EOT = "<|endoftext|>"
EOT_ID = 50256


def _load(model_arg: str):
    from helpers.gpt2 import load_hf_checkpoint

    return load_hf_checkpoint(model_arg)


def _encoding():
    from helpers.offline import gpt2_encoding

    return gpt2_encoding()


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
    from helpers.gpt2_config import CheckpointError

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
