"""helpers: the code that the book "Building GPT-2 from Scratch" builds, one module per idea.

A reading list of every module, in the book's order; each module's docstring names the chapter
that builds it.

The chapters:

1. ``bpe``: the byte-pair-encoding algorithm, one merge and training (Chapter 1)
2. ``tokenizer``: byte-level BPE, the tokenizer and its files (Chapter 1)
3. ``offline``: GPT-2's tokenizer files for tiktoken without a network (Chapter 1)
4. ``data``: the-verdict, safe downloads and the sliding-window data loader (Chapter 1)
5. ``bench``: the one timing utility, used by every benchmark and chapter timing (Ch. 1, 3, 6, 7)
6. ``word_vectors``: word vectors with gensim (Chapter 2)
7. ``embeddings``: token and position embeddings (Chapter 2)
8. ``attention``: causal multi-head self-attention, one forward path (Chapter 3)
9. ``layers``: LayerNorm, GELU, feed-forward, the transformer block (Chapter 4)
10. ``model``: the GPT-2 model and its presets (Chapter 5)
11. ``train``: the loss, the training loop, the learning-rate schedule (Chapters 6 and 7)
12. ``checkpoint``: training checkpoints with a digest, loaded strictly (Chapter 7)
13. ``pretrain``: the book's settings and its cached trained model ``book_model`` (Ch. 6, 7)
14. ``kvcache``: the KV cache object that the forward path fills (Chapter 8)
15. ``sampling``: the logit filters, temperature, top-k and top-p (Chapter 8)
16. ``beam``: beam search (Chapter 8)
17. ``generate``: greedy and sampling decoding, one entry point for all (Chapter 8)
18. ``gpt2_config``: GPT-2's config.json, the hub's models and the checkpoint errors (Chapter 9)
19. ``hub``: GPT-2 checkpoints found on disk or downloaded from the hub (Chapter 9)
20. ``gpt2``: OpenAI's GPT-2 weights in and out, in the Hugging Face hub's format (Chapter 9)
21. ``perplexity``: perplexity with a sliding window (Chapter 9)
22. ``cli``: the command line's options, parsed and checked (Chapter 9)
23. ``__main__``: the command line, ``python -m helpers`` (Chapter 9)
24. ``heads``: attention weights and head scores (Chapter 10)
25. ``insight``: bertviz's inputs, the logit lens, embedding neighbours, greedy traces (Chapter 10)
26. ``viz``: the plotting functions of Chapters 2 to 7 (each takes an ``ax``, returns the figure)
27. ``viz_inside``: the plotting functions of Chapters 8 to 10
28. ``page_explorers``: explorers that work on the book's page with no kernel (Chapters 8 and 10)

The appendices (used by no chapter; each module is one appendix page's code):

29. ``speed``: training speed, one switch at a time (Appendix A, training speed)
30. ``inference``: pre-allocated cache and batched generation (Appendix B, inference speed)
31. ``distributed``: the training loop with DistributedDataParallel (Appendix, distributed)
32. ``memory``: what takes memory when training (Appendix, memory)

The exercises (checks for the reader's own answers, called from every chapter):

33. ``check``: ``check("3.2", answer)``, the verdict in one or two sentences
34. ``check_ch01``: the checks of Chapter 1's exercises
35. ``check_ch02``: the checks of Chapter 2's exercises
36. ``check_ch03``: the checks of Chapter 3's exercises
37. ``check_ch04``: the checks of Chapter 4's exercises
38. ``check_ch05``: the checks of Chapter 5's exercises
39. ``check_ch06``: the checks of Chapter 6's exercises
40. ``check_ch07``: the checks of Chapter 7's exercises
41. ``check_ch08``: the checks of Chapter 8's exercises
42. ``check_ch09``: the checks of Chapter 9's exercises
43. ``check_ch10``: the checks of Chapter 10's exercises

Nothing here runs on import: no seeds, no downloads, no plotting defaults.
"""

__version__ = "0.1.0"
