# %% [markdown]
# # Chapter 8: Decoding
#
# **Goal: turn a model's next-token scores into text in every way a text-generation API offers, check each against `transformers`, and make generation fast with a KV cache.**
#
# A trained language model does not write text. For the last position of its input it gives one score,
# a *logit*, to every token of the vocabulary. *Decoding* turns those scores into one chosen token,
# appends it, and asks again. Text-generation APIs in the style of `transformers` expose the same
# few knobs for that loop:
# `temperature`, `top_k`, `top_p`, `num_beams` and `do_sample`. In this chapter you will build:
#
# - greedy decoding as a loop, and measure its two weaknesses: it repeats itself and it cannot take a choice back;
# - temperature, top-k and top-p (nucleus) filtering, with their ties and a minimum-tokens guard, keeping exactly the tokens `transformers` keeps;
# - sampling with its own seeded random generator, its frequencies checked against the probabilities;
# - beam search with a length penalty and an end-of-text token, and a measured case where it finds a more probable text than greedy;
# - `helpers.generate`: one `generate(...)` with every knob, a streaming `stream(...)`, and an interactive explorer (live in a notebook, and one that works on the book's page);
# - a KV cache that gives the same ids as no cache, timed against no cache and against `transformers`.

# %%
# Setup: in Google Colab, install this book's helpers package (Colab's own
# torch stays); anywhere else this cell does nothing.
import sys

REPO = "https://github.com/gpt2-from-scratch/gpt2-from-scratch"
if "google.colab" in sys.modules:
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", f"git+{REPO}"],
        check=True,
    )

# %%
import io
import math
import tempfile
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
import transformers
from matplotlib_inline.backend_inline import set_matplotlib_formats
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from helpers.attention import causal_mask
from helpers.bench import time_turns
from helpers.check import check
from helpers.data import fetch_the_verdict
from helpers.generate import generate, stream, stream_text
from helpers.gpt2 import save_hf_checkpoint
from helpers.kvcache import KVCache
from helpers.model import (
    PRESETS,
    GPTConfig,
    GPTModel,
    count_parameters,
    flops_per_token,
)
from helpers.offline import gpt2_encoding
from helpers.page_explorers import decoding_explorer, decoding_prompt
from helpers.pretrain import BOOK_SMALL, book_model
from helpers.sampling import filter_logits, top_k_filter, top_p_filter
from helpers.viz_inside import plot_frequencies, plot_next_token_probs

DATA_DIR = (
    Path("../data") if Path("../data/README.md").exists() else Path("data")
)
# no warnings or progress bars in the outputs
transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

# figures with twice the pixels: sharp on any screen
set_matplotlib_formats("retina")

# %% [markdown]
# ## 8.1 A trained model to decode
#
# Decoding needs a model whose probabilities mean something. We use the book's trained small model:
# Chapter 6's default settings, `BOOK_SMALL` (64-dimensional vectors, one transformer block, GPT-2's
# vocabulary), trained on "The Verdict" with the same seed. No chapter depends on another having
# run, so this chapter gets its own copy from `helpers.pretrain.book_model`, which runs
# Chapter 6's training cell in one call. The first call trains (the cell prints how long it took);
# the result is cached under a name derived from everything that determines it, so later calls, in
# this chapter or another, load the same weights in a second.
#
# **In Colab, expect this cell to train: a minute or two.** The cache lives in the machine's
# home folder and its name includes the torch version, and a fresh Colab runtime starts with an
# empty home folder, so there each chapter that needs the model (Chapters 7 to 10) trains
# it once again.

# %% tags=["nbval-ignore-output"]
tokenizer = gpt2_encoding()
text = fetch_the_verdict(DATA_DIR).read_text(encoding="utf-8")
settings = BOOK_SMALL
model, history = book_model(text, tokenizer, settings)
# from here on one CPU thread, whatever the machine (Section 8.10 says why)
torch.set_num_threads(1)

# %%
print(
    f"BOOK_SMALL: emb_dim {settings.model.emb_dim}, n_layers "
    f"{settings.model.n_layers}, "
    f"n_heads {settings.model.n_heads}, context_length "
    f"{settings.model.context_length}, "
    f"{settings.num_epochs} epochs, {history.step} steps"
)
print(f"{count_parameters(model):,} parameters")

# %%
model.eval()  # no dropout from here on
context_length, V = model.cfg.context_length, model.cfg.vocab_size
print("\n".join(history.lines()[-2:]))
assert history.train_loss[-1] < 1.5 < 6 < history.val_loss[-1]

# %% [markdown]
# The training loss is low and the validation loss high (the cell above): the model has largely
# memorized the story, as Chapter 6 showed. That suits this chapter. Its next-token distributions are
# sharp where it remembers the text and spread out where it does not, and both show what each decoding
# knob does.
#
# ## 8.2 Greedy decoding
#
# The simplest decoder takes the most probable token every time: run the model on the sequence so
# far, take the logits of the last position, append their argmax, repeat. (Chapter 5's
# `generate_greedy` is this loop.) Once the sequence is longer than the context, the model sees its
# last `context_length` tokens.

# %%
def greedy_decode(model, idx, max_new_tokens):
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx[:, -context_length:])  # (B, T, V)
        next_id = logits[:, -1, :].argmax(dim=-1, keepdim=True)  # (B, 1)
        idx = torch.cat([idx, next_id], dim=1)  # (B, T + 1)
    return idx


def encode(prompt):
    return torch.tensor([tokenizer.encode(prompt)])  # (1, T)


prompt_ids = encode("Every effort moves you")
greedy_text = tokenizer.decode(
    greedy_decode(model, prompt_ids, 60)[0].tolist()
)
print(greedy_text)
assert "\n\n\n\n" in greedy_text

# %% [markdown]
# The continuation falls into runs of empty lines. Greedy decoding *repeats itself*: once a pattern
# is in the context, the model finds it more likely to continue, greedy takes it, and the pattern
# grows. The cell below measures that feedback: the probability of another newline after 0, 1, 2
# and 3 newlines.

# %%
newline = tokenizer.encode("\n")[0]
start_ids = tokenizer.encode("Every effort moves you know.")
p_newline = []
for k in range(4):
    with torch.no_grad():
        # (V,)
        logits = model(torch.tensor([start_ids + [newline] * k]))[0, -1]
    p_newline.append(torch.softmax(logits, dim=-1)[newline].item())
    print(f"after {k} newlines: P(another newline) = {p_newline[-1]:.3f}")
assert p_newline[3] > p_newline[1] > p_newline[0]

# %% [markdown]
# The second weakness: greedy *cannot backtrack*. Each choice is final, so a first token that looks
# best on its own can lead into a continuation that is less probable as a whole than one that starts
# with a lesser token. Section 8.6 measures this on real output.
#
# ## 8.3 Temperature
#
# Sampling chooses the next token at random, with the model's probabilities
# $p_i = e^{z_i} / \sum_j e^{z_j}$ for logits $z$. *Temperature* $\tau$ divides the logits before the
# softmax, $p_i \propto e^{z_i / \tau}$: below 1 the gaps between logits grow and the distribution
# gets sharper (at $\tau \to 0$ all mass goes to the largest logit: greedy); above 1 it flattens
# toward uniform. Here are the twelve most probable next tokens after "Every effort moves you" at
# three temperatures.

# %%
with torch.no_grad():
    logits = model(prompt_ids)[0, -1, :]  # (V,): the next-token logits
top = torch.topk(logits, 12).indices  # the 12 most probable tokens
labels = [tokenizer.decode([i]) for i in top.tolist()]
temperatures = (0.5, 1.0, 2.0)
fig, axes = plt.subplots(
    3, 1, figsize=(7.5, 7.5), sharey=True, layout="constrained"
)
for ax, t in zip(axes, temperatures):
    probs_t = torch.softmax(logits / t, dim=-1)  # (V,)
    plot_next_token_probs(
        probs_t[top], labels, ax=ax, title=f"temperature {t}"
    )
