"""helpers.offline (Chapter 1): tiktoken's "gpt2" encoding loads with no network."""

import subprocess
import sys
import textwrap

from helpers.offline import GPT2_FILES, gpt2_tokenizer_files, prefill_tiktoken_cache, sha256_file


def test_shipped_files_match_tiktokens_pins():
    files = gpt2_tokenizer_files()
    for name, (_, expected) in GPT2_FILES.items():
        assert sha256_file(files[name]) == expected


def test_pins_are_tiktokens_own():
    """Our copy of the URLs and hashes must be the ones tiktoken itself uses for "gpt2"."""
    import inspect

    from tiktoken_ext import openai_public

    source = inspect.getsource(openai_public.gpt2)
    for url, sha in GPT2_FILES.values():
        assert url in source and sha in source


def test_get_encoding_works_in_a_fresh_process_with_no_network(tmp_path):
    """A new interpreter, an empty cache folder, and every socket refused: get_encoding("gpt2")
    still works."""
    prefill_tiktoken_cache(tmp_path)
    script = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network disabled for this test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        import tiktoken
        enc = tiktoken.get_encoding("gpt2")
        print(enc.encode("Hello, world! <|endoftext|>", allowed_special="all"))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={"TIKTOKEN_CACHE_DIR": str(tmp_path), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[15496, 11, 995, 0, 220, 50256]"


def test_prefill_replaces_a_corrupt_cache_entry(tmp_path):
    cache = prefill_tiktoken_cache(tmp_path)
    entries = sorted(cache.iterdir())
    assert len(entries) == 2
    entries[0].write_bytes(b"corrupt")
    prefill_tiktoken_cache(tmp_path)
    assert {sha256_file(p) for p in cache.iterdir()} == {sha for _, sha in GPT2_FILES.values()}
