"""GPT-2 assembled from Chapter 4's blocks, built in Chapter 5 (Assembling GPT-2).

* :class:`GPTConfig`: the shape of a model, with presets for GPT-2 small, medium, large and XL
  (``GPTConfig.from_preset("gpt2-small", context_length=256, drop_rate=0.0)``).
* :class:`GPTModel`: token and position embeddings, dropout, ``n_layers`` pre-LayerNorm blocks,
  a final LayerNorm and the output head, tied to the token embedding by default as in GPT-2.
  Initialized as GPT-2: normal(0, 0.02) weights, zero biases, and the residual projections
  (``att.out_proj``, ``ff.proj``) at ``0.02 / sqrt(2 * n_layers)``.
* :func:`count_parameters` (a built model) and :func:`predicted_parameters` (the closed form from
  a config), :func:`flops_per_token`, and :func:`generate_greedy`, the simplest text loop.
* A KV cache (Chapter 8): ``logits = model(idx, cache=cache)`` with a
  :class:`helpers.kvcache.KVCache`, which the call fills in place; ``helpers.generate`` uses it.

Parameter names follow GPT-2's layout so that Chapter 9 can map OpenAI's checkpoint onto them:
``tok_emb`` (wte), ``pos_emb`` (wpe), ``trf_blocks.i.norm1`` (h.i.ln_1), ``att.W_query/W_key/
W_value`` (the three thirds of c_attn), ``att.out_proj`` (attn.c_proj), ``norm2`` (ln_2),
``ff.fc`` / ``ff.proj`` (mlp.c_fc / mlp.c_proj), ``final_norm`` (ln_f), ``out_head`` (lm_head).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from helpers.layers import LayerNorm, TransformerBlock

# GPT-2's four published sizes (Radford et al. 2019, Table 2; n_heads from OpenAI's hparams.json).
PRESETS = {
    "gpt2-small": dict(emb_dim=768, n_layers=12, n_heads=12),  # "124M"
    "gpt2-medium": dict(emb_dim=1024, n_layers=24, n_heads=16),  # "355M"
    "gpt2-large": dict(emb_dim=1280, n_layers=36, n_heads=20),  # "774M"
    "gpt2-xl": dict(emb_dim=1600, n_layers=48, n_heads=25),  # "1558M"
}
INIT_STD = 0.02  # GPT-2's initializer_range


@dataclass
class GPTConfig:
    """The hyper-parameters of a GPT-2-style model; the defaults are GPT-2 small."""

    vocab_size: int = 50257
    context_length: int = 1024
    emb_dim: int = 768
    n_heads: int = 12
    n_layers: int = 12
    drop_rate: float = 0.1
    qkv_bias: bool = True  # GPT-2 has biases on the query, key and value projections
    tie_weights: bool = True  # GPT-2 reuses the token embedding as the output head

    def __post_init__(self):
        for name in ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer.")
        if self.emb_dim % self.n_heads != 0:
            raise ValueError(
                f"emb_dim={self.emb_dim} is not divisible by n_heads={self.n_heads}: "
                f"choose emb_dim as a multiple of n_heads."
            )
        if not 0.0 <= self.drop_rate < 1.0:
            raise ValueError(f"drop_rate={self.drop_rate!r} must be in [0, 1).")

    @property
    def head_dim(self) -> int:
        return self.emb_dim // self.n_heads

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "GPTConfig":
        """One of :data:`PRESETS` (``"gpt2-small"`` ... ``"gpt2-xl"``), any field overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}: use one of {sorted(PRESETS)}.")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}: the fields are {sorted(fields)}.")
        return cls(**{**PRESETS[name], **overrides})


