"""helpers.gpt2 (Chapter 9) against transformers' GPT2LMHeadModel, both directions, on tiny
checkpoints made here (no network): logits within ATOL in float32 (in practice ~1e-6), greedy ids
identical; plus strict loading, refusals (pickles, corrupt files, missing configs) and the offline
hub path."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import transformers  # noqa: E402  (the reference: a hard test dependency)
from safetensors.torch import load_file, save_file

from helpers import gpt2
from helpers.gpt2 import (
    hf_state_dict,
    load_hf_checkpoint,
    load_hf_state_dict,
    save_hf_checkpoint,
    weight_mapping,
)
from helpers.gpt2_config import (
    HUB_MODELS,
    CheckpointFormatError,
    CheckpointNotFoundError,
    HubUnreachableError,
    UnknownModelError,
    config_from_hf,
    config_to_hf,
)
from helpers.hub import read_hf_checkpoint
from helpers.model import GPTConfig, GPTModel, generate_greedy, predicted_parameters
from helpers.offline import sha256_file

ATOL = 1e-4  # the bound for float32 logits; the differences seen are ~1e-6
TINY = dict(
    n_embd=32,
    n_layer=2,
    n_head=4,
    n_positions=24,
    vocab_size=97,
    bos_token_id=None,
    eos_token_id=None,
)


def make_hf(tie=True, seed=0, **overrides):
    """A GPT2LMHeadModel with every tensor perturbed, so that biases and LayerNorms are not 0
    and 1."""
    torch.manual_seed(seed)
    hf = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(**{**TINY, **overrides}, tie_word_embeddings=tie)
    )
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return hf.eval()


def make_ours(seed=1, **overrides):
    torch.manual_seed(seed)
    model = GPTModel(
        GPTConfig(
            **{
                "vocab_size": 97,
                "context_length": 24,
                "emb_dim": 32,
                "n_heads": 4,
                "n_layers": 2,
                "drop_rate": 0.0,
                **overrides,
            }
        )
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def ids(seed=2, B=2, T=10, V=97):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


def max_diff(ours: GPTModel, hf, idx) -> float:
    with torch.no_grad():
        return (ours(idx) - hf(idx).logits).abs().max().item()


def hf_greedy(hf, idx, n):
    return hf.generate(
        idx,
        max_new_tokens=n,
        min_new_tokens=n,
        do_sample=False,
        pad_token_id=0,
        attention_mask=torch.ones_like(idx),
    )


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A tied tiny checkpoint as transformers saves it, and the model that wrote it."""
    hf = make_hf()
    directory = tmp_path_factory.mktemp("hf")
    hf.save_pretrained(directory)
    return directory, hf


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_unchanged(model, before):
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())


# -- where the weights live, configs, the mapping ------------------------------------------------
def test_hub_models_sizes_come_from_the_presets():
    assert [m.repo_id for m in HUB_MODELS.values()] == [
        "openai-community/gpt2",
        "openai-community/gpt2-medium",
        "openai-community/gpt2-large",
        "openai-community/gpt2-xl",
    ]
    assert HUB_MODELS["gpt2"].n_params == 124_439_808  # GPT-2 small, tied head counted once
    for m in HUB_MODELS.values():
        assert (
            m.param_bytes
            == 4 * m.n_params
            == 4 * predicted_parameters(GPTConfig.from_preset(m.preset))
        )


def test_config_round_trip_and_gpt2_defaults():
    assert config_from_hf(transformers.GPT2Config().to_dict()) == GPTConfig.from_preset(
        "gpt2-small"
    )
    cfg = GPTConfig(
        vocab_size=97, context_length=24, emb_dim=32, n_heads=4, n_layers=2, tie_weights=False
    )
    assert config_from_hf(config_to_hf(cfg)) == cfg
    hf_cfg = transformers.GPT2Config(**config_to_hf(cfg))  # transformers reads every field we write
    assert (hf_cfg.n_embd, hf_cfg.n_layer, hf_cfg.tie_word_embeddings, hf_cfg.eos_token_id) == (
        32,
        2,
        False,
        None,
    )
    assert config_to_hf(GPTConfig())["eos_token_id"] == 50256


@pytest.mark.parametrize(
    "change, match",
    [
        ({"activation_function": "relu"}, "activation_function='relu'"),
        ({"layer_norm_epsilon": 1e-6}, "layer_norm_epsilon"),
        ({"n_inner": 100}, "n_inner=100"),
        ({"model_type": "gpt_neo"}, "model_type"),
        ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
        ({"attn_pdrop": 0.0}, "drop_rate"),
    ],
)
def test_config_refuses_what_our_model_cannot_represent(change, match):
    with pytest.raises(CheckpointFormatError, match=match):
        config_from_hf({**transformers.GPT2Config().to_dict(), **change})