plt.show()

# %%
for t in temperatures:
    probs = torch.softmax(logits / t, dim=-1)  # (V,)
    entropy = torch.special.entr(probs).sum().item()  # -sum p log p, in nats
    print(
        f"temperature {t}: top token {probs.max():.3f}, "
        f"these 12 carry {probs[top].sum():.3f}, entropy {entropy:.2f} nats"
    )
sharpness = [
    torch.softmax(logits / t, dim=-1).max().item() for t in temperatures
]
assert sharpness[0] > sharpness[1] > sharpness[2]

# %% [markdown]
# At temperature 0.5 the top token " know" takes most of the probability; at 2 even the twelve most
# probable tokens together carry only a small part, and the rest is spread over tens of thousands of
# others (the entropy in the cell above).
#
# Sampling draws from these probabilities: `torch.multinomial` with a `torch.Generator` of our own,
# so that a seed makes the draws repeat without touching PyTorch's global random state. Over many
# draws the frequencies approach the probabilities:

# %%
probs = torch.softmax(logits, dim=-1)  # temperature 1
gen = torch.Generator().manual_seed(123)
# (10_000,)
draws = torch.multinomial(probs, 10_000, replacement=True, generator=gen)
freqs = torch.bincount(draws, minlength=V).float() / len(draws)  # (V,)
fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
plot_frequencies(
    probs[top],
    freqs[top],
    labels,
    ax=ax,
    title="10,000 draws, temperature 1",
)
plt.show()
gap = (freqs - probs).abs().max().item()
outside = 1 - freqs[top].sum().item()
print(f"largest gap between frequency and probability: {gap:.4f}")
print(f"{(freqs > 0).sum().item():,} different tokens drawn; "
      f"{outside:.1%} of the draws fell outside the top 12")
# the standard error of the largest frequency is about 0.004
assert gap < 0.015

# %% [markdown]
# The frequencies match the probabilities to within sampling noise. The last line of the cell above
# is the problem that the next two filters solve: a sizeable share of draws lands in the long tail of
# tokens that each have tiny probability, and one bad draw can derail a text.
#
# ## 8.4 Top-k and top-p filtering
#
# **Top-k** keeps the $k$ tokens with the largest logits and sets every other logit to $-\infty$, so
# the softmax gives them probability 0. **Top-p** (nucleus sampling, Holtzman et al., 2020)
# keeps the smallest set of most probable tokens whose probabilities add up to at least $p$: few
# tokens where the model is sure, many where it is not.

# %%
def keep_top_k(logits, k):
    # (..., 1): the k-th largest logit
    kth = torch.topk(logits, k).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def keep_top_p(logits, p):
    # most probable first
    sorted_logits, order = torch.sort(logits, descending=True)
    sorted_probs = torch.softmax(sorted_logits, dim=-1)
    # mass ranked above each
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    # the set already reached p without this token
    drop_sorted = mass_before >= p
    # undo the sort
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


filtered = {
    "top-k, k = 5": keep_top_k(logits, 5),
    "top-p, p = 0.5": keep_top_p(logits, 0.5),
    "top-p, p = 0.9": keep_top_p(logits, 0.9),
    "top-k 10, then top-p 0.5": keep_top_p(keep_top_k(logits, 10), 0.5),
}
for name, z in filtered.items():
    kept = torch.isfinite(z)
    print(f"{name:25s} keeps {kept.sum().item():3d} tokens, "
          f"probability {probs[kept].sum():.3f}")

# %% [markdown]
# Top-p adapts where top-k does not. Here the model is unsure, and "top-p, p = 0.9" keeps hundreds
# of tokens (the cell above); after "Jack Gis" it keeps one (the guard below). Applied one after the
# other, the second filter works on what the first left: in the last line top-p measures its 0.5
# within the ten survivors of top-k, renormalized, so it keeps fewer tokens than top-p alone. The
# surviving sets, among the 20 most probable tokens:

# %%
top20 = torch.topk(logits, 20).indices
labels20 = [tokenizer.decode([i]) for i in top20.tolist()]
fig, axes = plt.subplots(
    3, 1, figsize=(7.5, 8), sharey=True, layout="constrained"
)
for ax, name in zip(
    axes, ["top-k, k = 5", "top-p, p = 0.5", "top-k 10, then top-p 0.5"]
):
    kept = torch.isfinite(filtered[name][top20])
    plot_next_token_probs(
        probs[top20], labels20, ax=ax, kept=kept, title=name
    )
plt.show()

# %% [markdown]
# The order matters, and so does temperature: `transformers` applies temperature first, then top-k,
# then top-p, and `helpers.sampling.filter_logits` does the same.
#
# **Ties.** Two tokens with the same logit are equally probable, so a cut between them is arbitrary.
# Top-k compares each logit with the $k$-th largest, so every token tied with the $k$-th is kept:
# the filter may keep more than $k$ tokens. Top-p counts tokens one at a time in sorted order, so
# a tie at the boundary is split, and which of the tied tokens stays depends on the sort.

# %%
tied = torch.tensor([2.0, 1.0, 1.0, 1.0, 0.0])  # tokens 1, 2 and 3 are tied
print(
    "probabilities:",
    [f"{p:.4f}" for p in torch.softmax(tied, dim=-1).tolist()],
)
def kept_ids(z):
    return torch.isfinite(z).nonzero().flatten().tolist()


print("top-k, k = 2, keeps tokens", kept_ids(keep_top_k(tied, 2)))
print("top-p, p = 0.5, ours keeps", kept_ids(keep_top_p(tied, 0.5)))
theirs = TopPLogitsWarper(0.5)(None, tied[None])[0]
print("top-p, p = 0.5, transformers keeps", kept_ids(theirs))
assert torch.isfinite(keep_top_k(tied, 2)).sum() == 4

# %% [markdown]
# Token 0 carries less than 0.5, so top-p needs one more token and the three tied ones compete. Our
# `keep_top_p` walks a descending sort and keeps token 1; `transformers`' `TopPLogitsWarper` walks an
# ascending sort, drops tokens while the mass it has passed stays at or below $1 - p$, and keeps token
# 3. Both are correct top-p; they differ only in how the tie falls. `helpers.sampling.top_p_filter`
# uses the ascending formulation, so that it keeps exactly the tokens `transformers` keeps, ties and
# float rounding included. The tests (`tests/test_generate.py`) compare the two filters with
# `TopKLogitsWarper` and `TopPLogitsWarper` over many random logit vectors, many of them full of ties;
# here is the same check on 2,000 vectors:

# %%
gen = torch.Generator().manual_seed(0)
mismatches = 0
for trial in range(2_000):
    if trial % 2:  # small integers: many ties
        z = torch.randint(-3, 4, (1, 30), generator=gen).float()
    else:
        z = torch.randn(1, 30, generator=gen)
    k, p = trial % 7 + 1, (trial % 9 + 1) / 10
    mismatches += kept_ids(top_k_filter(z, k)) != kept_ids(
        TopKLogitsWarper(k)(None, z)
    )
    mismatches += kept_ids(top_p_filter(z, p)) != kept_ids(
        TopPLogitsWarper(p)(None, z)
    )
print(
    f"{mismatches} disagreements in 2,000 vectors, half of them full of ties"
)
assert mismatches == 0
assert kept_ids(top_k_filter(logits, 5)) == kept_ids(
    filtered["top-k, k = 5"]
)
assert kept_ids(top_p_filter(logits, 0.9)) == kept_ids(
    filtered["top-p, p = 0.9"]
)

# %% [markdown]
# On the model's logits (no ties) our inline filters and the helpers agree too (the last lines).
#
# **A guard: `min_tokens_to_keep`.** When the model is very sure, top-p keeps a single token, and
# sampling turns into greedy. Code that needs several candidates (`transformers` keeps at least two
# per beam when it samples inside beam search, so that one can be end-of-text and another not) passes
# `min_tokens_to_keep`:

