"""helpers: the code that the book "Building GPT-2 from Scratch" builds, one module per idea.

A reading list of every module, in the book's order; each module's docstring names the chapter
that builds it.

The chapters:

1. ``tokenizer``: byte-level BPE (Chapter 1)
2. ``offline``: GPT-2's tokenizer files for tiktoken without a network (Chapter 1)
3. ``data``: the-verdict, safe downloads and the sliding-window data loader (Chapter 1)
4. ``bench``: the one timing utility, used by every benchmark and chapter timing (Chapters 1, 3, 6)
5. ``word_vectors``: word vectors with gensim (Chapter 2)
6. ``embeddings``: token and position embeddings (Chapter 2)
7. ``attention``: causal multi-head self-attention, one forward path (Chapter 3)
8. ``layers``: LayerNorm, GELU, feed-forward, the transformer block (Chapter 4)
9. ``model``: the GPT-2 model and its presets (Chapter 5)
10. ``train``: the loss, the training loop, the learning-rate schedule (Chapter 6)
11. ``checkpoint``: training checkpoints with a digest, loaded strictly (Chapter 6)
12. ``pretrain``: the book's settings and its cached trained model, ``book_model`` (Chapter 6)
13. ``kvcache``: the KV cache object that the forward path fills (Chapter 7)
14. ``generate``: greedy, sampling and beam-search decoding (Chapter 7)
15. ``gpt2``: OpenAI's GPT-2 weights in and out, in the Hugging Face hub's format (Chapter 8)
16. ``perplexity``: perplexity with a sliding window (Chapter 8)
17. ``__main__``: the command line, ``python -m helpers`` (Chapter 8)
18. ``insight``: attention weights, head scores and the logit lens (Chapter 9)
19. ``viz``: the plotting functions of Chapters 2 to 6 (each takes an ``ax``, returns the figure)
20. ``viz_inside``: the plotting functions of Chapters 7 to 9

The appendices (used by no chapter; each module is one appendix page's code):

21. ``speed``: training speed, one switch at a time (Appendix A, training speed)
22. ``inference``: pre-allocated cache and batched generation (Appendix B, inference speed)
23. ``distributed``: the training loop with DistributedDataParallel (Appendix, distributed)
24. ``memory``: what takes memory when training (Appendix, memory)

Nothing here runs on import: no seeds, no downloads, no plotting defaults.
"""

__version__ = "0.1.0"
