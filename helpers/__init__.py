"""helpers: the code that the book "Building GPT-2 from Scratch" builds, one module per idea.

Modules follow the book's order; each docstring names the chapter that builds it:

- ``tokenizer``: byte-level BPE (Chapter 1)
- ``data``: the-verdict and the sliding-window data loader (Chapter 1)
- ``offline``: GPT-2's tokenizer files for tiktoken without a network (Chapter 1)
- ``embeddings``: token and position embeddings, word vectors (Chapter 2)
- ``attention``: causal multi-head self-attention (Chapter 3)
- ``layers``: LayerNorm, GELU, feed-forward, the transformer block (Chapter 4)
- ``model``: the GPT-2 model and its presets (Chapter 5)
- ``train``: losses, the training loop, checkpoints (Chapter 6)
- ``gpt2``: OpenAI's GPT-2 weights in and out, in the Hugging Face hub's format (Chapter 8)
- ``viz``: the book's plotting functions (each takes an ``ax`` and returns the figure)
- ``bench``: small timing utilities used by the benchmark scripts and chapters

Nothing here runs on import: no seeds, no downloads, no plotting defaults.
"""

__version__ = "0.1.0"