# %%
with torch.no_grad():
    sure = model(encode("Jack Gis"))[0, -1]  # (V,)
best = torch.softmax(sure, dim=-1).max().item()
best_token = tokenizer.decode([sure.argmax().item()])
print(
    f"after 'Jack Gis' the top token {best_token!r} has probability "
    f"{best:.3f}"
)
for keep in (1, 3):
    kept = (
        torch.isfinite(top_p_filter(sure, 0.9, min_tokens_to_keep=keep))
        .sum()
        .item()
    )
    print(f"top-p 0.9 with min_tokens_to_keep={keep}: {kept} token(s)")
assert torch.isfinite(top_p_filter(sure, 0.9)).sum() == 1
assert (
    torch.isfinite(top_p_filter(sure, 0.9, min_tokens_to_keep=3)).sum() == 3
)

# %% [markdown]
# ## 8.5 Sampling text
#
# Put together, one sampling step is: logits of the last position, temperature, top-k, top-p, softmax,
# one draw. `do_sample=False` in a generation API means "take the argmax instead of drawing"; with it,
# temperature, top-k and top-p change nothing, because none of them ever removes the largest logit.

# %%
def sample_decode(
    model,
    idx,
    max_new_tokens,
    temperature=1.0,
    top_k=None,
    top_p=None,
    seed=0,
):
    # our own random stream, not the global one
    gen = torch.Generator().manual_seed(seed)
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx[:, -context_length:])[:, -1, :]  # (B, V)
        logits = logits / temperature
        if top_k is not None:
            logits = keep_top_k(logits, top_k)
        if top_p is not None:
            logits = keep_top_p(logits, top_p)
        probs = torch.softmax(logits, dim=-1)  # (B, V)
        # (B, 1)
        next_id = torch.multinomial(probs, num_samples=1, generator=gen)
        idx = torch.cat([idx, next_id], dim=1)
    return idx


for kw in [dict(temperature=1.0), dict(temperature=0.7, top_k=40),
           dict(temperature=1.0, top_p=0.9), dict(temperature=2.0)]:
    out = sample_decode(model, prompt_ids, 30, seed=123, **kw)
    print(f"{kw}:\n  {tokenizer.decode(out[0].tolist())!r}")

# %%
torch.manual_seed(0)
global_state = torch.get_rng_state()
a = sample_decode(model, prompt_ids, 30, temperature=0.7, top_k=40, seed=123)
b = sample_decode(model, prompt_ids, 30, temperature=0.7, top_k=40, seed=123)
assert torch.equal(a, b)  # the same seed gives the same text
# the global state is untouched
assert torch.equal(torch.get_rng_state(), global_state)
print("same seed, same text; global RNG untouched")

# %% [markdown]
# Temperature 0.7 with top-k 40 stays close to the story; temperature 2 turns into a soup of rare
# tokens, because the flattened distribution puts real mass on the tail. The first and third texts
# share their start: with the same seed the draws are the same random numbers, and top-p 0.9 only
# changes a draw that would have landed in the removed tail. That holds because of how
# `torch.multinomial` draws one sample: it gives each token its own random number and picks the
# token with the best ratio of probability to that number, so renormalizing the surviving
# probabilities does not change which of them wins. (A sampler that compares one uniform number with
# the cumulative sum of the probabilities would shift many draws.)
#
# ## 8.6 Beam search
#
# Greedy keeps one candidate text; **beam search** keeps `num_beams` of them. At each step it extends
# every beam by every token, scores each extension by its total log-probability
# $\sum_t \log p(x_t \mid x_{<t})$, and keeps the `num_beams` best. A well-known slide deck on text
# generation (see "Where these numbers come from" at the end of the chapter) draws this for "My cute
# dog": greedy commits to the most probable next word, while a beam that starts with a less probable
# word can end with a more probable sentence. {numref}`fig-beam-tree` draws two steps with two
# beams. Here is a version for one prompt and no end-of-text token:
#
# ```{figure} ../book/figures/beam_tree.svg
# :name: fig-beam-tree
# :alt: A tree growing from the prompt. Step 1: candidate tokens a, b and c with scores log p(a), log p(b), log p(c); a and b are kept, c is dropped. Step 2: a is extended by x and y, b by z and w, each scored by its parent's score plus the new token's log-probability; the two best, a x and b z, are kept.
# :width: 100%
#
# Beam search with `num_beams` 2. A text's score is the sum of its tokens' log-probabilities; at every step each beam is extended by every token and only the `num_beams` best extensions, over all beams together, survive.
# ```

# %%
def beam_decode(model, idx, max_new_tokens, num_beams):
    # (K, T): every beam starts as the prompt
    beams = idx.repeat(num_beams, 1)
    scores = torch.zeros(num_beams)
    # the beams are identical: expand only the first
    scores[1:] = float("-inf")
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(beams[:, -context_length:])[:, -1, :]  # (K, V)
        # (K, V) extensions
        total = scores[:, None] + torch.log_softmax(logits, dim=-1)
        # the K best of K * V
        scores, flat = torch.topk(total.flatten(), num_beams)
        # which beam each extends, with which token
        beam, token = flat // V, flat % V
        beams = torch.cat([beams[beam], token[:, None]], dim=1)  # (K, T + 1)
    return beams[:1]  # (1, T + new): topk sorts, so beam 0 is the best


def continuation_logprobs(model, ids, prompt_len):
    """log p of each token after the prompt, given everything before it."""
    with torch.no_grad():
        # (T - 1, V)
        logprobs = torch.log_softmax(model(ids[:, :-1]), dim=-1)[0]
    # (new,)
    return logprobs[prompt_len - 1 :].gather(1, ids[0, prompt_len:, None])[
        :, 0
    ]

# %% [markdown]
# On that deck's prompt, with 8 new tokens and 3 beams:

# %%
dog = encode("My cute dog")
n = dog.shape[1]
results = {"greedy": greedy_decode(model, dog, 8),
           "beam search": beam_decode(model, dog, 8, num_beams=3)}
totals = {}
for name, ids in results.items():
    lp = continuation_logprobs(model, ids, n)
    totals[name] = lp.sum().item()
    words = [tokenizer.decode([i]) for i in ids[0, n:].tolist()]
    print(f"{name:12s} total log-prob {totals[name]:7.3f}: "
          f"{tokenizer.decode(ids[0, n:].tolist())!r}")
    print(
        "   "
        + " ".join(
            f"{w!r}:{p:.2f}" for w, p in zip(words, lp.exp().tolist())
        )
    )
dog_greedy, dog_beam = totals["greedy"], totals["beam search"]
print(
    f"beam search's text is {math.exp(dog_beam - dog_greedy):.1f} times as "
    "probable"
)
assert dog_beam > dog_greedy

# %% [markdown]
# Both texts start with the same four tokens, " sunlit terrace" (each token's probability is printed
# under its text). For the fifth, " of" is a hair more probable than "."; greedy takes it and pays
# with improbable tokens later, while beam search keeps "." among its candidates and ends with the
# higher total log-probability. A difference $\Delta$ of totals means $e^{\Delta}$ times as probable
# (the last line). Over a dozen prompts:

# %%
prompts = [
    "Every effort moves you",
    "I HAD always thought",
    "My cute dog",
    "The picture",
    "She said",
    "He laughed",
    "It was",
    "Mrs. Gisburn",
    "I looked at",
    "The donkey",
    "Jack",
    "I turned",
]
gains = []
for prompt in prompts:
    ids = encode(prompt)
    greedy_ids, beam_ids = (
        greedy_decode(model, ids, 8),
        beam_decode(model, ids, 8, num_beams=3),
    )
    g = continuation_logprobs(model, greedy_ids, ids.shape[1]).sum().item()
    b = continuation_logprobs(model, beam_ids, ids.shape[1]).sum().item()
    gains.append(b - g)
    print(
        f"{prompt!r:25s} greedy {g:8.3f}   beam {b:8.3f}   gain {b - g:6.3f}"
    )
