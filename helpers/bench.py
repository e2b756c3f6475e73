"""Timing, the one utility every benchmark script in ``benchmarks/`` and every chapter timing uses.

* :func:`time_call`: seconds of one function over several runs (the median by default, or the
  minimum: other processes only ever slow a run down);
* :func:`time_turns`: several functions timed in turns, so that a busy machine slows all alike;
* the measurements the chapters report: :func:`tokenizer_benchmark` (Chapter 1) and
  :func:`throughput_comparison` (Chapter 7); Chapter 3's is
  ``helpers.attention.attention_benchmark``.

Timings are measurements, never assertions: they are printed, and notebook cells that show them are
tagged ``nbval-ignore-output`` because no two runs give the same figures.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

REDUCTIONS = {"median": statistics.median, "min": min, "max": max}


def time_turns(
    fns: dict[str, Callable[[], object]],
    repeat: int = 5,
    warmup: int = 1,
    reduce: str = "median",
    outputs: dict | None = None,
) -> dict[str, float]:
    """Wall-clock seconds of each ``fns[name]()``: after ``warmup`` untimed runs of each, ``repeat``
    rounds in which every function runs once in turn; per name the ``reduce`` (``"median"``,
    ``"min"`` or ``"max"``) of its ``repeat`` times. Given a dict as ``outputs``, each function's
    result of the first timed round is stored in it under its name."""
    if repeat < 1:
        raise ValueError(f"repeat={repeat} must be at least 1.")
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce={reduce!r} is not one of {sorted(REDUCTIONS)}.")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - start)
            if outputs is not None:
                outputs.setdefault(name, out)
    return {name: REDUCTIONS[reduce](t) for name, t in times.items()}


def time_call(
    fn: Callable[[], object], repeat: int = 5, warmup: int = 1, reduce: str = "median"
) -> float:
    """Wall-clock seconds of ``fn()`` over ``repeat`` runs after ``warmup`` untimed ones (the
    median by default; see :func:`time_turns`)."""
    return time_turns({"fn": fn}, repeat, warmup, reduce)["fn"]


def prose_and_code(story: str, n_bytes: int = 1_000_000) -> str:
    """About ``n_bytes`` (at least) of natural text, the same on every run of one Python version:
    ``story``, then the source files at the top of Python's standard library in sorted order
    (code, comments and docstrings) until the text is long enough."""
    import sysconfig
    from pathlib import Path

    pieces, size = [story], len(story.encode("utf-8"))
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        if size >= n_bytes:
            break
        source = path.read_text(encoding="utf-8", errors="replace")
        pieces.append(source)
        size += len(source.encode("utf-8"))
    return "".join(pieces)


def varied_text(story: str, n_bytes: int = 1_000_000, seed: int = 0) -> str:
    """About ``n_bytes`` (at least) of varied text, the same on every run: ``story``, the source of
    Python's ``json`` package, whitespace runs and ``<|endoftext|>`` markers, then pieces of the
    story and the code alternating with random strings over several alphabets (accents, CJK,
    emoji, Greek and Arabic, whitespace, digits and punctuation), drawn with
    ``random.Random(seed)``. The tokenizer tests and ``benchmarks/tokenizer.py`` use it: most of
    its chunks are random, so it is the hard case for a chunk cache."""
    import random
    import sysconfig
    from pathlib import Path

    rng = random.Random(seed)
    code = "".join(
        p.read_text(encoding="utf-8")
        for p in sorted(Path(sysconfig.get_paths()["stdlib"], "json").glob("*.py"))
    )
    alphabets = [
        "abcdefghij ",
        "éèàüößñç ",
        "日本語中文한국어 ",
        "😀🤗🚀👍🏽🇫🇷 ",
        "αβγδ ابتث ",
        " \t\n\r\u00a0\u3000",
        "0123456789.,;:'\"!?()",
    ]
    pieces = [
        story,
        code,
        "   many   spaces\n\n\n  and tabs\t\t\n",
        "before<|endoftext|>after <|endoftext|>\n",
    ]
    while sum(len(p.encode("utf-8")) for p in pieces) < n_bytes:
        alphabet = rng.choice(alphabets)
        pieces.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400))))
        pieces.append(
            rng.choice(
                [
                    story[rng.randrange(min(20000, len(story))) :][:300],
                    code[rng.randrange(len(code)) :][:300],
                ]
            )
        )
    return "".join(pieces)


def encoding_benchmark(texts: dict[str, str], repeat: int = 5) -> dict[str, dict[str, float]]:
    """Encoding speed of our GPT-2 tokenizer against tiktoken on each of ``texts`` (name -> text),
    the three taking turns (:func:`time_turns`, medians): ours without a cache
    (``BPETokenizer(cache=False)``), ours with its chunk cache emptied before each call (so each
    distinct chunk is merged once per call), and tiktoken. Per name: the seconds of each
    (``no_cache_s``, ``ours_s``, ``tiktoken_s``), ``chunks`` and ``distinct_chunks`` (the
    pre-split pieces of the text), ``bytes``, and ``slowdown = ours_s / tiktoken_s``. Asserts that
    all three give the same ids."""
    from helpers.offline import gpt2_encoding, gpt2_tokenizer_files
    from helpers.tokenizer import BPETokenizer

    files = gpt2_tokenizer_files()
    ours = BPETokenizer.from_gpt2_files(files["encoder.json"], files["vocab.bpe"])
    plain = BPETokenizer.from_gpt2_files(files["encoder.json"], files["vocab.bpe"])
    plain.cache = None
    theirs = gpt2_encoding()
    results = {}
    for name, text in texts.items():

        def ours_fresh_cache(text=text):
            ours.cache.clear()  # the cache fills within the call: repeats inside the text only
            return ours.encode_ordinary(text)

        fns = {
            "no_cache_s": lambda text=text: plain.encode_ordinary(text),
            "ours_s": ours_fresh_cache,
            "tiktoken_s": lambda text=text: theirs.encode_ordinary(text),
        }
        outputs: dict = {}
        r = time_turns(fns, repeat=repeat, outputs=outputs)
        if not outputs["no_cache_s"] == outputs["ours_s"] == outputs["tiktoken_s"]:
            raise AssertionError(f"the three encodings of {name!r} differ")
        chunks = ours._split.findall(text)
        r.update(
            chunks=len(chunks),
            distinct_chunks=len(set(chunks)),
            bytes=len(text.encode("utf-8")),
            slowdown=r["ours_s"] / r["tiktoken_s"],
        )
        results[name] = r
    return results


def tokenizer_benchmark(text: str, vocab_size: int = 2000, repeat: int = 5) -> dict[str, float]:
    """Chapter 1's measurements: BPE training time on ``text``, and encoding speed of our GPT-2
    tokenizer against tiktoken on the same text, taking turns (our chunk cache emptied before each
    call, so each distinct chunk is merged once per call; see :func:`encoding_benchmark`)."""
    from helpers.tokenizer import BPETokenizer

    train_s = time_call(lambda: BPETokenizer().train(text, vocab_size), repeat=repeat)
    r = encoding_benchmark({"text": text}, repeat=repeat)["text"]
    n_bytes = r["bytes"]
    return {
        "train_seconds": train_s,
        "ours_encode_seconds": r["ours_s"],
        "tiktoken_encode_seconds": r["tiktoken_s"],
        "ours_MB_per_s": n_bytes / r["ours_s"] / 1e6,
        "tiktoken_MB_per_s": n_bytes / r["tiktoken_s"] / 1e6,
        "slowdown": r["slowdown"],
    }


def _train_step(
    model, inputs: torch.Tensor, targets: torch.Tensor, logits_of: Callable
) -> Callable[[], None]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step():
        logits = logits_of(model(inputs))  # (B, T, V)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if inputs.is_cuda:
            torch.cuda.synchronize()

    return step


def throughput_comparison(cfg, batch_size: int, repeat: int = 5, seed: int = 0) -> dict[str, float]:
    """Chapter 7's benchmark: training tokens per second (forward, cross-entropy, backward, AdamW
    step) of our ``GPTModel(cfg)`` and of ``transformers.GPT2LMHeadModel`` built from the same
    configuration (``helpers.gpt2_config.config_to_hf``), on one random
    ``(batch_size, context_length)`` batch. After a warm-up step each, the two models take turns
    for ``repeat`` rounds (:func:`time_turns`); medians. Returns tokens/s of each and
    ``ratio = ours / transformers`` (above 1: ours is faster). Use ``qkv_bias=True``: GPT-2's
    format always has those biases. ``seed`` seeds the batch and both models' weights, through
    generators and ``fork_rng``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from helpers.gpt2_config import config_to_hf
    from helpers.model import GPTModel, count_parameters

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, cfg.vocab_size, (batch_size, cfg.context_length + 1), generator=g)
    ids = ids.to(
        torch.empty(0).device
    )  # the default device: set it with `with torch.device("cuda"):`
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the weights' initialization; restored when the block ends
        ours, theirs = GPTModel(cfg), GPT2LMHeadModel(GPT2Config(**config_to_hf(cfg)))
    if count_parameters(ours) != count_parameters(theirs):
        raise ValueError("the two models differ in size: build the config with qkv_bias=True.")
    steps = {
        "ours": _train_step(ours, ids[:, :-1], ids[:, 1:], lambda out: out),
        "transformers": _train_step(theirs, ids[:, :-1], ids[:, 1:], lambda out: out.logits),
    }
    seconds = time_turns(steps, repeat=repeat)
    tokens = ids[:, 1:].numel()
    result = {f"{name}_tokens_per_s": tokens / s for name, s in seconds.items()}
    result["ratio"] = result["ours_tokens_per_s"] / result["transformers_tokens_per_s"]
    return result
