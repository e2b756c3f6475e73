"""The book's pretraining run, built in Chapter 6 (Pretraining) and reused by Chapters 7 to 10.

* :class:`PretrainSettings`: one run on a text, a :class:`helpers.model.GPTConfig` (the model's
  shape) and the data and AdamW settings; :data:`BOOK_SMALL` (the book's default) and
  :data:`FULL_124M` (LLMs-from-scratch's GPT-2 small run);
* :func:`setup_pretraining`: the model, optimizer and loaders for those settings;
* :func:`book_model`: the trained :data:`BOOK_SMALL` model in one call, trained once and then
  loaded from a cache whose files carry a sha256 digest (``helpers.checkpoint``).

Nothing here touches the caller's random-number state: ``book_model`` runs under
``torch.random.fork_rng``, so the global RNG is the same after the call as before it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from helpers.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from helpers.model import GPTConfig
from helpers.train import train

# What computes the run, besides the settings: a new name here retrains cached models whose
# float rounding came from other kernels (before: written-out LayerNorm and GELU, AdamW's loop).
KERNELS = "fused layer_norm, gelu and AdamW"
_SMALL_SHAPE = dict(context_length=256, drop_rate=0.1, qkv_bias=False, tie_weights=False)


@dataclass(frozen=True)
class PretrainSettings:
    """One pretraining run on a text: the model's shape ``model`` (a ``GPTConfig``), the data and
    AdamW's settings (Chapter 6). ``embedding_std=None`` keeps GPT-2's N(0, 0.02) embeddings; 1.0
    is PyTorch's ``nn.Embedding`` default, which LLMs-from-scratch's model keeps. ``eval_every``
    counts optimizer steps."""

    model: GPTConfig = field(default_factory=lambda: GPTConfig(**_SMALL_SHAPE))
    embedding_std: float | None = None
    batch_size: int = 2
    lr: float = 4e-4
    weight_decay: float = 0.1
    num_epochs: int = 10
    eval_every: int = 5
    eval_iters: int = 5
    train_ratio: float = 0.9
    loader_seed: int = 123

    def __post_init__(self):
        if not isinstance(self.model, GPTConfig):
            raise ValueError(f"model={self.model!r} must be a GPTConfig (the model's shape).")


BOOK_SMALL = PretrainSettings(
    GPTConfig(emb_dim=64, n_layers=1, n_heads=4, **_SMALL_SHAPE),
    batch_size=1,
    lr=3e-3,
    num_epochs=15,
    eval_every=18,
)
FULL_124M = PretrainSettings(
    GPTConfig(**_SMALL_SHAPE), embedding_std=1.0
)  # LLMs-from-scratch's run


def setup_pretraining(text: str, tokenizer, settings: PretrainSettings, device="cpu"):
    """``(model, optimizer, train_loader, val_loader)`` for ``settings``: the first ``train_ratio``
    of the characters of ``text`` for training, the rest for validation, windows of
    ``context_length`` tokens with stride ``context_length``. The model's vocabulary must be the
    tokenizer's. The model's weights come from the torch RNG: seed it (``torch.manual_seed``) in
    the cell that calls this for a repeatable run."""
    from helpers.data import create_dataloader
    from helpers.model import GPTModel

    s, cfg, split = settings, settings.model, int(settings.train_ratio * len(text))
    if cfg.vocab_size != tokenizer.n_vocab:
        raise ValueError(
            f"the settings' model has vocab_size={cfg.vocab_size} but the tokenizer has "
            f"{tokenizer.n_vocab} tokens: build the GPTConfig with "
            f"vocab_size={tokenizer.n_vocab}."
        )
    model = GPTModel(cfg)
    if s.embedding_std is not None:
        for emb in (model.tok_emb, model.pos_emb):
            torch.nn.init.normal_(emb.weight, 0.0, s.embedding_std)
    model.to(device)
    # fused=True: one kernel updates each tensor (AdamW's formula in one pass over the weight,
    # its gradient and its two running averages) instead of about ten elementwise passes; the
    # same update to float rounding, and most of BOOK_SMALL's step time is saved by it.
    fused = torch.device(device).type in ("cpu", "cuda")
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=s.lr, weight_decay=s.weight_decay, fused=fused or None
    )
    T = cfg.context_length
    train_loader = create_dataloader(
        tokenizer.encode(text[:split]),
        s.batch_size,
        T,
        stride=T,
        shuffle=True,
        drop_last=True,
        seed=s.loader_seed,
    )
    val_loader = create_dataloader(
        tokenizer.encode(text[split:]), s.batch_size, T, stride=T, shuffle=False, drop_last=False
    )
    return model, optimizer, train_loader, val_loader


def default_cache_dir() -> Path:
    """Where :func:`book_model` keeps trained models: ``~/.cache/gpt2-from-scratch``."""
    return Path.home() / ".cache" / "gpt2-from-scratch"


def _shown(path: Path) -> str:
    """``path`` with the home directory written as ``~`` (for messages that end up in notebooks)."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def _cache_key(text, tokenizer, settings, seed, device, start_context) -> str:
    """A name for everything that determines the trained model (the settings, the seed, the text's
    sha256, the tokenizer, the torch version, the number of CPU threads, which changes the order
    of floating-point sums, and :data:`KERNELS`)."""
    key_src = json.dumps(
        {
            "format": FORMAT,
            "settings": asdict(settings),
            "seed": seed,
            "device": str(device),
            "start_context": start_context,
            "text": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "tokenizer": getattr(tokenizer, "name", type(tokenizer).__name__),
            "n_vocab": tokenizer.n_vocab,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "kernels": KERNELS,
        },
        sort_keys=True,
    )
    return hashlib.sha256(key_src.encode()).hexdigest()[:16]