better = sum(gain > 1e-4 for gain in gains)
worse = sum(gain < -1e-4 for gain in gains)
print(f"beam search more probable for {better} prompts, equal for "
      f"{len(gains) - better - worse}, less probable for {worse}")
assert better >= 6 and worse == 0

# %% [markdown]
# Beam search never did worse here and often did much better (the gains above). It is not guaranteed
# to find the most probable continuation (that would mean searching all $V^{8}$ of them); it only
# looks further than greedy. Note what "more probable" buys: the beams above love runs of empty
# lines, which this model finds very probable. Beam search is at home where one right answer exists
# (translation, summaries); for open-ended text, sampling reads better.
#
# **End of text and the length penalty.** Real generation stops at an end-of-text token (`eos_id`).
# A beam that emits it is *finished*: it leaves the running beams for a list of finished hypotheses,
# and the search ends when no running beam is likely to beat the finished ones (`transformers`'
# default `early_stopping=False` judges that with a heuristic; `early_stopping="never"` is the exact
# bound). Comparing texts of
# different lengths by total log-probability favours short ones (every token adds a negative number),
# so `transformers` scores a finished hypothesis as
#
# $$
# \text{score} = \frac{\sum_t \log p(x_t \mid x_{<t})}{\text{generated length}^{\,\text{length\_penalty}}},
# $$
#
# the length counting the end-of-text token. `length_penalty = 0` is the plain total; 1 is the
# average log-probability per token; larger values favour longer texts. `helpers.beam.beam_search`
# replicates `transformers`' `_beam_search` step for step: it keeps `2 * num_beams` candidates per
# step (so that enough non-finished ones remain), lets only the first `num_beams` of them finish, and
# stops with the same `early_stopping` rules. Our model never saw GPT-2's `<|endoftext|>`, so we use
# "." as the end token: beam search then returns one sentence.

# %%
period = tokenizer.encode(".")[0]
lengths = {}
for length_penalty in (0.0, 1.0, 2.0):
    out = generate(model, prompt_ids, 40, num_beams=4, eos_id=period,
                   length_penalty=length_penalty)
    new = out[0, prompt_ids.shape[1]:]
    lengths[length_penalty] = len(new)
    print(f"length_penalty {length_penalty}: {len(new):2d} tokens "
          f"{tokenizer.decode(new.tolist())!r}")
assert lengths[0.0] < lengths[1.0]

# %% [markdown]
# With the plain total (`length_penalty = 0`) the best finished sentence is the shortest one; dividing
# by the length lets a longer sentence win (the lengths above).
#
# ## 8.7 One function: `helpers.generate`
#
# Everything so far is one function in `helpers/generate.py`:
#
# ```python
# generate(model, idx, max_new_tokens, *, temperature=1.0, top_k=None,
#          top_p=None, num_beams=1, do_sample=False, eos_id=None, seed=None,
#          length_penalty=1.0, use_cache=True)
# ```
#
# `do_sample=False` is greedy (`num_beams=1`) or beam search (`num_beams > 1`); `do_sample=True`
# samples after `filter_logits(logits, temperature, top_k, top_p)`, with a `torch.Generator` seeded by
# `seed` (never the global one); `temperature=0` means greedy. A row that emits `eos_id` is padded
# with `eos_id` afterwards, and generation stops once every row has. Sampling inside beam search is
# not implemented (it raises an error). Its filters are `apply_temperature`, `top_k_filter` and
# `top_p_filter`, each with `min_tokens_to_keep`. `use_cache` is Section 8.9's.
#
# The consolidation check: the chapter's loops and the helper give the same ids.

# %%
for prompt in prompts[:4]:
    ids = encode(prompt)
    assert torch.equal(
        greedy_decode(model, ids, 20), generate(model, ids, 20)
    )
    assert torch.equal(
        sample_decode(model, ids, 20, temperature=0.8, top_k=40, seed=7),
        generate(
            model, ids, 20, do_sample=True, temperature=0.8, top_k=40, seed=7
        ),
    )
    assert torch.equal(beam_decode(model, ids, 8, num_beams=3),
                       generate(model, ids, 8, num_beams=3))
print(
    "greedy, sampling and beam search: the same ids as the chapter's loops"
)

# %% [markdown]
# And against `transformers`: `helpers.gpt2.save_hf_checkpoint` (Chapter 9) writes our model in the
# Hugging Face hub's format, `GPT2LMHeadModel.from_pretrained` reads it, and its `generate` decodes
# with the same weights. Greedy and beam search, with "." as end of text, on the twelve prompts:

# %%
# the checkpoint is needed only to load it
with tempfile.TemporaryDirectory() as directory:
    save_hf_checkpoint(model, directory)
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(directory).eval()


def hf_generate(ids, max_new_tokens, **kw):
    return hf_model.generate(ids, attention_mask=torch.ones_like(ids),
                             max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=period, pad_token_id=period, **kw)


same_ids = 0
for prompt in prompts:
    ids = encode(prompt)
    same_ids += torch.equal(
        generate(model, ids, 20, eos_id=period), hf_generate(ids, 20)
    )
    same_ids += torch.equal(
        generate(model, ids, 20, num_beams=3, eos_id=period),
        hf_generate(ids, 20, num_beams=3),
    )
print(
    f"{same_ids} of {2 * len(prompts)} generations identical to "
    "transformers'"
)
assert same_ids == 2 * len(prompts)

# %% [markdown]
# **Streaming.** A chat window shows each token as soon as it is chosen instead of waiting for the
# whole text (a Python generator that `yield`s each id is the natural way to write it).
# `stream(...)` takes the same arguments as `generate` for one prompt (no beams: the best beam can
# change until the end) and yields each new id as an `int`. Printing needs one more step: GPT-2's
# tokens are bytes, and a character such as the emoji "😀" is split over two tokens, so
# `stream_text` holds a piece back until its characters are whole.

# %%
pieces = []
# ints
ids_stream = stream(model, prompt_ids, 30, do_sample=True, top_p=0.9, seed=3)
for piece in stream_text(ids_stream, tokenizer.decode):
    # a command line would print(piece, end="", flush=True) here
    pieces.append(piece)
print("|".join(pieces))
whole = generate(model, prompt_ids, 30, do_sample=True, top_p=0.9, seed=3)
assert "".join(pieces) == tokenizer.decode(
    whole[0, prompt_ids.shape[1] :].tolist()
)

# %% [markdown]
# The cell above prints the pieces as they arrived, separated by "|"; joined, they are exactly the
# text that `generate` returns with the same seed.
#
# ## 8.8 An explorer
#
# Move the sliders to see what temperature, top-k and top-p do to the next-token distribution after
# "Every effort moves you": the bars are the probabilities after temperature, grey and hatched for
# the tokens the filters remove; the title counts the kept tokens and their share of the probability,
# which sampling renormalizes to 1. The sliders work in a live notebook (Jupyter or Colab), and the
# rendered book leaves them out (no Python runs behind a web page); the figure after them shows three
# settings, and the explorer after that works on the page as well. On the slider, top-k 0 means off.

# %% tags=["remove-output"]
def draw_distribution(temperature=1.0, top_k=0, top_p=1.0, ax=None, n=15):
    # (V,) after temperature
    probs_t = torch.softmax(logits / temperature, dim=-1)
    # (V,)
    kept = torch.isfinite(
        filter_logits(logits, temperature, top_k or None, top_p)
    )
    # the n most probable, at any temperature
    shown = torch.topk(logits, n).indices
    names = [tokenizer.decode([i]) for i in shown.tolist()]
    title = (
        f"T {temperature:.1f}, top-k {top_k or 'off'}, top-p {top_p:.2f}: "
        f"{kept.sum().item():,} kept, mass {probs_t[kept].sum():.2f}"
    )
    return plot_next_token_probs(
        probs_t[shown], names, ax=ax, kept=kept[shown], title=title
    )


