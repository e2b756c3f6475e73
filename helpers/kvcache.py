"""The KV cache, built in Chapter 8 (Decoding); its two options in the inference-speed appendix.

A :class:`KVCache` holds the keys and values of the tokens a model has already seen, one
``(k, v)`` pair per layer, each ``(B, h, length, d_h)``. It is passed to
``GPTModel.forward(idx, cache=cache)`` (or to one attention layer with ``layer=i``), which reads
the cached keys and values and appends the new tokens' ones in place; ``forward`` always returns
only the logits. The new tokens take positions ``length .. length + T - 1``.

Two options of the same object, same forward path:

* ``max_len=N`` (pre-allocated, "static"): each layer's ``(B, h, N, d_h)`` buffers are allocated
  at the first write and filled slot by slot, instead of growing by ``torch.cat`` (which copies
  all keys and values at every step);
* ``pad`` (batched, padded generation): a ``(B,)`` tensor, the number of padding tokens on the
  left of each row. Padding keys are hidden from every query (a padding query sees itself, so no
  row of the mask is empty) and each row's positions start at 0 at its first real token, so each
  row gets the logits it would get alone.

``_next_logits`` is the model step of the decoding loops (``helpers.generate``, ``helpers.beam``):
the last position's logits, with or without a cache, rebuilding it once the context overflows;
``helpers.generate`` pre-allocates its cache (``max_len``), since it knows how long the text
will get.
"""

from __future__ import annotations

import torch


class KVCache:
    """Cached keys and values, one ``(k, v)`` pair per layer; see the module docstring."""

    def __init__(self, max_len: int | None = None, pad: torch.Tensor | None = None):
        if max_len is not None and (
            isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1
        ):
            raise ValueError(f"max_len={max_len!r} must be a positive integer (or None to grow).")
        if pad is not None and (not isinstance(pad, torch.Tensor) or pad.dim() != 1):
            raise ValueError("pad must be a (B,) tensor of left-padding counts, one per row.")
        self.max_len, self.pad = max_len, pad
        self._keys: list[torch.Tensor] = []
        self._values: list[torch.Tensor] = []
        self._lengths: list[int] = []

    def __len__(self) -> int:
        """The number of layers that have written to the cache."""
        return len(self._keys)

    def length(self, layer: int = 0) -> int:
        """The number of cached positions of ``layer`` (0 before its first write)."""
        return self._lengths[layer] if layer < len(self._lengths) else 0

    def __getitem__(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``layer``'s cached ``(k, v)``, each ``(B, h, length, d_h)``."""
        n = self._lengths[layer]
        return self._keys[layer].narrow(2, 0, n), self._values[layer].narrow(2, 0, n)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Append the new keys and values ``(B, h, T, d_h)`` of ``layer``;
        return all of that layer's keys and values so far, each
        ``(B, h, past_len + T, d_h)``."""
        if layer > len(self._keys):
            raise ValueError(
                f"layer {layer} written before layer {len(self._keys)}: "
                f"pass the layers in order, starting at 0."
            )
        if layer == len(self._keys):  # the first write of this layer
            if self.max_len is None:
                self._keys.append(k[:, :, :0])
                self._values.append(v[:, :, :0])
            else:
                # (B, h, max_len, d_h)
                shape = (*k.shape[:2], self.max_len, k.shape[3])
                self._keys.append(k.new_zeros(shape))
                self._values.append(v.new_zeros(shape))
            self._lengths.append(0)
        start = self._lengths[layer]
        end = start + k.shape[2]
        if self.max_len is None:  # grow: copies every cached key and value
            self._keys[layer] = torch.cat([self._keys[layer], k], dim=2)
            self._values[layer] = torch.cat([self._values[layer], v], dim=2)
        else:
            if end > self.max_len:
                raise ValueError(
                    f"{start} cached tokens plus {k.shape[2]} new ones make "
                    f"{end}, more than the cache's max_len={self.max_len}: "
                    "allocate a larger cache."
                )
            # written in place
            self._keys[layer].narrow(2, start, end - start).copy_(k)
            self._values[layer].narrow(2, start, end - start).copy_(v)
        self._lengths[layer] = end
        return self[layer]

    def hidden(self, causal: torch.Tensor, past_len: int) -> torch.Tensor:
        """The attention mask (True = hidden) for the queries at
        ``past_len ..``: ``causal`` ``(T, S)`` as it is, or with ``pad`` the
        ``(B, 1, T, S)`` mask that also hides each row's padding."""
        if self.pad is None:
            return causal
        T, S = causal.shape
        keys = torch.arange(S, device=causal.device)
        # (B, S)
        is_pad = keys[None, :] < self.pad.to(causal.device)[:, None]
        queries = torch.arange(past_len, past_len + T, device=causal.device)
        itself = keys[None, :] == queries[:, None]
        return (causal | is_pad[:, None, None, :]) & ~itself  # (B, 1, T, S)

    def positions(self, past_len: int, num_tokens: int, device=None) -> torch.Tensor:
        """Position ids of ``num_tokens`` new tokens: ``(T,)``, or ``(B, T)`` counted from each
        row's first real token when the rows are padded."""
        pos = torch.arange(past_len, past_len + num_tokens, device=device)
        if self.pad is None:
            return pos
        return (pos[None, :] - self.pad.to(device)[:, None]).clamp(min=0)

    def reorder(self, order: torch.Tensor) -> None:
        """Keep rows ``order`` of every layer (beam search: each beam continues another's cache)."""
        self._keys = [k.index_select(0, order) for k in self._keys]
        self._values = [v.index_select(0, order) for v in self._values]
        if self.pad is not None:
            self.pad = self.pad.index_select(0, order.to(self.pad.device))

    def crop(self, length: int) -> None:
        """Forget every position from ``length`` on."""
        if not 0 <= length <= self.length():
            raise ValueError(f"length={length} must be between 0 and the cached {self.length()}.")
        self._lengths = [min(n, length) for n in self._lengths]
        if self.max_len is None:
            self._keys = [k[:, :, :length] for k in self._keys]
            self._values = [v[:, :, :length] for v in self._values]


# -- the model step that decoding takes -------------------------------------------------------
def _next_logits(model, ids: torch.Tensor, cache, use_cache: bool, max_len: int | None = None):
    """Last-position logits ``(B, V)`` for ``ids  # (B, T)`` and the updated cache (None without
    one). The cache must hold ``ids[:, :past_len]``; when ``ids`` outgrows the context it is
    rebuilt. ``max_len``: the longest ``ids`` will get; the first cache is then pre-allocated for
    ``min(max_len, context_length)`` positions instead of growing by ``torch.cat``."""
    context_length = model.cfg.context_length
    window = ids[:, -context_length:]
    if not use_cache:
        return model(window)[:, -1, :], None
    if cache is None or ids.shape[1] > context_length:
        fits = max_len is not None and ids.shape[1] <= context_length  # else: a new cache per step
        cache = KVCache(min(max_len, context_length) if fits else None)
        logits = model(window, cache=cache)  # prefill: the whole (window of the) prompt
    else:
        logits = model(ids[:, cache.length() :], cache=cache)  # the new tokens only
    return logits[:, -1, :], cache