def book_model(
    text: str,
    tokenizer,
    settings: PretrainSettings = BOOK_SMALL,
    *,
    seed: int = 123,
    cache_dir: str | Path | None = None,
    device="cpu",
    start_context: str = "Every effort moves you",
    log: Callable[[str], None] = print,
):
    """The book's trained model, in one call: ``(model, history)``, the model in ``eval()`` mode.

    Builds everything with :func:`setup_pretraining` from the seed ``seed`` and trains for
    ``settings.num_epochs`` epochs, with a greedy sample of ``start_context`` after each: the same
    run as Chapter 6's training cell, loss for loss. It runs under ``torch.random.fork_rng``, so
    the caller's torch RNG is left as it was. The result is cached in ``cache_dir`` (default
    :func:`default_cache_dir`) under a name derived from everything that determines it; a later
    call with the same inputs loads it instead of training again. A cache file that does not match
    its sha256 digest (changed or damaged after it was written) is reported through ``log`` and
    replaced by a fresh run. ``cache_dir=False`` disables the cache. ``log`` receives one line
    saying what happened and what it cost."""
    key = _cache_key(text, tokenizer, settings, seed, device, start_context)
    path = None
    if cache_dir is not False:
        path = Path(cache_dir or default_cache_dir()) / f"book-model-{key}.safetensors"
    dev = torch.device(device)
    cuda = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)  # inside fork_rng: restored when the block ends
        model, optimizer, train_loader, val_loader = setup_pretraining(
            text, tokenizer, settings, device
        )
        if path is not None and path.exists():
            try:
                history = load_checkpoint(path, model, train_loader=train_loader, restore_rng=False)
            except ValueError as err:  # a damaged or planted cache entry: say so, train again
                log(f"ignoring the cached model ({err})")
            else:
                log(
                    f"loaded the trained model from the cache, {_shown(path)} (delete the file to "
                    f"train again)"
                )
                return model.eval(), history
        start = time.perf_counter()
        history = train(
            model,
            train_loader,
            val_loader,
            optimizer,
            settings.num_epochs,
            eval_every=settings.eval_every,
            eval_iters=settings.eval_iters,
            tokenizer=tokenizer,
            start_context=start_context,
            progress=False,
        )
        seconds = time.perf_counter() - start
    where = ""
    if path is not None:
        save_checkpoint(path, model, history=history, train_loader=train_loader)
        where = f"; cached in {_shown(path)} for later calls"
    log(f"trained {history.step} steps ({history.tokens:,} tokens) in {seconds:.0f} s{where}")
    return model.eval(), history
