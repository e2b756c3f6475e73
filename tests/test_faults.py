"""Issue 18: bad input and faults give one sentence, lose nothing and never hang. Each test is one
numbered case of the issue; the network cases use tests/faultserver.py on 127.0.0.1."""

import errno
import io
import json
import os
import re
import shutil
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from faultserver import BODY, FaultServer

import helpers.data
import helpers.gpt2
from helpers.__main__ import main
from helpers.beam import beam_search
from helpers.data import download, fetch_the_verdict
from helpers.generate import generate
from helpers.gpt2 import load_hf_checkpoint, save_hf_checkpoint
from helpers.gpt2_config import (
    CheckpointError,
    CheckpointFormatError,
    CheckpointNotFoundError,
    HubUnreachableError,
)
from helpers.hub import resolve_checkpoint
from helpers.model import GPTConfig, GPTModel
from helpers.offline import GPT2_FILES, gpt2_encoding, prefill_tiktoken_cache, sha256_file
from helpers.tokenizer import BPETokenizer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny model with GPT-2's vocabulary in the hub's format."""
    torch.manual_seed(0)
    model = GPTModel(
        GPTConfig(
            vocab_size=50257, context_length=32, emb_dim=16, n_heads=2, n_layers=1, drop_rate=0.0
        )
    ).eval()
    return save_hf_checkpoint(model, tmp_path_factory.mktemp("tiny") / "ckpt"), model


def copy_with_config(tiny_dir: Path, where: Path, change) -> Path:
    shutil.copytree(tiny_dir, where)
    config = json.loads((where / "config.json").read_text())
    config = change(config)
    (where / "config.json").write_text(json.dumps(config))
    return where


def one_sentence(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text and text.endswith((".", ")")), text
    return text


# -- 2. a bad config.json --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, match",
    [
        (lambda c: {**c, "n_head": 3}, "n_head=3 does not divide"),
        (lambda c: {**c, "n_layer": 0}, "n_layer=0, which is not a positive integer"),
        (lambda c: {**c, "n_layer": "1"}, "n_layer='1', which is not a positive integer"),
        (
            lambda c: {**c, "resid_pdrop": 1.5, "embd_pdrop": 1.5, "attn_pdrop": 1.5},
            "resid_pdrop=1.5 is not a dropout rate",
        ),
        (lambda c: [c], "holds list"),
        (lambda c: None, "holds NoneType"),
        (
            lambda c: {**c, "layer_norm_epsilon": "1e-5"},
            "layer_norm_epsilon='1e-5', which is not a",
        ),
    ],
)
def test_bad_config_is_one_sentence(tiny, tmp_path, change, match):
    where = copy_with_config(tiny[0], tmp_path / "bad", change)
    with pytest.raises(CheckpointFormatError, match=match) as info:
        load_hf_checkpoint(where)
    one_sentence(info.value)


@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_a_directory_in_place_of_a_checkpoint_file(tiny, tmp_path, name):
    where = tmp_path / "ckpt"
    shutil.copytree(tiny[0], where)
    (where / name).unlink()
    (where / name).mkdir()
    match = "must be readable files|no model.safetensors"
    with pytest.raises(CheckpointError, match=match) as info:
        load_hf_checkpoint(where)
    one_sentence(info.value)


# -- 3. the config is checked against the tensors before the model is allocated ------------------
def test_a_huge_n_positions_allocates_nothing(tiny, tmp_path, monkeypatch):
    where = copy_with_config(tiny[0], tmp_path / "huge", lambda c: {**c, "n_positions": 1048576})
    built = []
    monkeypatch.setattr(helpers.gpt2, "GPTModel", lambda cfg: built.append(cfg) or GPTModel(cfg))
    with pytest.raises(CheckpointFormatError, match=r"'wpe.weight' has shape \(32, 16\)"):
        load_hf_checkpoint(where)
    assert built == []  # refused before any model was built


# -- 4. values that pass the checks but used to crash ---------------------------------------------
def test_a_tiny_temperature_samples_the_greedy_token(tiny):
    model, idx = tiny[1], torch.tensor([[464, 3290, 318]])
    greedy = generate(model, idx, 5)
    assert torch.equal(generate(model, idx, 5, temperature=1e-39, do_sample=True, seed=1), greedy)


def test_a_seed_beyond_64_bits_is_one_sentence(tiny):
    with pytest.raises(ValueError, match=r"seed=18446744073709551616 must be an integer in 0\.\."):
        generate(tiny[1], torch.tensor([[1, 2]]), 3, do_sample=True, seed=2**64)


class EosLover:
    """A stand-in model whose next token is always most likely token 0 (the end of text)."""

    cfg = SimpleNamespace(vocab_size=8, context_length=64)

    def __call__(self, idx):
        logits = torch.full((*idx.shape, 8), -20.0)
        logits[..., 0] = 0.0
        return logits


def test_beam_search_allocates_for_the_tokens_it_makes_not_for_max_new_tokens():
    out = beam_search(EosLover(), torch.tensor([[3, 4]]), 10**12, 2, eos_id=0, use_cache=False)
    assert out.tolist() == [[3, 4, 0]]


@pytest.mark.parametrize(
    "args, match",
    [
        (("generate", "hi", "--num-beams", 2, "--max-new-tokens", 10**12), "more than 100,000"),
        (
            ("generate", "hi", "--seed", 2**64),
            r"--seed: 18446744073709551616 is not in 0\.\.2\*\*64",
        ),
        (("generate", "hi", "--seed", "x"), "--seed: 'x' is not an integer"),
        (("generate", "hi", "--num-beams", 10**6), "--num-beams: 1000000 is more than 100"),
        (("perplexity", "STORY", "--context", 1), "--context 1 is too short"),
    ],
)
def test_cli_bounds_the_work_and_says_so(tiny, tmp_path, capsys, args, match):
    story = tmp_path / "story.txt"
    story.write_text("It had always been his fate.", encoding="utf-8")
    args = [str(story) if a == "STORY" else str(a) for a in args]
    try:
        status = main([*args[:2], "--model", str(tiny[0]), *args[2:]])
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    assert status == 2 and out == "" and "Traceback" not in err
    assert re.search(match, err.strip().splitlines()[-1]), err


def test_cli_a_tiny_temperature_runs(tiny, capsys):
    assert (
        main(
            [
                "generate",
                "hi",
                "--model",
                str(tiny[0]),
                "--temperature",
                "1e-39",
                "--max-new-tokens",
                "3",
            ]
        )
        == 0
    )


# -- 5. printing whatever the terminal's encoding --------------------------------------------------
@pytest.mark.parametrize(
    "encoding, prompt, json_flag",
    [
        ("cp1252", "日本語のテキスト", ()),
        ("utf-8", "broken \udcff bytes", ()),
        ("utf-8", "broken \udcff bytes", ("--json",)),
    ],
)
def test_printing_never_crashes(tiny, monkeypatch, encoding, prompt, json_flag):
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding=encoding, errors="strict")
    monkeypatch.setattr(sys, "stdout", stdout)
    status = main(
        ["generate", prompt, "--model", str(tiny[0]), "--max-new-tokens", "2", *json_flag]
    )
    stdout.flush()
    assert status == 0
    text = raw.getvalue().decode(encoding)  # strict: what was printed is valid in that encoding
    if json_flag:
        assert json.loads(text)["prompt"] == prompt
    else:
        assert text.startswith(prompt.encode(encoding, "backslashreplace").decode(encoding))


# -- 6. every download has an overall deadline and a size cap -------------------------------------
def test_a_slow_server_meets_the_deadline(tmp_path):
    with (
        FaultServer("slow") as server,
        pytest.raises(ConnectionError, match="deadline=0.3") as info,
    ):
        download(server.url(), tmp_path / "f.bin", timeout=2, deadline=0.3)
    one_sentence(info.value)
    assert list(tmp_path.iterdir()) == []


def test_fetch_the_verdict_meets_its_deadline(tmp_path):
    with FaultServer("slow") as server, pytest.raises(FileNotFoundError, match="deadline=0.3"):
        fetch_the_verdict(tmp_path, url=server.url(), timeout=2, deadline=0.3)
    assert list(tmp_path.iterdir()) == []


def test_an_endless_body_is_capped(tmp_path):
    with (
        FaultServer("endless") as server,
        pytest.raises(ConnectionError, match="max_bytes=100,000"),
    ):
        download(server.url(), tmp_path / "f.bin", max_bytes=100_000)
    assert list(tmp_path.iterdir()) == []


def hub_at(monkeypatch, server):
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hc, "ENDPOINT", f"http://127.0.0.1:{server.port}")
    monkeypatch.setattr(
        hc,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        f"http://127.0.0.1:{server.port}/{{repo_id}}/resolve/{{revision}}/{{filename}}",
    )


@pytest.mark.parametrize("mode", ["hub-cut", "stall"])
def test_the_hub_path_meets_its_deadline(tmp_path, monkeypatch, mode):
    """A server that cuts the file and ignores Range made huggingface_hub retry forever; one that
    stalls made each retry wait its own timeout."""
    with FaultServer(mode) as server:
        hub_at(monkeypatch, server)
        with pytest.raises(HubUnreachableError, match=r"within deadline=2 s") as info:
            resolve_checkpoint("gpt2", cache_dir=tmp_path / "cache", timeout=0.5, deadline=2)
    one_sentence(info.value)


# -- 7. a short body is never stored as complete ---------------------------------------------------
def test_a_cut_body_is_not_stored(tmp_path):
    with (
        FaultServer("cut") as server,
        pytest.raises(ConnectionError, match="announced 20,480 bytes but sent 10,240"),
    ):
        download(server.url(), tmp_path / "f.bin")
    assert list(tmp_path.iterdir()) == []


def test_a_cut_chunked_body_is_one_sentence(tmp_path):
    with (
        FaultServer("cut-chunked") as server,
        pytest.raises(ConnectionError, match="closed after") as info,
    ):
        download(server.url(), tmp_path / "f.bin")
    one_sentence(info.value)
    assert list(tmp_path.iterdir()) == []


# -- 8. a unique temporary file: two processes at once, and no planted link followed ---------------
def test_two_downloads_into_one_folder_both_succeed(tmp_path):
    body = b"0123456789" * 3
    results = []
    with FaultServer("slow", body=body, delay=0.01) as server:

        def fetch():
            try:
                results.append(download(server.url(), tmp_path / "f.bin").read_bytes())
            except Exception as err:  # noqa: BLE001 - reported by the assert below
                results.append(err)

        threads = [threading.Thread(target=fetch) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert results == [body, body]
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_a_planted_part_link_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "dl").mkdir()
    os.symlink(victim, tmp_path / "dl" / "f.bin.part")
    with FaultServer("ok") as server:
        assert download(server.url(), tmp_path / "dl" / "f.bin").read_bytes() == BODY
    assert victim.read_text() == "precious"


# -- 9. the tokenizer file: atomic save, one sentence on a corrupt file ----------------------------
def test_a_failed_tokenizer_save_keeps_the_old_file(tmp_path, monkeypatch):
    tok = BPETokenizer().train("low lower lowest " * 20, 260)
    path = tok.save(tmp_path / "tok.json")
    before = path.read_bytes()
    import helpers.tokenizer

    monkeypatch.setattr(helpers.tokenizer.json, "dumps", lambda data: '{"x": "\ud800"}')
    with pytest.raises(ValueError):  # the lone surrogate cannot be written as UTF-8
        tok.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["tok.json"]


@pytest.mark.parametrize(
    "content",
    [
        b'{"format": "helpers.BPETokenizer", "version": 1}',  # KeyError
        b"\xff\xfe not utf-8",  # UnicodeDecodeError
        b'{"format": "helpers.BPETokenizer", "pattern": "(", "byte_ids": [], "merges": [], '
        b'"special_tokens": {}}',  # regex.error
        b'{"format": "helpers.BPETokenizer", "pattern": "a", "byte_ids": [0], '
        b'"merges": [[0, 1, 2]], "special_tokens": {}}',  # ids that make no vocabulary
    ],
)
def test_a_corrupt_tokenizer_file_is_one_sentence(tmp_path, content):
    (tmp_path / "tok.json").write_bytes(content)
    with pytest.raises(ValueError, match="corrupt tokenizer file|cannot read a tokenizer") as info:
        BPETokenizer.load(tmp_path / "tok.json")
    one_sentence(info.value)


# -- 11. the tokenizer cache and the hub's integrity check -----------------------------------------
def test_prefill_does_not_follow_a_planted_temporary_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    cache = tmp_path / "cache"
    cache.mkdir()
    import hashlib

    for url, _ in GPT2_FILES.values():  # the old, predictable temporary name
        os.symlink(victim, cache / (hashlib.sha1(url.encode()).hexdigest() + f".{os.getpid()}.tmp"))
    prefill_tiktoken_cache(cache)
    assert victim.read_text() == "precious"
    assert {sha256_file(p) for p in cache.iterdir() if not p.is_symlink()} == {
        sha for _, sha in GPT2_FILES.values()
    }


def test_an_empty_tiktoken_cache_dir_writes_nothing(tmp_path, monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network disabled for this test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    monkeypatch.chdir(tmp_path)
    enc = gpt2_encoding()
    assert enc.encode("Hello, world! <|endoftext|>", allowed_special="all") == [
        15496,
        11,
        995,
        0,
        220,
        50256,
    ]
    assert list(tmp_path.iterdir()) == []


def hub_cache(cache: Path, source: Path, blob_name) -> Path:
    """huggingface_hub's cache layout for openai-community/gpt2, the weights' blob named by
    ``blob_name(path)``."""
    root, commit = cache / "models--openai-community--gpt2", "0" * 40
    (root / "snapshots" / commit).mkdir(parents=True)
    (root / "blobs").mkdir()
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    for name in ("config.json", "model.safetensors"):
        blob = (
            root
            / "blobs"
            / (
                blob_name(source / name)
                if name == "model.safetensors"
                else sha256_file(source / name)
            )
        )
        shutil.copy(source / name, blob)
        os.symlink(
            os.path.relpath(blob, root / "snapshots" / commit), root / "snapshots" / commit / name
        )
    return root


def test_a_blob_not_named_by_its_hash_is_not_trusted_silently(tiny, tmp_path):
    hub_cache(tmp_path, tiny[0], lambda path: "not-a-hash")
    with pytest.raises(CheckpointFormatError, match="could not be verified.*verify=False"):
        load_hf_checkpoint("gpt2", cache_dir=tmp_path, local_files_only=True)
    load_hf_checkpoint("gpt2", cache_dir=tmp_path, local_files_only=True, verify=False)


def test_a_blob_named_by_its_git_sha1_is_verified(tiny, tmp_path):
    from helpers.hub import _git_blob_sha1

    root = hub_cache(tmp_path, tiny[0], _git_blob_sha1)
    load_hf_checkpoint("gpt2", cache_dir=tmp_path, local_files_only=True)
    blob = next(p for p in (root / "blobs").iterdir() if len(p.name) == 40)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    with pytest.raises(CheckpointFormatError, match="its git sha1 is not"):
        load_hf_checkpoint("gpt2", cache_dir=tmp_path, local_files_only=True)


# -- 12. say what really happened ------------------------------------------------------------------
def test_a_full_disk_is_not_called_no_network(tmp_path, monkeypatch):
    real_write = os.write

    def full(fd, data):
        if fd > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    class FullFile(io.BytesIO):  # for a download that writes through a file object
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    monkeypatch.setattr(helpers.data, "open", lambda *a, **k: FullFile(), raising=False)
    with FaultServer("ok") as server, pytest.raises(OSError, match="No space left") as info:
        download(server.url(), tmp_path / "f.bin")
    monkeypatch.undo()
    assert not isinstance(info.value, ConnectionError) and "network" not in str(info.value)
    assert "free some space" in one_sentence(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_hub_404_is_not_called_no_network(tmp_path, monkeypatch):
    with FaultServer("404") as server:
        hub_at(monkeypatch, server)
        with pytest.raises(CheckpointNotFoundError, match="has no config.json") as info:
            resolve_checkpoint("gpt2", cache_dir=tmp_path, timeout=2)
    assert "network" not in one_sentence(info.value)


# -- the distributed entry point says its error once -----------------------------------------------
@pytest.mark.parametrize("rank", ["0", "1"])
def test_distributed_says_its_error_once(monkeypatch, capsys, rank):
    from helpers.distributed import cli

    monkeypatch.setenv("RANK", rank)
    assert cli(["--backend", "carrier-pigeon"]) == 2
    out, err = capsys.readouterr()
    if rank == "0":
        assert err.count("\n") == 1 and "backend='carrier-pigeon' is not one of" in err
    else:
        assert err == ""


# -- further cases of the same kind, found by trying them ------------------------------------------
@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda d: helpers.data.create_dataloader(
                range(99), batch_size="4", context_length=4, stride=4
            ),
            ValueError,
            "batch_size='4' must be a positive integer",
        ),
        (
            lambda d: helpers.data.create_dataloader(
                range(99), context_length=4, stride=float("nan")
            ),
            ValueError,
            "stride=nan must be a positive integer",
        ),
        (
            lambda d: helpers.data.create_dataloader(
                range(99), context_length=4, stride=4, seed=2**64
            ),
            ValueError,
            "seed=18446744073709551616 must be an integer",
        ),
        (
            lambda d: helpers.data.create_dataloader(["a"] * 99, context_length=4, stride=4),
            ValueError,
            "token_ids must be integer token ids",
        ),
        (
            lambda d: download("http://127.0.0.1:9/x", d / "afile" / "x"),
            OSError,
            "cannot write into",
        ),
        (
            lambda d: download("http://127.0.0.1:9/x", d, timeout=1),
            IsADirectoryError,
            "is a directory",
        ),
        (
            lambda d: download("http://127.0.0.1:9/x", d / "x", timeout=float("nan")),
            ValueError,
            "timeout=nan must be a positive number",
        ),
        (lambda d: BPETokenizer().encode(b"bytes"), ValueError, "text must be a str, got bytes"),
        (
            lambda d: BPETokenizer().train("text", "300"),
            ValueError,
            "vocab_size='300' must be an integer",
        ),
        (
            lambda d: BPETokenizer().save(d / "missing" / "tok.json"),
            OSError,
            "could not write the tokenizer to",
        ),
        (
            lambda d: save_hf_checkpoint(
                GPTModel(
                    GPTConfig(vocab_size=8, context_length=4, emb_dim=4, n_heads=1, n_layers=1)
                ),
                d / "afile",
            ),
            OSError,
            "could not save the checkpoint into",
        ),
    ],
)
def test_further_bad_arguments_are_one_sentence(tmp_path, call, error, match):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(error, match=match) as info:
        call(tmp_path)
    one_sentence(info.value)


@pytest.mark.parametrize("eos_id", ["x", 1.5, True])
def test_generate_refuses_an_eos_id_that_is_not_a_token_id(tiny, eos_id):
    with pytest.raises(ValueError, match="is not a token id"):
        generate(tiny[1], torch.tensor([[1, 2]]), 2, eos_id=eos_id)


def test_save_hf_checkpoint_follows_no_planted_part_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "ckpt").mkdir()
    for name in ("model.safetensors.part", "config.json.part"):
        os.symlink(victim, tmp_path / "ckpt" / name)
    model = GPTModel(GPTConfig(vocab_size=8, context_length=4, emb_dim=4, n_heads=1, n_layers=1))
    save_hf_checkpoint(model, tmp_path / "ckpt")
    assert victim.read_text() == "precious"
    load_hf_checkpoint(tmp_path / "ckpt")
