"""Token ids to vectors: embeddings and position encodings (Chapter 2: Embeddings).

* :class:`GPTEmbedding` is GPT-2's input layer: a learned token table ``(vocab_size, emb_dim)``
  plus a learned absolute position table ``(context_length, emb_dim)``, with clear errors for token
  ids outside the vocabulary and sequences longer than the position table.
* :func:`sinusoidal_positions` is the fixed encoding of the original Transformer (Vaswani et al.,
  2017).

Word vectors (gensim) are ``helpers.word_vectors``'s.

Nothing runs on import: no seeds, no downloads, no training.
"""

from __future__ import annotations

import torch
from torch import nn


def check_token_ids(ids: torch.Tensor, vocab_size: int) -> None:
    """Raise ``ValueError`` naming the first token id outside ``0 .. vocab_size - 1``."""
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(
            f"token ids must be integers, got a tensor of dtype {ids.dtype}: use ids.long()."
        )
    bad = (ids < 0) | (ids >= vocab_size)
    if bad.any():
        value = int(ids[bad][0])
        raise ValueError(
            f"token id {value} is outside the vocabulary 0..{vocab_size - 1} "
            f"(vocab_size={vocab_size}): encode the text with the tokenizer that matches this "
            "table, or enlarge vocab_size."
        )


def one_hot(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Float one-hot vectors: shape ``ids.shape + (vocab_size,)``, a single 1 at each id."""
    ids = torch.as_tensor(ids)
    check_token_ids(ids, vocab_size)
    return torch.nn.functional.one_hot(ids.long(), vocab_size).float()


class GPTEmbedding(nn.Module):
    """GPT-2's input: ``tok_emb(ids) + pos_emb(0 .. T-1)``, a ``(B, T)`` batch of ids -> ``(B, T,
    C)``.

    ``tok_emb`` says *what* each token is, ``pos_emb`` *where* it stands; both are learned. The
    position vectors ``(T, C)`` broadcast over the batch.
    """

    def __init__(self, vocab_size: int, context_length: int, emb_dim: int):
        super().__init__()
        self.vocab_size, self.context_length, self.emb_dim = vocab_size, context_length, emb_dim
        self.tok_emb = nn.Embedding(vocab_size, emb_dim)
        self.pos_emb = nn.Embedding(context_length, emb_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.ndim != 2:
            raise ValueError(
                f"ids must have shape (batch_size, num_tokens), got {tuple(ids.shape)}: "
                f"add a batch dimension with ids.unsqueeze(0)."
            )
        num_tokens = ids.shape[1]
        if num_tokens > self.context_length:
            raise ValueError(
                f"the sequence has {num_tokens} tokens but the position table has only "
                f"{self.context_length} rows (context_length={self.context_length}): keep the last "
                f"{self.context_length} tokens, e.g. ids[:, -{self.context_length}:]."
            )
        check_token_ids(ids, self.vocab_size)
        positions = torch.arange(num_tokens, device=ids.device)
        return self.tok_emb(ids) + self.pos_emb(positions)  # (B, T, C) + (T, C) -> (B, T, C)


def sinusoidal_positions(num_positions: int, emb_dim: int, base: float = 10000.0) -> torch.Tensor:
    """The Transformer's fixed position encoding, ``(num_positions, emb_dim)``:

    ``PE[pos, 2i] = sin(pos / base**(2i / emb_dim))`` and ``PE[pos, 2i+1] = cos(pos / base**(2i /
    emb_dim))``.
    """
    if num_positions < 1:
        raise ValueError(f"num_positions={num_positions} must be at least 1.")
    if emb_dim < 2 or emb_dim % 2:
        raise ValueError(
            f"emb_dim={emb_dim} must be even and at least 2: each frequency fills a (sin, cos) "
            "pair."
        )
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (T, 1)
    freqs = base ** (-torch.arange(0, emb_dim, 2, dtype=torch.float64) / emb_dim)  # (C/2,)
    angles = pos * freqs  # (T, C/2)
    pe = torch.empty(num_positions, emb_dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe.float()


# ------------------------------------------------------------------------- word vectors with gensim