sliders = {
    "temperature": widgets.FloatSlider(
        value=1.0, min=0.1, max=3.0, step=0.1, description="temperature"
    ),
    "top_k": widgets.IntSlider(value=0, min=0, max=50, description="top_k"),
    "top_p": widgets.FloatSlider(
        value=1.0, min=0.05, max=1.0, step=0.05, description="top_p"
    ),
}
# the figure, as PNG bytes held by the widget
picture = widgets.Image(format="png")


def redraw(change=None):
    fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
    draw_distribution(
        **{name: s.value for name, s in sliders.items()}, ax=ax
    )
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)  # shown by the widget, not as an output of this cell
    picture.value = buffer.getvalue()


for slider in sliders.values():
    slider.observe(redraw, names="value")  # every move of a slider redraws
redraw()
explorer = widgets.VBox([*sliders.values(), picture])
explorer

# %%
fig, axes = plt.subplots(
    3, 1, figsize=(7.5, 8), sharey=True, layout="constrained"
)
for ax, (t, k, p) in zip(
    axes, [(1.0, 0, 1.0), (0.5, 0, 0.9), (1.5, 10, 1.0)]
):
    draw_distribution(t, k, p, ax=ax)
plt.show()

# %% [markdown]
# The explorer below needs no Python behind it, so it works on the book's page too: the cell
# computes the next-token logits of four prompts once and hands them to
# `helpers.page_explorers.decoding_explorer`, and the page redoes temperature, top-k and top-p in
# the browser, with the same arithmetic as `helpers.sampling.filter_logits` (a test runs the
# page's code against it). Pick "Jack Gis", where the model is sure, and move top-p: the kept set
# stays at a single token over most of the slider's range. Pick "Every effort moves you", set
# top-p below 1 and raise the temperature: the bars flatten and top-p keeps more and more tokens.

# %%
page_prompts = [
    "Every effort moves you",
    "Jack Gis",
    "I HAD always thought",
    " she said",
]
with torch.no_grad():
    page_data = {
        p: decoding_prompt(model(encode(p))[0, -1], tokenizer)
        for p in page_prompts
    }
decoding_explorer(
    page_data,
    name="ch08-decoding",
    checks=[
        ("Every effort moves you", 0.7, 0, 0.9),
        ("Jack Gis", 1.5, 10, 1.0),
        (" she said", 2.0, 0, 0.5),
    ],
)

# %% [markdown]
# ## 8.9 A KV cache
#
# Every loop above calls the model on the whole sequence at every step, and uses only the last
# position's logits. Because attention is causal, the earlier positions' outputs do not depend on the
# new token: the model recomputes, at every step, numbers it already had.

# %%
with torch.no_grad():
    first = model(prompt_ids)  # (1, T, V)
    # (1, T + 1)
    longer = torch.cat([prompt_ids, first[:, -1:].argmax(dim=-1)], dim=1)
    second = model(longer)  # (1, T + 1, V)
print(f"largest difference between the first T positions of the two calls: "
      f"{(second[:, :-1] - first).abs().max():.1e}")
assert torch.allclose(second[:, :-1], first, atol=1e-5)

# %% [markdown]
# What the new token needs from the earlier ones is their **keys and values** in every attention
# layer: its query is compared with their keys, and it averages their values. Everything else in a
# block (LayerNorm, the feed-forward network, the projections) works on one token at a time. So a
# *KV cache* keeps, for every layer, the keys and values of all tokens so far, two tensors of shape
# $(B, h, T, d_h)$, and each step runs the model on the new token alone: it computes that token's
# query, key and value, appends the key and value to the cache, and attends over the whole cache.
# Counted with Chapter 5's `flops_per_token`, generating 256 tokens after a 4-token prompt with
# GPT-2 small:

# %%
small = GPTConfig.from_preset("gpt2-small")
prompt_len, new_tokens = 4, 256
# input lengths
lengths_seen = range(prompt_len + 1, prompt_len + new_tokens + 1)
# t tokens, each step
no_cache = sum(t * flops_per_token(small, t) for t in lengths_seen)
with_cache = prompt_len * flops_per_token(small, prompt_len) + sum(
    # the prompt, then one per step
    flops_per_token(small, t) for t in lengths_seen[:-1])
print(
    f"without a cache: {no_cache / 1e12:.1f} TFLOPs; with one: "
    f"{with_cache / 1e12:.3f} "
    f"TFLOPs ({no_cache / with_cache:.0f}x fewer)"
)
cache_bytes = 2 * small.n_layers * small.context_length * small.emb_dim * 4
print(
    "the price: a full 1024-token cache of GPT-2 small is "
    f"{cache_bytes / 2**20:.0f} MiB"
)

# %% [markdown]
# The work drops by two orders of magnitude (the cell above). The time drops less, as Section 8.10
# measures: one token at a time, the model must still read every weight from memory for very little
# arithmetic.
#
# One attention layer, first by hand. We take the trained model's attention and feed it six token
# vectors one at a time, keeping its keys and values; the result must equal the layer applied to all
# six at once. A single new token needs no mask: it may see every cached token and itself.