class GPTModel(nn.Module):
    """GPT-2: token ids ``(B, T)`` in, next-token logits ``(B, T, vocab_size)`` out."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.emb_dim)  # wte
        self.pos_emb = nn.Embedding(cfg.context_length, cfg.emb_dim)  # wpe
        self.drop_emb = nn.Dropout(cfg.drop_rate)
        self.trf_blocks = nn.ModuleList(
            TransformerBlock(
                cfg.emb_dim, cfg.n_heads, cfg.context_length, cfg.drop_rate, cfg.qkv_bias
            )
            for _ in range(cfg.n_layers)
        )
        self.final_norm = LayerNorm(cfg.emb_dim)  # ln_f
        self.out_head = nn.Linear(cfg.emb_dim, cfg.vocab_size, bias=False)  # lm_head
        if cfg.tie_weights:
            self.out_head.weight = self.tok_emb.weight  # one (V, C) matrix, used twice
        self.init_weights()

    @torch.no_grad()
    def init_weights(self, std: float = INIT_STD, scale_residual: bool = True) -> None:
        """GPT-2's initialization, in module order: normal(0, std) for embeddings and linear
        weights, zero biases, LayerNorm at (1, 0). With ``scale_residual`` the two projections
        that write into the residual stream in each block (``att.out_proj``, ``ff.proj``) get
        ``std / sqrt(2 * n_layers)``: the stream is a sum of ``2 * n_layers`` such writes, and the
        GPT-2 paper scales them by 1/sqrt(N), N the number of residual layers."""
        residual = {id(m) for b in self.trf_blocks for m in (b.att.out_proj, b.ff.proj)}
        scaled = std / math.sqrt(2 * self.cfg.n_layers) if scale_residual else std
        for module in self.modules():
            if isinstance(module, nn.Linear):
                if module is self.out_head and self.cfg.tie_weights:
                    continue  # its weight is tok_emb.weight, initialized once as an embedding
                nn.init.normal_(module.weight, 0.0, scaled if id(module) in residual else std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, 0.0, std)
            elif isinstance(module, LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def check_ids(self, idx: torch.Tensor, past_len: int = 0) -> None:
        """Raise a ValueError that says what is wrong if ``idx`` is not a valid ``(B, T)`` id tensor
        (that fits in the context after ``past_len`` cached tokens)."""
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
            shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ValueError(
                f"token ids must be a (B, T) tensor, got {shape}: "
                f"add a batch axis with idx.unsqueeze(0)."
            )
        if idx.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"token ids must be integers (torch.long), got {idx.dtype}.")
        if idx.shape[1] > self.cfg.context_length:
            raise ValueError(
                f"the input has {idx.shape[1]} tokens but context_length is "
                f"{self.cfg.context_length}: keep the last {self.cfg.context_length} "
                f"tokens (idx[:, -{self.cfg.context_length}:])."
            )
        if past_len + idx.shape[1] > self.cfg.context_length:
            raise ValueError(
                f"{past_len} cached tokens plus {idx.shape[1]} new ones make "
                f"{past_len + idx.shape[1]}, more than context_length={self.cfg.context_length}: "
                f"start a new cache from the last {self.cfg.context_length} tokens."
            )
        if idx.numel():
            low, high = (int(v) for v in torch.aminmax(idx))  # one pass over the ids
        if idx.numel() and (low < 0 or high >= self.cfg.vocab_size):
            bad = low if low < 0 else high
            raise ValueError(
                f"token id {bad} is out of range: ids must be in 0..{self.cfg.vocab_size - 1}."
            )

    def forward(
        self, idx: torch.Tensor, cache=None, attn_weights: list | None = None
    ) -> torch.Tensor:
        """``idx  # (B, T)`` -> logits ``(B, T, V)``, always.

        ``attn_weights``: a list to which every block's attention weights are appended, each
        ``(B, h, T, past_len + T)``. ``cache`` (Chapter 8): a :class:`helpers.kvcache.KVCache` with
        the keys and values of the ``past_len`` tokens before ``idx``, or an empty one; the new
        tokens take positions ``past_len .. past_len + T - 1`` and their keys and values are
        appended to it in place."""
        if cache is not None and len(cache) not in (0, len(self.trf_blocks)):
            raise ValueError(
                f"the cache holds {len(cache)} layers but the model has "
                f"{len(self.trf_blocks)}: pass a cache this model filled, or a new one."
            )
        past_len = 0 if cache is None else cache.length()
        self.check_ids(idx, past_len)
        T = idx.shape[1]
        if cache is None:
            positions = torch.arange(T, device=idx.device)  # (T,)
        else:  # continue after the cache; (B, T) counted from each row's first token if padded
            positions = cache.positions(past_len, T, device=idx.device)
        x = self.tok_emb(idx) + self.pos_emb(positions)  # (B, T, C)
        x = self.drop_emb(x)
        for i, block in enumerate(self.trf_blocks):
            x = block(x, cache=cache, layer=i, attn_weights=attn_weights)
        return self.out_head(self.final_norm(x))  # (B, T, V)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of a built model; a tied matrix counts once (``parameters()`` skips
    repeats). Works on the meta device, where nothing is allocated."""
    return sum(p.numel() for p in model.parameters())


def predicted_parameters(cfg: GPTConfig) -> int:
    """The closed form of :func:`count_parameters` for :class:`GPTModel`, from the config alone.

    Per block: two LayerNorms ``4C``, attention ``4C^2 + C`` plus ``3C`` qkv biases, the
    feed-forward ``8C^2 + 5C``. Around them: ``V*C`` token and ``T*C`` position embeddings, the
    final LayerNorm ``2C``, and a separate ``V*C`` output head unless the weights are tied.
    """
    C, V = cfg.emb_dim, cfg.vocab_size
    block = 4 * C + (4 * C * C + C + (3 * C if cfg.qkv_bias else 0)) + (8 * C * C + 5 * C)
    head = 0 if cfg.tie_weights else V * C
    return V * C + cfg.context_length * C + cfg.n_layers * block + 2 * C + head


def flops_per_token(cfg: GPTConfig, num_tokens: int | None = None) -> int:
    """Forward-pass FLOPs per token from the matrix multiplications (2 FLOPs per multiply-add).

    ``2 * (12 * L * C^2 + C * V)`` for the weight matrices of the blocks and the head, plus
    ``4 * L * T * C`` for attention's scores and weighted sums over ``T = num_tokens`` positions
    (default ``context_length``, counting the masked half too). Elementwise work is left out.
    Training costs about three times this (forward, and backward twice as much).
    """
    T = cfg.context_length if num_tokens is None else num_tokens
    C, L = cfg.emb_dim, cfg.n_layers
    return 2 * (12 * L * C * C + C * cfg.vocab_size) + 4 * L * T * C


@torch.no_grad()
def generate_greedy(model: GPTModel, idx: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    """Append ``max_new_tokens`` ids to ``idx  # (B, T)``, each the argmax of the next-token logits.

    Once the sequence outgrows the context, the model sees its last ``context_length`` tokens.
    The model is used as it is: call ``model.eval()`` first to switch dropout off.
    """
    context_length = model.cfg.context_length
    model.check_ids(idx)  # also rejects a prompt longer than the context
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens={max_new_tokens} must be 0 or more.")
    for _ in range(max_new_tokens):
        logits = model(idx[:, -context_length:])  # (B, T, V)
        next_id = logits[:, -1, :].argmax(dim=-1, keepdim=True)  # (B, 1)
        idx = torch.cat([idx, next_id], dim=1)  # (B, T + 1)
    return idx
