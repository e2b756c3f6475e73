"""A tiny model, data and loaders shared by the training, checkpoint and pretraining tests."""

import torch

from helpers.data import create_dataloader
from helpers.model import GPTConfig, GPTModel

VOCAB, T = 97, 16


def tiny_cfg(**overrides) -> GPTConfig:
    return GPTConfig(
        **{
            **dict(
                vocab_size=VOCAB,
                context_length=T,
                emb_dim=32,
                n_heads=2,
                n_layers=1,
                drop_rate=0.1,
                qkv_bias=False,
                tie_weights=False,
            ),
            **overrides,
        }
    )


def token_ids(n=600, seed=0):
    """A repetitive sequence (easy to learn) with some noise."""
    g = torch.Generator().manual_seed(seed)
    base = torch.arange(n) % 23
    noise = torch.randint(0, VOCAB, (n,), generator=g)
    return torch.where(torch.rand(n, generator=g) < 0.1, noise, base).tolist()


def loaders(batch_size=4, seed=5):
    ids = token_ids()
    train_loader = create_dataloader(
        ids[:500], batch_size, T, stride=T, shuffle=True, drop_last=True, seed=seed
    )
    val_loader = create_dataloader(
        ids[500:], batch_size, T, stride=T, shuffle=False, drop_last=False
    )
    return train_loader, val_loader


def fresh(seed=1, **cfg):
    torch.manual_seed(seed)
    model = GPTModel(tiny_cfg(**cfg))
    return model, torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)


def state_copy(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