# %%
att = model.trf_blocks[0].att
h, d_h, C = att.num_heads, att.head_dim, att.d_out
# (B, T, C)
x = torch.randn(1, 6, C, generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    full = att(x)  # (1, 6, C), all at once, causal mask
    k_cache = torch.empty(1, h, 0, d_h)  # (B, h, 0, d_h): nothing cached yet
    v_cache = torch.empty(1, h, 0, d_h)
    outputs = []
    for t in range(6):
        x_t = x[:, t:t + 1]  # (1, 1, C): the new token only
        # (1, h, 1, d_h)
        q = att.W_query(x_t).view(1, 1, h, d_h).transpose(1, 2)
        k = att.W_key(x_t).view(1, 1, h, d_h).transpose(1, 2)
        v = att.W_value(x_t).view(1, 1, h, d_h).transpose(1, 2)
        k_cache = torch.cat([k_cache, k], dim=2)  # (1, h, t + 1, d_h)
        v_cache = torch.cat([v_cache, v], dim=2)
        # (1, h, 1, t + 1)
        scores = q @ k_cache.transpose(-2, -1) / math.sqrt(d_h)
        # no mask: the past and itself
        weights = torch.softmax(scores, dim=-1)
        # (1, 1, C)
        context = (weights @ v_cache).transpose(1, 2).reshape(1, 1, C)
        outputs.append(att.out_proj(context))
cached = torch.cat(outputs, dim=1)  # (1, 6, C)
print(
    f"cache: keys {tuple(k_cache.shape)}, values {tuple(v_cache.shape)}; "
    "largest difference from the full layer "
    f"{(cached - full).abs().max():.1e}"
)
assert torch.allclose(cached, full, atol=1e-6)

# %% [markdown]
# Two details make a cache work in the whole model.
#
# **The position offset.** GPT-2 adds a learned position vector to each token. Alone in its call, the
# new token is at index 0 of its input, but it is really at position `past_len`, the number of cached
# tokens, and must get that position's vector: positions run from `past_len` to `past_len + T - 1`.
#
# **The causal mask with a cache.** Several new tokens at once (a prompt that continues a
# conversation, say) still need a mask: new token $i$ sits at position `past_len + i` and may see keys
# $0 \dots$ `past_len + i`. Its mask is rows `past_len` to `past_len + T - 1` of the full causal mask,
# which are `T` rows by `past_len + T` columns (True = hidden):

# %%
past_len, T_new = 3, 2
print(
    causal_mask(past_len + T_new)[
        past_len : past_len + T_new, : past_len + T_new
    ].int()
)

# %% [markdown]
# `helpers.kvcache.KVCache` holds one `(k, v)` pair per block. It is passed in, and the forward
# pass fills it in place: `MultiHeadAttention.forward(x, cache=cache, layer=i)` reads layer `i`'s
# keys and values, appends the new ones and uses that slice of its mask (no mask at all for one
# token); `TransformerBlock` passes them through; `GPTModel.forward(idx, cache=cache)` offsets the
# positions by the cache's length and refuses a cache and input longer than the context together.
# Every call still returns only the logits. With the cache, the model's logits for a prompt split
# in three parts equal those for the whole prompt, and forgetting the offset changes them:

# %%
# (1, T)
ids = encode("I HAD always thought Jack Gisburn rather a cheap genius")
with torch.no_grad():
    full = model(ids)  # (1, T, V)
    cache = KVCache()
    part1 = model(ids[:, :4], cache=cache)
    part2 = model(ids[:, 4:9], cache=cache)  # positions 4 .. 8
    part3 = model(ids[:, 9:], cache=cache)
    k0, v0 = cache[0]
    print(
        f"{len(cache)} layer; keys {tuple(k0.shape)}, values "
        f"{tuple(v0.shape)}: (B, h, T, d_h)"
    )
    # the third part again, by hand, with positions 0, 1, ...
    # instead of 9, 10, ...
    cache.crop(9)  # keep the first 9 tokens' keys and values
    wrong_positions = torch.arange(ids.shape[1] - 9)
    # (1, T - 9, C)
    x = model.tok_emb(ids[:, 9:]) + model.pos_emb(wrong_positions)
    for i, block in enumerate(model.trf_blocks):
        x = block(x, cache=cache, layer=i)
    wrong = model.out_head(model.final_norm(x))
cached = torch.cat([part1, part2, part3], dim=1)  # (1, T, V)
print(f"cached vs full: {(cached - full).abs().max():.1e}; "
      f"with the offset forgotten: {(wrong - full[:, 9:]).abs().max():.2f}")
assert torch.allclose(cached, full, atol=1e-5)
assert not torch.allclose(wrong, full[:, 9:], atol=1e-2)

# %% [markdown]
# `helpers.generate` uses the cache unless told not to (`use_cache=False`): one call on the prompt
# fills it, then each step feeds one token per row. Beam search reorders the cache after each step,
# because a beam may continue another beam's text. Past the context the window slides, every
# position shifts, and the cached keys no longer belong to the right positions, so from there on each
# step recomputes the window (`transformers`' GPT-2 cannot go past its context at all). The cache
# changes no id:

# %%
for prompt in prompts[:3]:
    ids = encode(prompt)
    for kw in [
        dict(),
        dict(do_sample=True, temperature=0.9, top_p=0.95, seed=1),
        dict(num_beams=3),
        dict(num_beams=2, eos_id=period),
    ]:
        assert torch.equal(
            generate(model, ids, 20, use_cache=True, **kw),
            generate(model, ids, 20, use_cache=False, **kw),
        ), (prompt, kw)
# 250 tokens: the next 10 cross context_length 256
long_ids = encode(text[:2000])[:, :250]
assert torch.equal(generate(model, long_ids, 10),
                   generate(model, long_ids, 10, use_cache=False))
print(
    "greedy, sampling, beam search: the same ids with and without the "
    "cache, "
    "also past the context"
)

# %% [markdown]
# ## 8.10 How fast
#
# First our small model, 150 new tokens after a short prompt, greedily:

# %% tags=["nbval-ignore-output"]
seconds = time_turns(
    {
        cache: lambda cache=cache: generate(
            model, prompt_ids, 150, use_cache=cache
        )
        for cache in (False, True)
    },
    repeat=1,
    warmup=0,
)
small_speed = {cache: 150 / s for cache, s in seconds.items()}
print(
    f"BOOK_SMALL, 150 tokens: {small_speed[False]:,.0f} tokens/s without "
    "the cache, "
    f"{small_speed[True]:,.0f} with it "
    f"({small_speed[True] / small_speed[False]:.1f}x)"
)

# %% [markdown]
# Then GPT-2 small's configuration, 124 million parameters (random weights: speed does not depend on
# their values), against `transformers`' `generate` on the same weights. The script
# `benchmarks/generate.py` measures 256 new tokens; to stay within this chapter's time budget the
# cell below measures 48, which favours the no-cache loop (its cost per step grows with the length),
# so the speed-up it shows is smaller than the script's.

# %% tags=["nbval-ignore-output"]
torch.manual_seed(0)
gpt2_small = GPTModel(
    GPTConfig.from_preset("gpt2-small", drop_rate=0.0)
).eval()
with tempfile.TemporaryDirectory() as directory:
    save_hf_checkpoint(gpt2_small, directory)
    hf_small = transformers.GPT2LMHeadModel.from_pretrained(directory).eval()
n_new = 48
def hf_small_generate(n):
    return hf_small.generate(
        prompt_ids,
        attention_mask=torch.ones_like(prompt_ids),
        max_new_tokens=n,
        min_new_tokens=n,
        do_sample=False,
        pad_token_id=50256,
    )


runs = {
    "ours, no cache": lambda: generate(
        gpt2_small, prompt_ids, n_new, use_cache=False
    ),
    "ours, KV cache": lambda: generate(gpt2_small, prompt_ids, n_new),
    "transformers": lambda: hf_small_generate(n_new),
}
# warm-up: one-off costs
generate(gpt2_small, prompt_ids, 2), hf_small_generate(2)
# the slow one once; the cached runs twice, taking turns, keeping the faster
outputs = {}
slow = time_turns(
    {"ours, no cache": runs["ours, no cache"]},
    repeat=1,
    warmup=0,
    outputs=outputs,
)
fast = time_turns(
    {name: runs[name] for name in ("ours, KV cache", "transformers")},
    repeat=2,
    warmup=0,
    reduce="min",
    outputs=outputs,
)
speed = {name: n_new / s for name, s in {**slow, **fast}.items()}
assert all(
    torch.equal(out, outputs["transformers"]) for out in outputs.values()
)
n_params = count_parameters(gpt2_small)
print(
    f"GPT-2 small config: {n_params:,} parameters, {4 * n_params / 1e6:.0f} "
    "MB of float32 "
    f"weights; {n_new} new tokens, one thread:"
)
for name, tps in speed.items():
    print(f"  {name:15s} {tps:6.1f} tokens/s")
# input lengths
seen = range(prompt_ids.shape[1] + 1, prompt_ids.shape[1] + n_new + 1)
flop_ratio = sum(t * flops_per_token(small, t) for t in seen) / (
    prompt_ids.shape[1] * flops_per_token(small, prompt_ids.shape[1])
    + sum(flops_per_token(small, t) for t in seen[:-1]))
print(
    f"FLOP count: {flop_ratio:.0f}x fewer with the cache for {n_new} new "
    "tokens"
)
print(
    "cache vs no cache "
    f"{speed['ours, KV cache'] / speed['ours, no cache']:.1f}x; "
    "ours vs transformers "
    f"{speed['ours, KV cache'] / speed['transformers']:.2f}x"
)

# %% [markdown]
# The three produce the same ids (the assert). On our small model the cache wins by a wide margin
# (the first cell), because without it each step recomputes the output head, 50,257 logits, for every
# earlier position too. On GPT-2 small the cache's gain is far smaller than the FLOP count predicts
# for these tokens (both are in the cell above),
# and grows with the number of tokens (`benchmarks/generate.py` measures 256). With one token per
# step the model does two floating-point operations per weight and must read every weight from
# memory (the megabytes in the cell above): memory, not arithmetic, sets the pace. The last line of
# the cell above is our cached loop's speed over `transformers`' `generate` on the same weights (above
# 1: ours is faster). Runs this short are noisy: timings on a shared machine move by tens of percent
# from run to run, so `benchmarks/generate.py` repeats 128- and 256-token runs in turns.
# {doc}`../book/appendix_speed_inference` reports those, and what made our loop faster: fused
# LayerNorm and GELU kernels, fewer small operations per cached step (`benchmarks/op_count.py` counts
# them), a pre-allocated cache, and several prompts generated in one padded batch.
#
# Why one thread? This chapter sets `torch.set_num_threads(1)` after loading the model. Its models are
# small enough that a second thread gains little; with one thread the order of floating-point sums
# in this chapter's decoding does not depend on how many cores the machine has (the model itself was
# trained with all of them: {doc}`../book/results` says what that changes), and a busy machine slows the
# chapter less. `benchmarks/generate.py --threads 2` measures with more.
#
# ```{admonition} Where these numbers come from
# :class: dropdown
# The prompt "My cute dog" and the beam-search picture in words come from a slide deck on attention
# visualization and text-generation parameters; the streaming loop is written as in a blog post on
# a small GPT trained from scratch. Every number on this page is computed by the cells above, with
# `transformers`' `generate` as the reference. {ref}`seeds` lists the write-ups the book grew from.
# ```
#
# ## Summary
#
# - Decoding turns the last position's logits into one token and repeats. Greedy takes the argmax; it
#   falls into loops (the probability of another empty line grew with every empty line) and cannot
#   revise a choice.
# - Temperature divides the logits: below 1 sharper, above 1 flatter, 0 greedy. Sampling with a
#   `torch.Generator` of its own matches the softmax frequencies and repeats with a seed.
# - Top-k keeps the $k$ largest logits and every logit tied with the $k$-th; top-p keeps the smallest
#   set of most probable tokens with mass at least $p$, splitting a tie at the boundary in sort order;
#   `min_tokens_to_keep` guards both. Applied after temperature, top-k before top-p.
# - Beam search keeps `num_beams` texts by total log-probability; on our model it found more probable
#   continuations than greedy ("My cute dog" included) and never less probable ones. Finished
#   hypotheses are scored by total log-probability over length to the power `length_penalty`.
# - A KV cache keeps each layer's keys and values, `(B, h, T, d_h)`, so that each step runs the new
#   token only, with positions offset by the cache's length and the causal mask's matching rows. Same
#   ids, far less work.
#
# Moved into `helpers/`:
#
# - `helpers.generate`: `generate(model, idx, max_new_tokens, *, temperature, top_k, top_p, num_beams,
#   do_sample, eos_id, seed, length_penalty, use_cache)`, `stream(...)` (yields `int` ids for one
#   prompt) and `stream_text(ids, decode)`. Checked against `transformers` by
#   `tests/test_generate.py`; timed by `benchmarks/generate.py`.
# - `helpers.sampling`: the filters `apply_temperature`, `top_k_filter`, `top_p_filter`,
#   `filter_logits`.
# - `helpers.beam`: `beam_search(..., early_stopping=False)`.
# - `helpers.kvcache`: `KVCache`, passed to `GPTModel.forward(idx, cache=cache)` (and through
#   `TransformerBlock` to `MultiHeadAttention.forward(x, cache=cache, layer=i)`), filled in place.
# - `helpers.viz_inside`: `plot_next_token_probs` and `plot_frequencies`.
# - `helpers.page_explorers`: `decoding_prompt` and `decoding_explorer`, the explorer that works
#   on the page with no Python behind it.
#
# ## Exercises

# %% [markdown]
# Each exercise whose answer is code or a value has a cell for your answer and a cell that checks
# it: `check("8.1", my_answer)` runs your answer on small cases, edge cases included, and says in
# a sentence or two what is wrong and where, with a hint, or that it is right. Until you write
# something it says "not attempted yet". The worked solution stays folded below.
#
# **Exercise 8.1.** A *repetition penalty* (Keskar et al., 2019, for the CTRL model) makes tokens that already appear in
# the text less likely: for each such token, a positive logit is divided by the penalty and a negative
# one multiplied by it. Write `my_penalize_repeats(logits, ids, penalty)` for logits `(B, V)` and
# the ids so far `(B, T)`, check it against `transformers`' `RepetitionPenaltyLogitsProcessor`,
# and count the newline tokens in 60 greedy tokens after "Every effort moves you" with a penalty
# of 1.3 and without one.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_penalize_repeats(logits, ids, penalty):
    raise NotImplementedError


# %%
check("8.1", my_penalize_repeats)

# %% [markdown]
# ```{admonition} Solution 8.1
# :class: dropdown
# Gather the logits of the tokens in `ids`, change them with `torch.where` on their sign, and scatter
# them back; a token that appears several times is changed once. In a greedy loop the penalty is
# applied before the argmax; each newline makes the next one less likely, so the runs of empty
# lines shrink (the cell counts them).
# ```

# %% tags=["hide-cell"]
def penalize_repeats(logits, ids, penalty):
    # (B, T): logits of the tokens already there
    seen = torch.gather(logits, 1, ids)
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(1, ids, seen)


z = torch.randn(2, V, generator=torch.Generator().manual_seed(0))
past = torch.randint(
    0, V, (2, 12), generator=torch.Generator().manual_seed(1)
)
theirs = RepetitionPenaltyLogitsProcessor(1.3)(past, z.clone())
assert torch.equal(penalize_repeats(z, past, 1.3), theirs)


def greedy_with_penalty(ids, max_new_tokens, penalty):
    for _ in range(max_new_tokens):
        with torch.no_grad():
            # (1, V)
            next_logits = model(ids[:, -context_length:])[:, -1, :]
        next_logits = penalize_repeats(next_logits, ids, penalty)
        next_id = next_logits.argmax(dim=-1, keepdim=True)  # (1, 1)
        ids = torch.cat([ids, next_id], dim=1)
    return ids


counts = {}
for penalty in (1.0, 1.3):
    out = greedy_with_penalty(prompt_ids, 60, penalty)[
        0, prompt_ids.shape[1] :
    ]
    counts[penalty] = (out == newline).sum().item()
    print(
        f"penalty {penalty}: {counts[penalty]} newlines in 60 tokens:"
    )
    print(f"  {tokenizer.decode(out.tolist())!r}")
assert counts[1.3] < counts[1.0]
assert check("8.1", penalize_repeats).passed
check("8.1", penalize_repeats)

# %% [markdown]
# **Exercise 8.2.** *Min-p* filtering keeps the tokens whose probability is at least `min_p` times the
# probability of the most probable token. Write `my_min_p_filter(logits, min_p)` (the other logits
# set to `-inf`), check that it keeps the same tokens as `transformers`' `MinPLogitsWarper` on 500
# random logit vectors, and print how many tokens it keeps at `min_p = 0.1` after "Every effort
# moves you" and after "Jack Gis".

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_min_p_filter(logits, min_p):
    raise NotImplementedError


# %%
check("8.2", my_min_p_filter)

# %% [markdown]
# ```{admonition} Solution 8.2
# :class: dropdown
# Compare the softmax with `min_p` times its maximum, row by row. Like top-p it adapts to the model's
# confidence: more tokens where the top token is weak, fewer where it dominates.
# ```

# %% tags=["hide-cell"]
def min_p_filter(logits, min_p):
    probs = torch.softmax(logits, dim=-1)
    threshold = min_p * probs.amax(dim=-1, keepdim=True)  # (..., 1)
    return logits.masked_fill(probs < threshold, float("-inf"))


gen = torch.Generator().manual_seed(2)
for _ in range(500):
    z = torch.randn(3, 40, generator=gen) * 2
    theirs = MinPLogitsWarper(0.1)(None, z)
    assert torch.equal(
        torch.isfinite(min_p_filter(z, 0.1)), torch.isfinite(theirs)
    )
kept_unsure = torch.isfinite(min_p_filter(logits, 0.1)).sum().item()
kept_sure = torch.isfinite(min_p_filter(sure, 0.1)).sum().item()
print(
    f"min-p 0.1 keeps {kept_unsure} tokens after 'Every effort moves "
    "you', "
    f"{kept_sure} after 'Jack Gis'"
)
assert kept_unsure > kept_sure >= 1
assert check("8.2", min_p_filter).passed
check("8.2", min_p_filter)

# %% [markdown]
# **Exercise 8.3.** How much memory does a KV cache take? Write
# `my_kv_cache_bytes(cfg, num_tokens, batch_size)`, the bytes of a float32 cache of `num_tokens`
# tokens for `batch_size` sequences of a configuration; print it for GPT-2's four sizes
# (`PRESETS`) at their full context, and check it against the bytes of the cache our model
# fills for a 256-token input.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_kv_cache_bytes(cfg, num_tokens, batch_size):
    raise NotImplementedError


# %%
check("8.3", my_kv_cache_bytes)

# %% [markdown]
# ```{admonition} Solution 8.3
# :class: dropdown
# Each of the $L$ layers keeps keys and values, each $T \times C$ numbers for one sequence ($h$ heads
# of $d_h$ features make $C$), so $2 L T C$ numbers of 4 bytes per sequence. GPT-2 XL at 1024
# tokens needs 600 MiB per sequence (the cell below computes it), which is why long contexts and
# large batches are limited by the cache.
# ```

# %% tags=["hide-cell"]
def kv_cache_bytes(
    cfg, num_tokens=None, batch_size=1, bytes_per_number=4
):
    num_tokens = (
        cfg.context_length if num_tokens is None else num_tokens
    )
    return (
        2
        * cfg.n_layers
        * num_tokens
        * cfg.emb_dim
        * batch_size
        * bytes_per_number
    )


for name in PRESETS:
    cfg = GPTConfig.from_preset(name)
    mib = kv_cache_bytes(cfg) / 2**20
    print(f"{name:12s} {mib:6.0f} MiB at {cfg.context_length} tokens")
with torch.no_grad():
    full_cache = KVCache()
    model(encode(text[:2000])[:, :256], cache=full_cache)
measured = sum(t.nbytes for kv in full_cache for t in kv)
print(f"our model, 256 tokens: {measured:,} bytes measured, "
      f"{kv_cache_bytes(model.cfg, 256):,} predicted")
assert measured == kv_cache_bytes(model.cfg, 256)
assert check("8.3", kv_cache_bytes).passed
check("8.3", kv_cache_bytes)

# %% [markdown]
# **Exercise 8.4.** Write `my_top_p_filter(logits, p)` from Section 8.4's definition, without
# looking at `keep_top_p`: for each row of logits, keep the smallest set of most probable tokens
# whose probabilities add up to at least `p`, and set the others to `-inf`. Then, with the
# helpers' `top_k_filter` and `top_p_filter` (which break ties as `transformers` does), look at
# logits tied at the top, `[1, 3, 3, 0.5, 3]`: which tokens does `top_k=1`
# keep, which does `top_p=1e-6` keep, and which does greedy's `argmax` pick? Then show with
# `helpers.generate.generate` that sampling with `top_k=1` or `top_p=1e-6` gives exactly greedy's
# ids for any seed and temperature, on five prompts. Why do they match greedy there, and when
# would they not?

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_top_p_filter(logits, p):
    raise NotImplementedError


# %%
check("8.4", my_top_p_filter)

# %% [markdown]
# ```{admonition} Solution 8.4
# :class: dropdown
# Sort each row most probable first and keep a token while the probability ranked above it is
# still below $p$: the token that makes the mass reach $p$ stays, and so does the most probable
# one, whatever $p$. Top-k with $k = 1$ leaves one finite logit, the largest, so the softmax puts
# all mass on it and every draw is the argmax. Top-p with a tiny $p$ keeps the most probable
# token alone, so it matches greedy too. Both can fail when several tokens tie for the largest
# logit, which real logits almost never do. Top-k keeps every token tied with the $k$-th, so
# `top_k=1` keeps all the tied tokens and a draw picks any of them at random. Top-p keeps
# exactly one of them, the one its sort puts first among the most probable, which is
# deterministic but need not be the lowest index that greedy's `argmax` returns: which tied
# token survives depends on the sort (the helpers', like `transformers`', keeps a different one
# from a descending sort). The cell's first lines show both on the tied logits.
# ```

# %% tags=["hide-cell"]
def nucleus_filter(logits, p):
    # most probable first
    sorted_logits, order = torch.sort(logits, descending=True)
    sorted_probs = torch.softmax(sorted_logits, dim=-1)
    # ranked above each token
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    drop_sorted = mass_before >= p
    # undo the sort
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


assert check("8.4", nucleus_filter).passed
# tokens 1, 2 and 4 tie at the top
tied_top = torch.tensor([[1.0, 3.0, 3.0, 0.5, 3.0]])
kept_k = (
    torch.isfinite(top_k_filter(tied_top, 1)).nonzero()[:, 1].tolist()
)
kept_p = (
    torch.isfinite(top_p_filter(tied_top, 1e-6))
    .nonzero()[:, 1]
    .tolist()
)
print(f"tied logits: greedy picks token {tied_top.argmax().item()};",
      f"top_k=1 keeps {kept_k}, top_p=1e-6 keeps {kept_p}")
assert (
    kept_k == [1, 2, 4]
    and len(kept_p) == 1
    and kept_p != [tied_top.argmax().item()]
)
for i, prompt in enumerate(prompts[:5]):
    ids = encode(prompt)
    greedy_ids = generate(model, ids, 20)
    for seed, t in [(i, 0.5), (i + 10, 2.0)]:
        for kw in (dict(top_k=1), dict(top_p=1e-6)):
            sampled = generate(
                model,
                ids,
                20,
                do_sample=True,
                temperature=t,
                seed=seed,
                **kw,
            )
            assert torch.equal(sampled, greedy_ids), (prompt, seed, kw)
print(
    "top_k=1 and top_p=1e-6 sampling give greedy's ids (5 prompts, 2 "
    "seeds each)"
)
check("8.4", nucleus_filter)

# %% [markdown]
# **Exercise 8.5.** Sample eight 30-token continuations of "Every effort moves you" at temperatures
# 0.5, 1.0 and 1.5. Write `my_average_logprob(model, ids, prompt_len)`: the average
# log-probability per token that `model` (at temperature 1) gives the continuation tokens of `ids`
# `(B, T)`, those from position `prompt_len` on. Measure it for the three temperatures. What does
# temperature trade?

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_average_logprob(model, ids, prompt_len):
    raise NotImplementedError


# %%
check("8.5", my_average_logprob)

# %% [markdown]
# ```{admonition} Solution 8.5
# :class: dropdown
# The logits at position $t$ predict token $t + 1$, so token `ids[:, t]` is scored by the
# log-softmax at position $t - 1$; average those entries over the continuation. Lower
# temperature picks tokens the model finds likely, so the average log-probability is highest at
# 0.5 and lowest at 1.5: temperature trades likelihood (safe, repetitive text) for diversity.
# ```

# %% tags=["hide-cell"]
@torch.no_grad()
def average_logprob(model, ids, prompt_len):
    # (B, T - 1, V): for ids[:, 1:]
    lp = torch.log_softmax(model(ids[:, :-1]), dim=-1)
    return (
        lp[:, prompt_len - 1 :]
        .gather(2, ids[:, prompt_len:, None])
        .mean()
        .item()
    )


batch = prompt_ids.repeat(8, 1)  # (8, T): eight samples at once
average = {}
for t in (0.5, 1.0, 1.5):
    # (8, T + 30)
    out = generate(
        model, batch, 30, do_sample=True, temperature=t, seed=5
    )
    # over (8, 30)
    average[t] = average_logprob(model, out, prompt_ids.shape[1])
    print(
        f"temperature {t}: average log-probability per token "
        f"{average[t]:.3f}"
    )
assert average[0.5] > average[1.0] > average[1.5]
assert check("8.5", average_logprob).passed
check("8.5", average_logprob)