def test_config_lacking_a_size_field_is_named():
    with pytest.raises(CheckpointFormatError, match="n_layer"):
        config_from_hf({"n_embd": 8, "n_head": 2, "n_positions": 8, "vocab_size": 10})


@pytest.mark.parametrize("tie", [True, False])
def test_mapping_covers_both_state_dicts_with_their_shapes(tie):
    hf, ours = make_hf(tie=tie), make_ours(tie_weights=tie)
    rows = weight_mapping(ours.cfg)
    hub = {k.removeprefix("transformer."): tuple(v.shape) for k, v in hf.state_dict().items()}
    assert {r.hub_name: r.hub_shape for r in rows} == hub
    ours_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert {n: r.our_shape for r in rows for n in r.our_names} == ours_shapes
    assert [r.transform for r in rows if r.hub_name.startswith("h.0.attn.c_attn")] == [
        gpt2.SPLIT_T,
        gpt2.SPLIT,
    ]
    assert rows[-1].transform == (gpt2.TIED if tie else gpt2.COPY)


# -- hub format into ours ------------------------------------------------------------------------
def test_load_matches_transformers_logits_and_greedy_ids(hf_dir):
    directory, hf = hf_dir
    ours = load_hf_checkpoint(directory)
    assert not ours.training and ours.cfg.tie_weights
    assert ours.out_head.weight is ours.tok_emb.weight  # still tied after loading
    idx = ids()
    diff = max_diff(ours, hf, idx)
    print(f"max |logits - transformers' logits| = {diff:.2e}")
    assert diff < ATOL
    assert torch.equal(generate_greedy(ours, idx, 8), hf_greedy(hf, idx, 8))


def test_load_untied_checkpoint(tmp_path):
    hf = make_hf(tie=False)
    hf.save_pretrained(tmp_path)
    ours = load_hf_checkpoint(tmp_path)
    assert not ours.cfg.tie_weights and ours.out_head.weight is not ours.tok_emb.weight
    assert max_diff(ours, hf, ids()) < ATOL


def test_hub_file_layout_no_prefix_mask_buffers_no_head(tmp_path):
    """The layout of the hub's own files: no 'transformer.', the causal-mask buffers, no lm_head."""
    hf = make_hf()
    tensors = {
        k.removeprefix("transformer."): v.contiguous()
        for k, v in hf.state_dict().items()
        if k != "lm_head.weight"
    }
    for i in range(2):
        tensors[f"h.{i}.attn.bias"] = torch.tril(torch.ones(24, 24)).view(1, 1, 24, 24)
        tensors[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    # the fields of the hub's gpt2 config.json (no tie_word_embeddings, an old n_ctx), tiny sizes
    hub_config = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "embd_pdrop": 0.1,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": 24,
        "n_embd": 32,
        "n_head": 4,
        "n_layer": 2,
        "n_positions": 24,
        "resid_pdrop": 0.1,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "vocab_size": 97,
    }
    (tmp_path / "config.json").write_text(json.dumps(hub_config))
    assert max_diff(load_hf_checkpoint(tmp_path), hf, ids()) < ATOL
    assert (
        max_diff(load_hf_checkpoint(tmp_path / "model.safetensors"), hf, ids()) < ATOL
    )  # the file works too
    assert (
        max_diff(
            load_hf_checkpoint(tmp_path),
            transformers.GPT2LMHeadModel.from_pretrained(tmp_path),
            ids(),
        )
        < ATOL
    )


# -- ours out to the hub format ------------------------------------------------------------------
@pytest.mark.parametrize("overrides", [{}, {"tie_weights": False}, {"qkv_bias": False}])
def test_export_loads_into_transformers_and_back(tmp_path, hf_dir, overrides):
    ours = make_ours(**overrides)
    assert save_hf_checkpoint(ours, tmp_path) == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    written = load_file(tmp_path / "model.safetensors")
    if not overrides:  # the same names transformers itself writes for the same config
        assert written.keys() == load_file(hf_dir[0] / "model.safetensors").keys()
    assert ("lm_head.weight" in written) == (overrides.get("tie_weights") is False)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    assert (hf.lm_head.weight is hf.transformer.wte.weight) == ours.cfg.tie_weights
    idx = ids()
    assert max_diff(ours, hf, idx) < ATOL
    assert torch.equal(generate_greedy(ours, idx, 6), hf_greedy(hf, idx, 6))
    back = load_hf_state_dict(make_ours(seed=9, **overrides), written)
    assert all(torch.equal(back.state_dict()[k], v) for k, v in ours.state_dict().items())


