"""``python -m helpers`` (Chapter 9) end to end: the command line run as a subprocess on a tiny
checkpoint made here, offline (HF_HUB_OFFLINE=1 and an empty Hugging Face cache, unless a test
points the hub at a closed port on this machine): ``--help``, ``--json`` output compared with the
same computation done in this process, and every error exit (status 2, one line on stderr, no
traceback). The other options run in this process through ``main(argv)``, which is what the
subprocess runs too (a subprocess costs seconds, mostly importing torch)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.__main__ import main
from helpers.generate import generate
from helpers.gpt2 import load_hf_checkpoint, save_hf_checkpoint
from helpers.model import GPTConfig, GPTModel
from helpers.offline import gpt2_encoding
from helpers.perplexity import sliding_window_perplexity

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Every effort moves you"
EOT_ID = 50256


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny model with GPT-2's vocabulary, saved in the hub's format, and the model read back."""
    torch.manual_seed(0)
    model = GPTModel(
        GPTConfig(
            vocab_size=50257, context_length=32, emb_dim=16, n_heads=2, n_layers=1, drop_rate=0.0
        )
    )
    directory = save_hf_checkpoint(model, tmp_path_factory.mktemp("tiny") / "checkpoint")
    return directory, load_hf_checkpoint(directory)


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory):
    return tmp_path_factory.mktemp("hf_home")  # an empty Hugging Face cache


@pytest.fixture(scope="module")
def enc():
    return gpt2_encoding()


def cli(*args, hf_home, offline=True, **env):
    environ = {**os.environ, "HF_HOME": str(hf_home), **env}
    environ.pop("HF_HUB_OFFLINE", None)
    if offline:
        environ["HF_HUB_OFFLINE"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "helpers", *map(str, args)],
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        timeout=300,
    )


def run_json(*args, hf_home) -> dict:
    proc = cli(*args, "--json", hf_home=hf_home)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1  # one JSON object on one line
    return json.loads(proc.stdout)


def new_ids(model, enc, **kwargs):
    idx = torch.tensor([enc.encode(PROMPT)])
    out = generate(model, idx, kwargs.pop("max_new_tokens"), eos_id=EOT_ID, **kwargs)[
        0, idx.shape[1] :
    ].tolist()
    return out[: out.index(EOT_ID)] if EOT_ID in out else out


def test_help_reads_well(hf_home):
    top = cli("--help", hf_home=hf_home)
    assert top.returncode == 0 and top.stderr == ""
    assert all(
        s in top.stdout
        for s in ("generate", "perplexity", "examples:", "exit status:", "HF_HUB_OFFLINE")
    )
    gen = cli("generate", "--help", hf_home=hf_home).stdout
    for flag in (
        "PROMPT",
        "--model",
        "--max-new-tokens",
        "--temperature",
        "--top-k",
        "--top-p",
        "--num-beams",
        "--seed",
        "--json",
        "decoding:",
        "greedy",
    ):
        assert flag in gen, flag
    ppl = cli("perplexity", "--help", hf_home=hf_home).stdout
    for flag in ("FILE", "--model", "--context", "--stride", "--json", "how it is measured:"):
        assert flag in ppl, flag
    assert max(len(line) for text in (top.stdout, gen, ppl) for line in text.splitlines()) <= 90


