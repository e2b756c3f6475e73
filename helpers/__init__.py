"""helpers: the code that the book "Building GPT-2 from Scratch" builds, one module per idea.

Modules follow the book's order; each docstring names the chapter that builds it:

- ``tokenizer``: byte-level BPE (Chapter 1)
- ``data``: the-verdict and the sliding-window data loader (Chapter 1)
- ``offline``: GPT-2's tokenizer files for tiktoken without a network (Chapter 1)
- ``bench``: small timing utilities used by the benchmark scripts and chapters

Nothing here runs on import: no seeds, no downloads, no plotting defaults.
"""

__version__ = "0.1.0"