def test_a_broken_tie_is_refused():
    model = make_ours()
    model.out_head.weight = torch.nn.Parameter(model.tok_emb.weight.detach().clone())
    with pytest.raises(ValueError, match="no longer tok_emb.weight"):
        hf_state_dict(model)


def test_qkv_bias_false_refuses_nonzero_biases(hf_dir):
    model = make_ours(qkv_bias=False)
    before = snapshot(model)
    with pytest.raises(CheckpointFormatError, match="h.0.attn.c_attn.bias.*qkv_bias=True"):
        load_hf_state_dict(model, hf_dir[1].state_dict())
    assert_unchanged(model, before)


def test_save_replaces_an_earlier_checkpoint(tmp_path):
    save_hf_checkpoint(make_ours(seed=3), tmp_path)
    ours = make_ours(seed=4)
    save_hf_checkpoint(ours, tmp_path)
    with torch.no_grad():
        assert torch.equal(load_hf_checkpoint(tmp_path)(ids()), ours(ids()))


def test_a_failed_save_leaves_the_earlier_checkpoint(tmp_path, monkeypatch):
    ours = make_ours(seed=5)
    save_hf_checkpoint(ours, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def disk_full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("No space left on device")

    monkeypatch.setattr(gpt2, "save_file", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_hf_checkpoint(make_ours(seed=6), tmp_path)
    assert {
        p.name: p.read_bytes() for p in tmp_path.iterdir()
    } == before  # no .part file, old files intact


# -- strictness: each failure names the tensor and leaves the model as it was ----------------------
def _missing(t):
    del t["transformer.h.1.ln_2.bias"]
    return "'h.1.ln_2.bias'"


def _unexpected(t):
    t["transformer.h.2.ln_1.weight"] = torch.ones(32)
    return "'h.2.ln_1.weight'"


def _wrong_shape(t):
    t["transformer.wpe.weight"] = torch.zeros(16, 32)
    return r"'wpe.weight' has shape \(16, 32\).*needs \(24, 32\)"


def _untied_head(t):
    t["lm_head.weight"] = t["transformer.wte.weight"] + 1
    return "'lm_head.weight' differs"


@pytest.mark.parametrize("corrupt", [_missing, _unexpected, _wrong_shape, _untied_head])
def test_strict_load_names_the_tensor_and_copies_nothing(hf_dir, corrupt):
    tensors = dict(hf_dir[1].state_dict())
    match = corrupt(tensors)
    model = make_ours()
    before = snapshot(model)
    with pytest.raises(CheckpointFormatError, match=match):
        load_hf_state_dict(model, tensors)
    assert_unchanged(model, before)


def test_checkpoint_of_another_size_fails_cleanly(tmp_path):
    make_hf(n_embd=48).save_pretrained(tmp_path)
    model = make_ours()
    before = snapshot(model)
    with pytest.raises(CheckpointFormatError, match="'wte.weight' has shape"):
        load_hf_state_dict(model, read_hf_checkpoint(tmp_path)[1])
    assert_unchanged(model, before)


# -- files that are not checkpoints ----------------------------------------------------------------
def test_truncated_file_fails_cleanly(tmp_path, hf_dir):
    shutil.copy(hf_dir[0] / "config.json", tmp_path)
    data = (hf_dir[0] / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointFormatError, match="corrupt or truncated"):
        load_hf_checkpoint(tmp_path)


def test_directory_without_config(tmp_path, hf_dir):
    shutil.copy(hf_dir[0] / "model.safetensors", tmp_path)
    with pytest.raises(CheckpointNotFoundError, match="has no config.json"):
        load_hf_checkpoint(tmp_path)


def test_pickle_files_are_refused(tmp_path, hf_dir):
    shutil.copy(hf_dir[0] / "config.json", tmp_path)
    torch.save(hf_dir[1].state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointFormatError, match="only pytorch_model.bin, a pickle"):
        load_hf_checkpoint(tmp_path)
    with pytest.raises(CheckpointFormatError, match="a pickle"):
        load_hf_checkpoint(tmp_path / "pytorch_model.bin")


@pytest.mark.parametrize(
    "name, error, match",
    [
        ("gpt3", UnknownModelError, "unknown model 'gpt3': use one of gpt2, gpt2-medium"),
        ("no/such/dir", CheckpointNotFoundError, "no file or directory at no/such/dir"),
    ],
)
def test_unknown_names_and_missing_paths(name, error, match):
    with pytest.raises(error, match=match):
        load_hf_checkpoint(name)


# -- the hub path, offline -------------------------------------------------------------------------
def count_connections(monkeypatch) -> list:
    """Record every socket connection attempt (its address) from now on; returns the record."""
    import socket

    attempts, connect = [], socket.socket.connect

    def counting(sock, address):
        attempts.append(address)
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", counting)
    return attempts


@pytest.mark.parametrize("how", ["local_files_only", "HF_HUB_OFFLINE"])
def test_hub_name_without_network_or_cache_fails_fast(tmp_path, monkeypatch, how):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", how == "HF_HUB_OFFLINE")
    attempts = count_connections(monkeypatch)
    with pytest.raises(HubUnreachableError, match=f"not in the Hugging Face cache.*{how}"):
        load_hf_checkpoint("gpt2", cache_dir=tmp_path, local_files_only=how == "local_files_only")
    assert attempts == []  # offline means no connection at all, so nothing to wait for


def test_hub_name_with_network_failing_fails_fast(tmp_path, monkeypatch):
    """Downloads allowed, but the hub refuses connections (a closed port on this machine, so no
    test ever reaches the internet): one request, no retries, one sentence, in seconds rather than
    minutes."""
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(
        hc,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        "http://127.0.0.1:9/{repo_id}/resolve/{revision}/{filename}",
    )
    monkeypatch.setattr(hc, "ENDPOINT", "http://127.0.0.1:9")
    attempts = count_connections(monkeypatch)
    with pytest.raises(
        HubUnreachableError,
        match="could not download config.json of openai-community/gpt2 .*cached",
    ):
        load_hf_checkpoint("gpt2", cache_dir=tmp_path, timeout=2)
    assert len(attempts) == 1  # one request, no retries (and so no back-off to wait through)


def fake_hub_cache(cache: Path, repo: str, source: Path) -> Path:
    """huggingface_hub's cache layout: blobs named by sha256, snapshots/<commit>/ links,
    refs/main."""
    root, commit = cache / f"models--{repo.replace('/', '--')}", "0" * 40
    (root / "blobs").mkdir(parents=True)
    (root / "snapshots" / commit).mkdir(parents=True)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    for name in ("config.json", "model.safetensors"):
        blob = root / "blobs" / sha256_file(source / name)
        shutil.copy(source / name, blob)
        os.symlink(
            os.path.relpath(blob, root / "snapshots" / commit), root / "snapshots" / commit / name
        )
    return root


def test_hub_name_from_the_cache_and_its_integrity_check(tmp_path, hf_dir):
    root = fake_hub_cache(tmp_path, "openai-community/gpt2", hf_dir[0])
    for name in ("gpt2", "openai-community/gpt2", "gpt2-small"):
        assert (
            max_diff(
                load_hf_checkpoint(name, cache_dir=tmp_path, local_files_only=True),
                hf_dir[1],
                ids(),
            )
            < ATOL
        )
    blob = Path(os.path.realpath(root / "snapshots" / ("0" * 40) / "model.safetensors"))
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1  # one flipped bit in the last weight: safetensors cannot notice, the hash does
    blob.write_bytes(bytes(data))
    with pytest.raises(CheckpointFormatError, match="is corrupt.*delete"):
        load_hf_checkpoint("gpt2", cache_dir=tmp_path, local_files_only=True)
    load_hf_checkpoint("gpt2", cache_dir=tmp_path, local_files_only=True, verify=False)


# -- GPT-2 small's shape ---------------------------------------------------------------------------
@pytest.mark.slow
def test_gpt2_small_shaped_parity_both_ways(tmp_path):
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()  # 768/12/12, vocab 50257
    ours = load_hf_state_dict(
        GPTModel(config_from_hf(hf.config.to_dict(), drop_rate=0.0)), hf.state_dict()
    ).eval()
    idx = ids(V=50257, T=16)
    diff = max_diff(ours, hf, idx)
    print(f"GPT-2 small shape: max |logits diff| = {diff:.2e}")
    assert diff < ATOL
    assert torch.equal(generate_greedy(ours, idx, 4), hf_greedy(hf, idx, 4))
    save_hf_checkpoint(ours, tmp_path)
    assert max_diff(ours, transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval(), idx) < ATOL


def test_loading_a_checkpoint_leaves_the_global_random_state_alone(tmp_path):
    from helpers.gpt2 import load_hf_checkpoint, save_hf_checkpoint
    from helpers.model import GPTConfig, GPTModel

    cfg = GPTConfig(vocab_size=50, context_length=8, emb_dim=16, n_heads=2, n_layers=1)
    directory = save_hf_checkpoint(GPTModel(cfg), tmp_path / "ckpt")
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    load_hf_checkpoint(directory)
    assert torch.equal(torch.rand(3), expected)
