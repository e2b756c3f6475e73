"""Chapter 1 benchmark: encoding speed of our GPT-2 tokenizer against tiktoken, and BPE training.

Run from the repository root:  .venv/bin/python benchmarks/tokenizer.py [--markdown PATH]
Three texts: the-verdict (data/the-verdict.txt, fetched if missing); about 1 MB of prose and code
(the story, then Python's standard-library sources, ``helpers.bench.prose_and_code``); and about
1 MB of varied text built from the story, Python's json sources and random strings over several
alphabets (``helpers.bench.varied_text``, the same text as the tokenizer tests). On each, three
encoders take turns (``helpers.bench.encoding_benchmark``): ours without its chunk cache, ours
with the cache emptied before each call, and tiktoken; the script asserts that all three give the
same ids and prints the medians and ratios. Timings are measurements, not tests.
"""

import argparse
from pathlib import Path

from helpers.bench import encoding_benchmark, prose_and_code, time_call, varied_text
from helpers.data import fetch_the_verdict
from helpers.speed import markdown_table, provenance
from helpers.tokenizer import BPETokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--markdown", type=Path, default=None, help="also write a markdown table")
    args = parser.parse_args()
    header = provenance()
    story = fetch_the_verdict(args.data_dir).read_text(encoding="utf-8")
    texts = {
        "the-verdict": story,
        "1 MB of prose and code (the story, Python's stdlib sources)": prose_and_code(story),
        "1 MB of varied text, half random strings (the tests' text)": varied_text(story),
    }
    results = encoding_benchmark(texts, repeat=args.repeat)
    train_s = time_call(lambda: BPETokenizer().train(story, args.vocab_size), repeat=args.repeat)
    rows = []
    for name, r in results.items():
        rows.append(
            [
                name,
                f"{r['bytes']:,}",
                f"{r['chunks']:,} / {r['distinct_chunks']:,}",
                f"{r['no_cache_s'] * 1e3:,.1f}",
                f"{r['ours_s'] * 1e3:,.1f}",
                f"{r['tiktoken_s'] * 1e3:,.2f}",
                f"{r['slowdown']:.1f}x",
                f"{r['no_cache_s'] / r['ours_s']:.1f}x",
            ]
        )
    table = markdown_table(
        [
            "text",
            "bytes",
            "chunks / distinct",
            "ours, no cache, ms",
            "ours, chunk cache, ms",
            "tiktoken, ms",
            "ours / tiktoken (time)",
            "cache speed-up",
        ],
        rows,
    )
    worst = max(r["slowdown"] for r in results.values())
    text = (
        header + "\nGPT-2's tokenizer (`encode_ordinary`); the median of "
        f"{args.repeat} rounds in which the three encoders take turns. Our cache is emptied "
        "before each call, so a chunk is merged once per call and then looked up. All three "
        "give the same ids (asserted).\n\n"
        + table
        + f"\nWith its chunk cache, our pure-Python encoder takes at most {worst:.1f}x "
        "tiktoken's time on these texts. Training a "
        f"{args.vocab_size:,}-token BPE on the story takes {train_s:.2f} s (median of "
        f"{args.repeat}).\n"
    )
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
        print(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