def run_main(capsys, *args):
    """``main(argv)`` in this process: ``(exit status, stdout, stderr)``."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


# -- subprocesses: --json and the error exits ------------------------------------------------------
def test_generate_greedy_json_equals_the_model_in_process(checkpoint, hf_home, enc):
    directory, model = checkpoint
    out = run_json(
        "generate", PROMPT, "--model", directory, "--max-new-tokens", 12, hf_home=hf_home
    )
    expected = new_ids(model, enc, max_new_tokens=12)
    assert out["token_ids"] == expected and out["new_tokens"] == len(expected)
    assert out["decoding"] == "greedy" and out["seed"] is None and out["temperature"] is None
    assert out["prompt_tokens"] == 4 and out["completion"] == enc.decode(expected)
    assert out["text"] == PROMPT + out["completion"]
    assert out["stopped"] == ("max_new_tokens" if len(expected) == 12 else "eos")


def test_perplexity_json_and_text_equal_the_computation_in_process(
    checkpoint, hf_home, enc, tmp_path, verdict_text, capsys
):
    directory, model = checkpoint
    text_file = tmp_path / "story.txt"
    text_file.write_text(verdict_text[:600], encoding="utf-8")
    out = run_json("perplexity", text_file, "--model", directory, "--stride", 8, hf_home=hf_home)
    ids = enc.encode(verdict_text[:600])
    expected = sliding_window_perplexity(model, ids, context=32, stride=8)
    assert (out["context"], out["stride"], out["file_tokens"]) == (32, 8, len(ids))
    assert (out["windows"], out["tokens_scored"]) == (expected.n_windows, expected.n_tokens)
    assert out["loss"] == pytest.approx(expected.loss, rel=1e-6)
    assert out["perplexity"] == pytest.approx(expected.perplexity, rel=1e-6)
    status, text, _ = run_main(
        capsys, "perplexity", text_file, "--model", directory, "--context", 16
    )
    shown = sliding_window_perplexity(model, ids, context=16, stride=8).perplexity
    assert status == 0 and f"perplexity:    {shown:.2f}" in text and "stride 8" in text


@pytest.mark.parametrize(
    "case",
    [
        "unknown model",
        "missing checkpoint",
        "missing FILE",
        "no network (offline)",
        "no network (refused)",
        "truncated checkpoint",
    ],
)
def test_errors_exit_2_with_one_sentence(case, checkpoint, hf_home, tmp_path):
    directory = checkpoint[0]
    env, offline = {}, True
    story = tmp_path / "story.txt"
    story.write_text(
        "It had always been his fate to have women say such things of him.", encoding="utf-8"
    )
    if case == "truncated checkpoint":
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "config.json").write_bytes((directory / "config.json").read_bytes())
        data = (directory / "model.safetensors").read_bytes()
        (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    args, match = {
        "unknown model": (
            ("generate", "hi", "--model", "gpt5"),
            "unknown model 'gpt5': use one of gpt2",
        ),
        "missing checkpoint": (
            ("generate", "hi", "--model", tmp_path / "nothing_here"),
            "no file or directory at",
        ),
        "missing FILE": (
            ("perplexity", tmp_path / "missing.txt", "--model", directory),
            "there is no file at",
        ),
        "no network (offline)": (
            ("generate", "hi", "--model", "gpt2"),
            "not in the Hugging Face cache",
        ),
        "no network (refused)": (
            ("perplexity", story, "--model", "gpt2-medium"),
            "could not download config.json",
        ),
        "truncated checkpoint": (
            ("generate", "hi", "--model", tmp_path / "broken"),
            "corrupt or truncated",
        ),
    }[case]
    if case == "no network (refused)":  # downloads on, but the hub is a closed port on this machine
        env, offline = {"HF_ENDPOINT": "http://127.0.0.1:9"}, False
    proc = cli(*args, hf_home=hf_home, offline=offline, **env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert re.search(f"^python -m helpers (generate|perplexity): error: .*{match}", proc.stderr), (
        proc.stderr
    )


# -- in this process: the decoding options and the usage errors ------------------------------------
def test_generate_sampling_is_seeded_and_reports_a_drawn_seed(checkpoint, enc, capsys):
    directory, model = checkpoint
    args = (
        "generate",
        PROMPT,
        "--model",
        directory,
        "--max-new-tokens",
        10,
        "--temperature",
        0.8,
        "--top-k",
        50,
        "--json",
    )
    status, out, _ = run_main(capsys, *args, "--seed", 7)
    seeded = json.loads(out)
    assert status == 0 and seeded["decoding"] == "sampling" and seeded["seed"] == 7
    assert seeded["token_ids"] == new_ids(
        model, enc, max_new_tokens=10, temperature=0.8, top_k=50, do_sample=True, seed=7
    )
    drawn = json.loads(
        run_main(capsys, *args)[1]
    )  # no --seed: one is drawn, and it repeats the run
    assert isinstance(drawn["seed"], int)
    assert drawn["token_ids"] == new_ids(
        model, enc, max_new_tokens=10, temperature=0.8, top_k=50, do_sample=True, seed=drawn["seed"]
    )


@pytest.mark.parametrize(
    "options, expected",
    [
        ((), "greedy"),
        (("--top-p", 0.9, "--temperature", 0), "greedy"),
        (("--top-p", 0.9), "sampling"),
        (("--num-beams", 3), "beam search"),
    ],
)
def test_which_options_sample(checkpoint, capsys, options, expected):
    status, out, _ = run_main(
        capsys,
        "generate",
        PROMPT,
        "--model",
        checkpoint[0],
        "--max-new-tokens",
        3,
        *options,
        "--json",
    )
    assert status == 0 and json.loads(out)["decoding"] == expected


def test_generate_beam_search_prints_the_text(checkpoint, enc, capsys):
    directory, model = checkpoint
    status, out, _ = run_main(
        capsys, "generate", PROMPT, "--model", directory, "--max-new-tokens", 6, "--num-beams", 3
    )
    assert status == 0
    assert out == PROMPT + enc.decode(new_ids(model, enc, max_new_tokens=6, num_beams=3)) + "\n"


def test_an_empty_prompt_starts_from_endoftext(checkpoint, capsys):
    status, out, _ = run_main(
        capsys, "generate", "", "--model", checkpoint[0], "--max-new-tokens", 3, "--json"
    )
    assert status == 0 and json.loads(out)["prompt_tokens"] == 1


@pytest.mark.parametrize(
    "args, match",
    [
        (
            ("generate", "hi", "--num-beams", 2, "--top-p", 0.9),
            "--num-beams 2 .*cannot be combined with --top-p",
        ),
        (("generate", "hi", "--top-p", 1.5), "argument --top-p: 1.5 is not in"),
        (
            ("generate", "hi", "--temperature", -1),
            "argument --temperature: -1 is not 0 or a positive number",
        ),
        (("generate", "hi", "--max-new-tokens", -1), "argument --max-new-tokens: -1 is not 0"),
        (
            ("generate", " ".join(["hi"] * 40)),
            "the prompt has 40 tokens but the model reads at most 32",
        ),
        (
            ("perplexity", "STORY", "--context", 8, "--stride", 9),
            "--stride 9 is larger than --context 8",
        ),
        (
            ("perplexity", "STORY", "--context", 64),
            "--context 64 is longer than the model's context of 32",
        ),
        (("perplexity", "EMPTY"), "holds 0 token"),
        (("perplexity", "."), "is a directory"),
    ],
)
def test_bad_options_exit_2_with_one_sentence(checkpoint, tmp_path, capsys, args, match):
    (tmp_path / "story.txt").write_text("It had always been his fate.", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    where = {"STORY": tmp_path / "story.txt", "EMPTY": tmp_path / "empty.txt"}
    args = [where.get(a, a) for a in args]
    status, out, err = run_main(capsys, *args[:2], "--model", checkpoint[0], *args[2:])
    assert status == 2 and out == ""
    assert re.search(match, err.strip().splitlines()[-1]), err
