# %% [markdown]
# # Chapter 10: Seeing inside
#
# **Goal: open up a trained GPT and look at what it computes: where each attention head looks, what its embeddings learned, and how its guess for the next token forms block by block.**
#
# What you will build:
#
# - a small GPT, trained in this chapter in under a minute, with attention maps taken from its own forward pass: one head, and every layer and head at once;
# - four scores per head that find the heads that look at the previous token, the first token, the token itself and earlier copies of the same token, and a fifth measure of which *kinds* of tokens the other heads seek out;
# - bertviz's head view and model view, fed from our model;
# - maps of the embeddings: chosen words in two dimensions, nearest neighbours, and the similarity of positions;
# - an inference explorer with ipywidgets: type a prompt, step through generation, watch the probabilities and the attention (with a static copy of each view for the printed page), and explorers of the attention and the embeddings that work on the book's page with no Python behind it;
# - the logit lens, the model's running guess after every block;
# - the same head scores and logit lens on OpenAI's GPT-2 (on a stand-in, labelled, where there is no network);
# - `helpers.heads` and `helpers.insight`, which hold these tools for any `GPTModel`.

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
import tempfile
import time
from collections import Counter
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from bertviz import head_view, model_view
from IPython.display import display
from matplotlib_inline.backend_inline import set_matplotlib_formats

import helpers.heads
import helpers.insight
from helpers.check import check
from helpers.data import create_dataloader, fetch_the_verdict
from helpers.gpt2 import load_hf_checkpoint, save_hf_checkpoint
from helpers.gpt2_config import CheckpointError
from helpers.heads import (
    attention_distance,
    attention_entropy,
    key_token_preference,
    uniform_attention,
)
from helpers.insight import (
    cosine_similarity_matrix,
    greedy_trace,
    nearest_tokens,
    token_strings,
)
from helpers.model import GPTConfig, GPTModel, count_parameters
from helpers.offline import gpt2_encoding
from helpers.page_explorers import (
    attention_explorer,
    attention_prompt,
    embedding_map,
)
from helpers.pretrain import book_model
from helpers.tokenizer import LLAMA3_SPLIT_PATTERN, BPETokenizer
from helpers.train import train
from helpers.viz import (
    plot_attention,
    plot_per_layer,
    plot_similarity_by_distance,
    plot_table,
    plot_word_map,
)
from helpers.viz_inside import (
    plot_attention_grid,
    plot_head_scores,
    plot_logit_lens,
    plot_next_token_probs,
)
from helpers.word_vectors import pca_2d

DATA_DIR = (
    Path("../data") if Path("../data/README.md").exists() else Path("data")
)

# figures with twice the pixels: sharp on any screen
set_matplotlib_formats("retina")

# %% [markdown]
# Chapters 5 and 6 built a GPT and trained it; the model turns token ids into next-token
# probabilities, and nothing in between is hidden: every weight and every intermediate tensor is
# a PyTorch tensor we can print. This chapter looks at three kinds of them. The *attention
# weights* say, for every position, how much each earlier token contributes to it. The
# *embeddings* are the vectors the model gives each token and each position. The *residual
# stream* between the blocks can be read out as a next-token guess long before the last block.
#
# Looking is easy; reading what you see is not. Every picture below comes with a number that
# says how far it departs from what a model with no preferences at all would show, because a
# pattern that also appears in an untrained model tells you nothing about training.

# %% [markdown]
# ## 10.1 A small model to look inside
#
# To see structure we need a trained model, and to keep this chapter self-contained we train one
# here, in the spirit of a blog post that trained a GPT of 4 heads and 5 blocks on a short context
# and "gathered all the attentions and painted them" (see "Where these numbers come from" at the
# end of the chapter). Its ingredients:
#
# - Chapter 1's byte-level BPE, trained with Llama 3's split pattern to 2,000 tokens on Edith
#   Wharton's "The Verdict" {cite}`wharton1908verdict`;
# - Chapter 5's `GPTModel` with GPT-2's design (query, key and value biases, the output head
#   tied to the token embedding), shrunk to $C = 64$, $h = 4$ heads, $L = 5$ blocks and a
#   context of $T = 16$ tokens;
# - Chapters 6 and 7's training loop, `helpers.train.train`.

# %%
text = fetch_the_verdict(DATA_DIR).read_text(encoding="utf-8")
tok = BPETokenizer().train(
    text, vocab_size=2000, pattern=LLAMA3_SPLIT_PATTERN
)
ids = tok.encode(text)
split = int(0.9 * len(ids))
print(
    f"{len(text):,} characters -> {len(ids):,} tokens, vocabulary "
    f"{tok.n_vocab:,}"
)
print(f"training tokens: {split:,}, validation tokens: {len(ids) - split:,}")

# %% [markdown]
# The story is tiny, a few thousand tokens (the cell above), and a model with hundreds of
# thousands of parameters learns it by heart if we let it. Two choices slow that down. Training
# windows start at *every* token (`stride=1`), so no token always sits at the same position of
# its window; and dropout is 0.3, the rate that blog post used. Four passes over the windows take
# well under a minute on a laptop CPU.
#
# One more setting: PyTorch runs on one CPU thread from here on. This model's matrices are so
# small that splitting each product between threads saves little, and on the small shared
# machines that build this book a second thread made training slower, not faster. One thread
# also keeps the order of floating-point sums independent of the number of cores (another CPU's
# vector instructions can still change the last digits).

# %%
cfg = GPTConfig(
    vocab_size=tok.n_vocab,
    context_length=16,
    emb_dim=64,
    n_heads=4,
    n_layers=5,
    drop_rate=0.3,
    qkv_bias=True,
    tie_weights=True,
)
train_loader = create_dataloader(
    ids[:split],
    batch_size=32,
    context_length=16,
    stride=1,
    shuffle=True,
    seed=123,
)
val_loader = create_dataloader(
    ids[split:],
    batch_size=32,
    context_length=16,
    stride=16,
    shuffle=False,
    drop_last=False,
)
default_threads = torch.get_num_threads()  # Section 10.10 needs it once more
torch.set_num_threads(1)
torch.manual_seed(123)
model = GPTModel(cfg)
# (16, C), for Section 10.6
untrained_pos = model.pos_emb.weight.detach().clone()
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
start = time.perf_counter()
history = train(
    model,
    train_loader,
    val_loader,
    optimizer,
    num_epochs=4,
    eval_every=150,
    eval_iters=10,
    progress=False,
)
train_seconds = time.perf_counter() - start
model.eval()  # no dropout from here on
print(f"{count_parameters(model):,} parameters, {history.step} steps")
print("\n".join(history.lines()))

# %% tags=["nbval-ignore-output"]
print(f"training took {train_seconds:.0f} s")

# %% [markdown]
# The training cell prints the losses: the training loss falls steadily, epoch after epoch, while
# the validation loss drops steeply in the first epoch, falls only a little in the next two and
# rises in the last. With so little text the model mostly memorizes. It still has to route information
# between positions to do that, and that routing is what we look at.

# %% [markdown]
# ## 10.2 The attention weights come from the model itself
#
# There is no second copy of the model for drawing. Chapter 5's `GPTModel.forward` takes a list
# as `attn_weights` and appends to it $L$ tensors, one per block, each
# `(B, h, T, T)`: entry `[b, k, t, s]` is how much query position `t` of head `k` takes from key
# position `s`. Asking for them switches attention from PyTorch's fused kernel (which never
# stores the weights) to Chapter 3's explicit softmax, so the logits must stay the same up to
# float rounding. A sentence from the story:

# %%
sentence = (
    " height of his glory, he had dropped his painting, married a rich widow"
)
x = torch.tensor([tok.encode(sentence)])  # (B, T) = (1, 16)
tokens = token_strings(tok, x[0])
with torch.no_grad():
    plain_logits = model(x)  # (B, T, V)
    weights = []
    logits = model(x, attn_weights=weights)  # weights: L x (B, h, T, T)
print(f"{len(tokens)} tokens, | between them:")
print("|".join(tokens))
print(
    f"{len(weights)} layers of weights, each {tuple(weights[0].shape)} (B, "
    "h, T, T)"
)
difference = (plain_logits - logits).abs().max().item()
print(
    "largest logit difference with and without attn_weights: "
    f"{difference:.1e}"
)
assert x.shape == (1, cfg.context_length)
assert torch.allclose(plain_logits, logits, atol=1e-5, rtol=0)

# %% [markdown]
# The two passes agree to the last few bits of a float32 (the difference printed above), and
# the weights have the properties Chapter 3 gave them: every row is a probability distribution,
# and everything above the diagonal, the future, is exactly zero.

# %%
stacked = torch.stack(weights)  # (L, B, h, T, T)
print(
    "rows sum to 1:",
    torch.allclose(stacked.sum(-1), torch.ones(stacked.shape[:-1])),
)
print(
    "weights above the diagonal:",
    stacked.triu(diagonal=1).abs().max().item(),
)
assert torch.allclose(stacked.sum(-1), torch.ones(stacked.shape[:-1]))
assert torch.all(stacked.triu(diagonal=1) == 0)

# %% [markdown]
# ## 10.3 Attention maps
#
# Chapter 3's `plot_attention` draws one head: query positions down the side, key positions
# along the bottom, darker for more weight. Here is head 0 of the first block on our sentence.
# The causal triangle is the first thing you see: the top-right half is empty because no token
# may look ahead.

# %%
fig = plot_attention(
    weights[0][0, 0], tokens, annotate=False, title="layer 0, head 0"
)
plt.show()

# %% [markdown]
# Most of each row sits on the diagonal: this head mostly looks at the token itself. Now look
# at the two tokens that occur twice, " his" and ",". Their second occurrences keep part of their
# weight for themselves and give part to their *earlier copy*:

# %%
w00 = weights[0][0, 0]  # (T, T): layer 0, head 0
print(f"mean weight on the token itself: {w00.diagonal().mean():.2f}")
for t in (8, 10):
    first = tokens.index(tokens[t])
    print(f"query {tokens[t]!r} at position {t}: itself {w00[t, t]:.2f}, "
          f"its earlier copy at position {first} {w00[t, first]:.2f}")
    assert first < t and w00[t, first] > 0.1
assert w00.diagonal().mean() > 0.8

# %% [markdown]
# Before reading more into one head, gather all of them, every layer and every head, and paint
# them in one grid:

# %%
fig = plot_attention_grid(stacked[:, 0], tokens)
plt.show()

# %% [markdown]
# The grid shows at a glance that the first block is different from the others. All four heads
# of layer 0 have a sharp diagonal; the later layers spread their attention over many earlier
# tokens, with a few columns (a few key tokens) standing out in some heads. One sentence is an
# anecdote, though. The next section measures the same things over many windows of text.

# %% [markdown]
# ## 10.4 Scoring heads
#
# Interpretability work on GPT-2 has named heads by what they attend to: *previous-token heads*
# that look one position back, heads that dump their attention on the *first token* when they
# have nothing to do, and *duplicate-token heads* that look at earlier copies of the current token
# (Wang et al., 2022). Previous-token heads matter beyond themselves: an
# [induction
# head](https://transformer-circuits.pub/2022/in-context-learning-and-induction-heads/index.html),
# which continues a repeated pattern, is built from one in an earlier layer (it attends to the
# token *after* an earlier copy of the current token, and knows which token that is because the
# previous-token head wrote it there). Each pattern is a simple average over the weights of a head,
# taken over queries $t \ge 1$ (query 0 can only look at itself):
#
# - previous-token score: the mean of $w_{t, t-1}$;
# - first-token score: the mean of $w_{t, 0}$;
# - self score: the mean of $w_{t, t}$;
# - same-token score: the weight on all earlier positions $s < t$ that hold the same token id as
#   $t$, averaged over the queries that have such a copy.

# %%
def previous_score(w):  # w: (B, h, T, T) -> (h,)
    return w.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, -1))


def first_score(w):
    return w[..., 1:, 0].mean(dim=(0, -1))


def self_attention_score(w):
    return w.diagonal(dim1=-2, dim2=-1)[..., 1:].mean(dim=(0, -1))


# idx: (B, T), the ids the weights were computed from
def same_score(w, idx):
    T = idx.shape[1]
    earlier = torch.ones(T, T, dtype=torch.bool).tril(diagonal=-1)  # s < t
    copies = (idx[:, :, None] == idx[:, None, :]) & earlier  # (B, T, T)
    has_copy = copies.any(dim=-1)  # (B, T)
    # (B, h, T): weight on earlier copies
    mass = (w * copies[:, None]).sum(dim=-1)
    return (mass * has_copy[:, None]).sum(dim=(0, -1)) / has_copy.sum()


def score_table(weights, idx):  # weights: L x (B, h, T, T) -> {name: (L, h)}
    return {"previous": torch.stack([previous_score(w) for w in weights]),
            "first": torch.stack([first_score(w) for w in weights]),
            "self": torch.stack([self_attention_score(w) for w in weights]),
            "same": torch.stack([same_score(w, idx) for w in weights])}


# %% [markdown]
# A score means little without a baseline. A head with no preference at all spreads query $t$
# evenly over its $t + 1$ visible keys (`helpers.heads.uniform_attention`); on 16 tokens its
# previous-token, first-token and self scores are all the mean of $1/(t+1)$, and its same-token
# score depends on how often tokens repeat. The scores are computed over every 16-token window
# of the validation text, which the model never trained on:

# %%
# (B, T): every validation window
X_val = torch.stack([x for x, _ in val_loader.dataset])
with torch.no_grad():
    val_weights = []
    model(X_val, attn_weights=val_weights)
scores = score_table(val_weights, X_val)
# (B, 1, T, T): one even head
even = uniform_attention(16).expand(len(X_val), 1, 16, 16)
baseline = {
    name: s[0, 0].item() for name, s in score_table([even], X_val).items()
}
print(f"{len(X_val)} validation windows of 16 tokens")
for name, s in scores.items():
    best = divmod(s.argmax().item(), cfg.n_heads)
    print(
        f"{name:8s} score: even head {baseline[name]:.2f}, highest "
        f"{s.max():.2f} "
        f"(layer {best[0]}, head {best[1]}), lowest {s.min():.2f}"
    )
print(
    "layer 0, heads 0-3: self",
    [round(v, 2) for v in scores["self"][0].tolist()],
    "| same",
    [round(v, 2) for v in scores["same"][0].tolist()],
)
assert scores["self"][0].min() > 0.5 > scores["self"][1:].max()
assert scores["same"][0].min() > 1.5 * baseline["same"]
assert scores["previous"].max() < 1.5 * baseline["previous"]
assert scores["first"].max() < 1.5 * baseline["first"]

# %%
fig, axes = plt.subplots(2, 2, figsize=(7.5, 5.6), layout="constrained")
for ax, (name, s) in zip(axes.flat, scores.items()):
    plot_head_scores(
        s, ax=ax, vmax=1.0, title=f"{name} (even: {baseline[name]:.2f})"
    )
plt.show()

# %% [markdown]
# The four tables read as follows (the numbers are in the cell above the figure):
#
# - **Self and same token.** The four heads of layer 0 put most of their weight on the token
#   itself, and when the token occurred earlier in the window, about twice the even head's
#   share or more on those earlier copies: they attend by token identity, the pattern of Section 10.3.
#   In the later layers the self scores stay below one half and the same-token scores near or
#   below the even head's.
# - **Previous token.** No head is a previous-token head. Layer 0's heads score far *below* the
#   even head (they are busy with the token itself), the others close to it.
# - **First token.** No head seeks out position 0 either. In large trained models many heads
#   park their attention on the first position when they have nothing to do, whatever token is
#   there: it is the one position every query can see (an *attention sink*, Xiao et al., 2023).
#   Our windows have that property too, so why not here? We did not test it; likely reasons are
#   the tiny scale (windows of 16 tokens, four passes over one story) and the strong dropout.
#
# Why no previous-token head, one of the most common heads in trained language models? A likely
# reason: attention starts out nearly even (the query and key weights are small at
# initialization), and an even average over the window already tells a model *which part of the
# story* it is in, which goes a long way towards memorizing a text this short. A model trained on
# more text than it can memorize gains more from knowing exactly which token came before.
# Exercise 10.1 checks the other possible explanation, a score that cannot see such heads: it
# finds one at once when the data demands it.
#
# **How patterns change with depth.** Two summaries of a head, each averaged over the heads of a
# layer: how far back it looks (the mean of $t - s$ under its weights) and how widely (the entropy
# of its rows, in nats; 0 is one key, $\log(t+1)$ is all keys evenly):

# %%
val_stack = torch.stack(val_weights)  # (L, B, h, T, T)
even_head = uniform_attention(16)[None, None]  # (1, 1, T, T)
even_distance = attention_distance(even_head).item()
even_entropy = attention_entropy(even_head).item()
distance = attention_distance(val_stack).mean(dim=-1)  # (L,)
entropy = attention_entropy(val_stack).mean(dim=-1)  # (L,)
print(f"even head: distance {even_distance:.2f}, entropy {even_entropy:.2f}")
for layer in range(cfg.n_layers):
    print(
        f"layer {layer}: distance {distance[layer]:.2f}, entropy "
        f"{entropy[layer]:.2f}"
    )
assert distance[0] < 1.0 < distance[1:].min()
assert entropy[0] < entropy[1:].min() and entropy.max() < even_entropy

# %%
fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.2), layout="constrained")
plot_per_layer(
    {
        "mean over heads": distance,
        "even head": [even_distance] * cfg.n_layers,
    },
    ax=axes[0],
    logy=False,
    ylabel="distance t - s (tokens)",
    title="how far back heads look",
)
plot_per_layer(
    {"mean over heads": entropy, "even head": [even_entropy] * cfg.n_layers},
    ax=axes[1],
    logy=False,
    ylabel="entropy (nats)",
    title="how widely heads look",
)
plt.show()

# %% [markdown]
# Layer 0 looks at the token itself (a distance below one token, low entropy); every later layer
# looks back as far, on average, as an even head would, yet with lower entropy than an even head:
# its attention is concentrated, just not on a fixed offset. Concentrated on what, then? A fifth
# measure answers that: for every token id, the attention it receives as a key, divided by what
# an even head would give it at the same positions (`helpers.heads.key_token_preference`).
# Above 1, the head seeks that token out. Over every window of the whole story, here are the three
# tokens each head of the later layers favours most:

# %%
n_windows = (len(ids) - 1) // 16
# (B, T): the story in windows
X_all = torch.tensor(ids[: n_windows * 16]).view(-1, 16)
# the token after each one
Y_all = torch.tensor(ids[1: n_windows * 16 + 1]).view(-1, 16)
with torch.no_grad():
    all_weights = []
    model(X_all, attn_weights=all_weights)
# (L, h, V); ids too rare to judge (an even head would give them < 20 in all)
# are NaN
preference = key_token_preference(
    torch.stack(all_weights), X_all, tok.n_vocab, min_uniform=20.0
)
for layer in range(1, cfg.n_layers):
    for head in range(cfg.n_heads):
        ratio, best = preference[layer, head].nan_to_num(-1.0).topk(3)
        liked = [
            f"{tok.decode([i])!r} {r:.1f}x"
            for i, r in zip(best.tolist(), ratio)
        ]
        print(f"layer {layer} head {head}:", ", ".join(liked))

# %% [markdown]
# Some entries of the list are accidents of a small sample, but several heads have a clear taste
# (in this run; a model trained on another machine may order its heads differently):
#
# - heads of layers 2 and 3 seek out the ends of sentences and paragraphs, "." and ".\n\n", and
#   the dashes "--", about three times more than an even head, and a head of layer 1 and one of
#   layer 2 the opening quotes ' "' and dashes that break up the dialogue;
# - several heads seek the subject pronouns " I", " you" and " he", who is acting: one of
#   layer 2 favours all three equally, one of layer 4 " you" more than four times as much as an
#   even head;
# - others look for the auxiliaries " had" and " was" and the negation "'t" (in layers 1, 3
#   and 4), and one of layer 3 for the possessives " his" and " my".
#
# Those are heads that attend by *what a token is for*, which the embeddings of Section 10.6 also
# encode. The check below only asks for the general fact: some later head favours sentence ends
# and some favours " his" at least twice as much as an even head would.

# %%
# the highest ratio any head of layers 1-4 gives this token
def best_preference(word):
    return preference[1:, :, tok.encode(word)[0]].max().item()


for word in [".", " his", " I", " had"]:
    print(
        f"{word!r:7s} most favoured by a later head: "
        f"{best_preference(word):.1f}x"
    )
assert best_preference(".") > 2 and best_preference(" his") > 2

# %% [markdown]
# ## 10.5 bertviz: the head view and the model view
#
# [bertviz](https://github.com/jessevig/bertviz) (Vig, 2019) draws attention interactively in a
# notebook. Its `head_view` shows the tokens twice, side by side, with a line from each query to the keys it attends to
# (hover over a token to isolate its lines, pick a layer, click the coloured squares to choose
# heads); `model_view` shows a thumbnail of every head of every layer, like our grid. Both take
# the output of Hugging Face's models: a tuple with one tensor per layer shaped
# `(batch, heads, T, T)`, batch size 1, and a list of token strings. Our model's list has exactly
# that shape already, so the adapter is a few lines: keep one batch item, move the weights to the
# CPU, and round them to three decimals. bertviz writes every number into the page, so rounding
# keeps the notebook small; in float64, because float32 has no exact 0.001 and its nearest value
# would be written out as 0.0010000000474974513.

# %%
def to_bertviz(weights, tokens, decimals=3):
    # L x (1, h, T, T)
    one = [w[:1].detach().cpu().double() for w in weights]
    return tuple(w.round(decimals=decimals) for w in one), list(tokens)


bv_attention, bv_tokens = to_bertviz(weights, tokens)
print(
    len(bv_attention),
    "layers of",
    tuple(bv_attention[0].shape),
    "|",
    len(bv_tokens),
    "tokens",
)
assert all(
    a.shape == (1, cfg.n_heads, len(tokens), len(tokens))
    for a in bv_attention
)

# %% [markdown]
# bertviz returns HTML with JavaScript. The page loads require.js, d3 and jQuery from the
# cdnjs.cloudflare.com content network when it is viewed, so the two views below need a network
# connection: in the rendered book they work in the browser (offline they stay blank); in
# JupyterLab, Jupyter Notebook and Colab they work once the cell has run. The views are
# interactive, so a static figure of the same data is Section 10.3's grid. Layer 0 is selected
# first in the head view; hover over " his" or "," on the left.

# %% tags=["nbval-ignore-output"]
head_view(bv_attention, bv_tokens, layer=0, html_action="return")

# %% tags=["nbval-ignore-output"]
model_view(bv_attention, bv_tokens, html_action="return")

# %% [markdown]
# The causal mask hides the tokens that come *after* a token (a description of these views
# sometimes gets this backwards). In the head view a token's lines go only to itself and to tokens
# on its left, never to the right, the same triangle as in the heatmaps.

# %% [markdown]
# ## 10.6 Embeddings
#
# **Token embeddings.** The token embedding `tok_emb.weight` is a `(V, C)` table, one row per
# token; tied to the output head, the same row also scores that token as the next one. Chapter 2
# projected word vectors onto their two main directions with `helpers.word_vectors.pca_2d`; here
# is the same map for a few groups of our model's tokens, chosen from the story's frequent words.

# %%
groups = {"pronoun": [" he", " she", " I", " you", " him", " me"],
          "determiner": [" the", " a", " his", " my", " her"],
          "verb": [" was", " had", " have", " said", " is"],
          "name": [" Jack", " Gisburn", " Stroud", " Mrs", " Rickham"],
          "punctuation": [",", ".", ";", "--", "!"]}
words = [w for ws in groups.values() for w in ws]
word_ids = [tok.encode(w) for w in words]
assert all(len(i) == 1 for i in word_ids), (
    "every chosen word must be one token"
)
word_ids = [i[0] for i in word_ids]
points = pca_2d(model.tok_emb.weight[word_ids].detach().numpy())
fig = plot_word_map(
    points,
    words,
    [g for g, ws in groups.items() for _ in ws],
    title="token embeddings of the trained model (PCA)",
)
plt.show()
# (2,) per group
centre = {g: points[[words.index(w) for w in ws]].mean(axis=0)
          for g, ws in groups.items()}
print("centre of each group on the map:")
for g, c in centre.items():
    print(f"  {g:12s} ({c[0]:+.2f}, {c[1]:+.2f})")
left_to_right = sorted(centre, key=lambda g: centre[g][0])
assert left_to_right[-1] == "name" and "punctuation" in left_to_right[:2]

# %% [markdown]
# The groups were chosen by us, not by the model, yet several come out in their own region of
# the map: the names furthest right, next to the object pronouns " him" and " me" and the verb
# " said"; the subject pronouns " I", " he", " she" and " you" together at the top, in the
# middle; the determiners and possessives " a", " his" and " my" together at the bottom left;
# ".", "!" and "--" on the left, while "," and ";" sit low in the middle (the centres of the
# groups are printed under the map: names furthest right, determiners and punctuation the two
# leftmost groups).
# The model gives tokens that play the same part in a sentence similar vectors, because they are
# followed by similar tokens. A map of two directions out of 64 hides a lot, so check it in all
# 64: the nearest neighbours of a few tokens by cosine similarity in the embedding table
# (`helpers.insight.nearest_tokens`).

# %%
for word in [" he", " the", " was", " Jack", ","]:
    neighbours = nearest_tokens(
        model.tok_emb.weight, tok.encode(word)[0], k=5
    )
    print(
        f"{word!r:8s}",
        ", ".join(f"{tok.decode([i])!r} {sim:.2f}" for i, sim in neighbours),
    )

# %% [markdown]
# The neighbours in the cell above are mostly tokens of the same kind: the pronouns " I",
# " they", " she" and " you" next to " he", the determiners and possessives next to " the", the
# verbs " had", " is" and " were" next to " was", ";" next to ",". " Jack" is the weakest: the
# story's names are rare, and its neighbours mix the pronouns " it", " him" and " us" with the
# title " Mrs" and the noun " beauty".
#
# The map above shows only the chosen words. The next one, drawn in the page itself, adds the 300
# tokens the story uses most, grey, projected together with the chosen words onto their own two
# main directions (so the picture differs from the one above). Hover over a point to read its
# token; on the book's page this needs no Python, in a notebook it works once the cell has run.

# %%
frequent = [i for i, _ in Counter(ids).most_common(300)]
# the chosen words first, no repeats
map_ids = list(dict.fromkeys(word_ids + frequent))
group_of = dict(zip(word_ids, [g for g, ws in groups.items() for _ in ws]))
map_points = pca_2d(model.tok_emb.weight[map_ids].detach().numpy())  # (N, 2)
embedding_map(
    map_points,
    token_strings(tok, map_ids),
    [group_of.get(i, "other") for i in map_ids],
    name="ch10-embeddings",
    title=(
        "token embeddings: the chosen words and the 300 most frequent tokens"
    ),
)

# %% [markdown]
# **Position embeddings.** The position embedding `pos_emb.weight` is a `(context_length, C)`
# table. GPT-2's 1,024 learned positions are famous for their structure: the cosine similarity
# of two positions falls smoothly with their distance, and the table looks like a set of waves.
# Ours has only 16 positions. Before training they are random vectors, nearly perpendicular to each
# other; after training:

# %%
fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.6), layout="constrained")
for ax, table, title in [
    (axes[0], untrained_pos, "positions' cosine similarity, untrained"),
    (axes[1], model.pos_emb.weight, "after training"),
]:
    plot_table(cosine_similarity_matrix(table), ax=ax, xlabel="position",
               ylabel="position", title=title)
plt.show()

# %%
pos_sim = cosine_similarity_matrix(model.pos_emb.weight)
untrained_sim = cosine_similarity_matrix(untrained_pos)
for k in (1, 4, 8, 15):
    trained, untrained = (
        pos_sim.diagonal(k).mean(),
        untrained_sim.diagonal(k).mean(),
    )
    print(f"positions {k:2d} apart: mean cosine similarity {trained:.2f} "
          f"(untrained {untrained:.2f})")
print(f"positions 1 and 4: {pos_sim[1, 4]:.2f}, "
      f"positions 12 and 15: {pos_sim[12, 15]:.2f}")
mean_at = [pos_sim.diagonal(k).mean() for k in (1, 4, 8, 15)]
assert mean_at == sorted(mean_at, reverse=True) and mean_at[-1] < 0

# %% [markdown]
# Ours too, on a small scale. Random vectors in 64 dimensions are nearly perpendicular (cosines
# typically within about $\pm 1/\sqrt{64} = \pm 0.125$), which is the left-hand figure. After
# training, neighbouring positions are similar, and the similarity falls with the distance until
# positions at the two ends of the window point in opposite directions (the cell above prints the
# means). Nothing in the model asks for this; it comes from the data. Because the training windows
# start at every token, positions $p$ and $p + 1$ hold statistically the same kind of text, and
# what separates them is only how much context lies before them; their embeddings receive
# similar gradients and drift together. The last few positions form the tightest group: 12 or 15
# tokens of context make less difference than 1 or 4 (the last line above compares the two pairs). Published plots of GPT-2's 1,024
# positions, trained on far more text, show the same smooth fall-off over a much longer range,
# with waves on top.
#
# The real GPT-2 weights cannot be downloaded where this book is built (it has no network), so
# the figure of GPT-2's own positions is not stored here. With a network, set the switch below to
# `True`: it loads GPT-2 small through Chapter 9's `helpers.gpt2.load_hf_checkpoint` (about
# 500 MB, once) and draws the same two figures for its 1,024 positions. Without a network it
# stops after one quick request, with a one-line message.

# %%
# True: download GPT-2 small (about 500 MB), draw its positions
USE_OPENAI_GPT2 = False
if USE_OPENAI_GPT2:
    from helpers.gpt2 import load_hf_checkpoint
    from helpers.gpt2_config import HubUnreachableError

    try:
        gpt2 = load_hf_checkpoint("gpt2", timeout=5.0)
    except HubUnreachableError as err:
        print("GPT-2 is not available:", err)
    else:
        gpt2_pos = gpt2.pos_emb.weight.detach()  # (1024, 768)
        fig, axes = plt.subplots(
            1, 2, figsize=(7.5, 3.6), layout="constrained"
        )
        plot_table(
            cosine_similarity_matrix(gpt2_pos),
            ax=axes[0],
            xlabel="position",
            ylabel="position",
            title="GPT-2 small: cosine similarity of positions",
        )
        plot_similarity_by_distance(
            gpt2_pos, starts=[0, 100, 500], max_distance=400, ax=axes[1]
        )
        plt.show()
else:
    print("USE_OPENAI_GPT2 is False: GPT-2's positions are not drawn.")

# %% [markdown]
# ## 10.7 An inference explorer
#
# A course project on GPT-2 inference built a Streamlit dashboard to watch GPT-2 generate: type a
# prompt, see the attention and the embeddings. A notebook can do the same with ipywidgets and no
# server. The computation is `helpers.insight.greedy_trace`: greedy generation, one token at a
# time, keeping at every step the ids the model saw, the `top_k` most likely next tokens with
# their probabilities, and every head's attention `(L, h, T, T)`.

# %%
prompt = "I HAD always thought Jack Gisburn rather a cheap"
steps = greedy_trace(
    model, torch.tensor([tok.encode(prompt)]), max_new_tokens=8, top_k=5
)
for i, step in enumerate(steps):
    pairs = zip(step.top_ids, step.top_probs)
    print(
        f"step {i}:",
        ", ".join(f"{tok.decode([t])!r} {p:.2f}" for t, p in pairs),
    )
print(
    "greedy continuation:", repr(tok.decode([s.top_ids[0] for s in steps]))
)

# %% [markdown]
# The trace shows a weak model: its top candidate rarely gets more than a quarter of the
# probability and often less than a tenth, and the greedy continuation, which always takes the
# top candidate, strings pieces of the story together without much sense.
#
# The explorer wraps the trace in four controls: the prompt, the step, the layer and the head.
# It keeps the last trace, so moving a slider only redraws. The drawing is saved as a PNG into an
# image widget rather than shown as a cell output, which works the same in every notebook
# front end.

# %%
def inference_explorer(model, tok, prompt, max_new_tokens=10, top_k=8):
    L, h, T = model.cfg.n_layers, model.cfg.n_heads, model.cfg.context_length
    text_box = widgets.Text(
        value=prompt,
        description="prompt",
        continuous_update=False,
        layout=widgets.Layout(width="95%"),
    )
    step = widgets.IntSlider(
        value=0, min=0, max=max_new_tokens - 1, description="step"
    )
    layer = widgets.IntSlider(value=0, min=0, max=L - 1, description="layer")
    head = widgets.IntSlider(value=0, min=0, max=h - 1, description="head")
    image = widgets.Image(format="png")  # the drawing, as PNG bytes
    traces = {}

    def draw(change=None):
        text = text_box.value
        if text not in traces:
            # the last T tokens
            prompt_ids = tok.encode(text)[-T:] or tok.encode(" ")
            traces.clear()
            idx = torch.tensor([prompt_ids])  # (1, T)
            traces[text] = greedy_trace(model, idx, max_new_tokens, top_k)
        s = traces[text][step.value]
        seen = token_strings(tok, s.ids)
        fig, (left, right) = plt.subplots(
            1,
            2,
            figsize=(12, 4.5),
            layout="constrained",
            gridspec_kw={"width_ratios": [1, 1.4]},
        )
        plot_next_token_probs(
            s.top_probs,
            token_strings(tok, s.top_ids),
            ax=left,
            title=f"step {step.value}: after ...{''.join(seen[-4:])!r}",
        )
        plot_attention(
            s.attention[layer.value, head.value],
            seen,
            ax=right,
            annotate=False,
            title=f"layer {layer.value}, head {head.value}",
            vmax=1.0,
        )
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=80)
        # shown through the image widget, not as a cell output
        plt.close(fig)
        image.value = png.getvalue()

    for control in (text_box, step, layer, head):
        control.observe(draw, names="value")
    draw()
    return widgets.VBox([text_box, widgets.HBox([step, layer, head]), image])


# %% [markdown]
# Run the next cell in Jupyter or Colab to use it. The rendered book is not connected to a
# Python kernel, so it leaves the controls out; the static figures after them show the same two
# views.

# %% tags=["remove-output"]
explorer = inference_explorer(model, tok, prompt)
display(explorer)

# %% [markdown]
# The book's page cannot run that explorer, but it can hold a second one whose numbers were
# computed once, here: `helpers.page_explorers.attention_explorer` takes three prompts (the one
# above, Section 10.2's sentence and one more), every head's attention on each, the head scores of
# Section 10.4 with the even head's, and the model's most probable next tokens. Pick a layer and a
# head: layer 0's heads keep to the diagonal and have high self scores; the later layers spread
# their attention over the window. Hovering a cell shows its weight.

# %%
page_texts = [prompt, sentence, " he had dropped his painting"]
page_prompts = {t: attention_prompt(model, tok, t) for t in page_texts}
attention_explorer(page_prompts, scores, baseline, name="ch10-attention")

# %% [markdown]
# The static version of the first view: the next-token probabilities at each of the first four
# steps (the first bar, the most likely token, is the one greedy decoding appends).

# %%
fig, axes = plt.subplots(2, 2, figsize=(7.5, 6), layout="constrained")
for i, ax in enumerate(axes.flat):
    labels = token_strings(tok, steps[i].top_ids)
    plot_next_token_probs(
        steps[i].top_probs, labels, ax=ax, title=f"step {i}"
    )
plt.show()

# %% [markdown]
# And of the second: the attention of one head at the last step, when the window holds the last
# 16 tokens of the prompt and the generated text. The head is the one with the highest same-token
# score in Section 10.4. Where a token in the second half of the window occurred earlier in it, the
# cell prints how much weight the head puts on that earlier copy, next to the share an even head
# would give it; Section 10.4's same-token score is this weight, averaged over the validation
# windows.

# %%
last = steps[-1]
same_layer, same_head = divmod(scores["same"].argmax().item(), cfg.n_heads)
fig = plot_attention(
    last.attention[same_layer, same_head],
    token_strings(tok, last.ids),
    annotate=False,
    vmax=1.0,
    title=f"last step: layer {same_layer}, head {same_head}",
)
plt.show()
assert len(last.ids) == cfg.context_length
half = cfg.context_length // 2
repeats = [
    (q, max(t for t in range(q) if last.ids[t] == last.ids[q]))
    for q in range(half, len(last.ids))
    if last.ids[q] in last.ids[:q]
]
w = last.attention[same_layer, same_head]  # (T, T)
for q, copy in repeats:
    print(
        f"query {tok.decode([last.ids[q]])!r:8} at {q:2d}: its earlier copy "
        f"at {copy:2d} "
        f"gets {w[q, copy]:.2f}, an even share would be {1 / (q + 1):.2f}"
    )
# each row: 1
assert torch.allclose(w.sum(dim=-1), torch.ones(len(last.ids)), atol=1e-5)

# %% [markdown]
# ## 10.8 The logit lens
#
# The blocks never leave the residual stream: each reads it and adds its result back, and only at
# the end do `final_norm` and `out_head` turn it into logits. Nothing stops us from applying those
# two to the stream after *any* block. The result, named the
# [*logit lens*](https://www.lesswrong.com/posts/AcKRB8wDpdaN6v6ru/interpreting-gpt-the-logit-lens)
# by its author (nostalgebraist, 2020), is the model's running guess for the next token, layer by
# layer. Walk the blocks by hand, as `GPTModel.forward` does, and read out every state:

# %%
@torch.no_grad()
def lens(model, idx):  # idx: (B, T) -> (L + 1, B, T, V)
    T = idx.shape[1]
    # (B, T, C), eval: no dropout
    x = model.tok_emb(idx) + model.pos_emb(torch.arange(T))
    states = [x]
    for block in model.trf_blocks:
        x = block(x)  # (B, T, C)
        states.append(x)
    # (L + 1, B, T, V)
    return model.out_head(model.final_norm(torch.stack(states)))


lens_prompt = "I HAD always thought Jack Gisburn rather a cheap genius--"
lx = torch.tensor([tok.encode(lens_prompt)])  # (1, T)
lens_logits = lens(model, lx)
with torch.no_grad():
    model_logits = model(lx)
print("lens:", tuple(lens_logits.shape), "(L + 1, B, T, V)")
same_as_model = torch.allclose(lens_logits[-1], model_logits, atol=1e-5)
print("after the last block, lens == model output:", same_as_model)
assert same_as_model

# %% [markdown]
# As a table: one row per position, one column per layer, each cell the lens's top token at that
# position, its guess for the token that comes *next*; the last column is the token that does
# come next.

# %%
lens_probs = lens_logits[:, 0].softmax(dim=-1)  # (L + 1, T, V)
top_prob, top_id = lens_probs.max(dim=-1)  # (L + 1, T)
lens_tokens = token_strings(tok, lx[0])
# L + 1 lists of T strings
top_text = [token_strings(tok, row) for row in top_id]
next_tokens = lens_tokens[1:] + ["?"]
header = [
    "input",
    "embed",
    *(f"block {i}" for i in range(1, cfg.n_layers + 1)),
    "next",
]
print("".join(f"{h:>9s}" for h in header))
for t in range(len(lens_tokens)):
    row = (
        [lens_tokens[t]]
        + [guesses[t] for guesses in top_text]
        + [next_tokens[t]]
    )
    print("".join(f"{c[:8]:>9s}" for c in row))
right = (top_id[-1, :-1] == lx[0, 1:]).sum().item()
print(
    f"the final answer is the true next token at {right} of "
    f"{len(lens_tokens) - 1} "
    f"positions"
)
# the embeddings row reads back the input
assert torch.equal(top_id[0], lx[0])
# few if any: the story's opening is not memorized
assert right <= (len(lens_tokens) - 1) // 4

# %%
fig = plot_logit_lens(
    top_prob,
    top_text,
    lens_tokens,
    title="logit lens: the top next-token guess after each block",
)
plt.show()

# %% [markdown]
# Three things stand out in the table (and in the figure, where darker means a surer guess):
#
# - After the embeddings, before any block (the "embed" column), the lens reads back the
#   *input* token. The output head is tied to the token embedding, so it scores each candidate
#   by the dot product of its embedding with the stream, and at that point the stream is the
#   input token's own embedding (plus a position vector), and a vector is usually closest to
#   itself (usually, not always: the score is a dot product after `final_norm`'s learned gain, so
#   a token with a longer vector could win; the assert checks this prompt).
# - Block 1 already turns that into a plausible next token, often the one the final layer keeps:
#   " it" after " thought", " was" after " Gisburn", " have" after " rather", "," after "ap",
#   guesses that mostly follow from the current token.
# - The later blocks mostly confirm or adjust the guess. On this opening sentence few if any
#   of the final answers are right (the count is under the table): the model has not learned the story
#   by heart.
#
# Over the whole story, the lens gives a curve per layer: how often its top token already is the
# model's final answer, and how much probability it puts on the token that actually follows.

# %%
# how often each layer's top token is the final one
agree = torch.zeros(cfg.n_layers + 1)
# mean probability of the true next token
p_next = torch.zeros(cfg.n_layers + 1)
# 64 windows at a time: (L + 1, 64, T, V) is large
for i in range(0, len(X_all), 64):
    chunk = lens(model, X_all[i:i + 64])  # (L + 1, b, T, V)
    agree += (
        (chunk.argmax(dim=-1) == chunk[-1].argmax(dim=-1))
        .float()
        .sum(dim=(1, 2))
    )
    true_next = Y_all[i : i + 64][None, ..., None].expand(
        cfg.n_layers + 1, -1, -1, 1
    )
    p_next += (
        chunk.softmax(dim=-1)
        .gather(-1, true_next)
        .squeeze(-1)
        .sum(dim=(1, 2))
    )
agree, p_next = agree / Y_all.numel(), p_next / Y_all.numel()
for layer in range(cfg.n_layers + 1):
    name = "embeddings" if layer == 0 else f"block {layer}"
    print(f"{name:>10s}: top token = final answer {agree[layer]:.0%}, "
          f"mean probability of the true next token {p_next[layer]:.3f}")
assert torch.all(agree[1:].diff() > 0) and p_next[1] > 0.5 * p_next[-1]

# %%
fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.2), layout="constrained")
plot_per_layer(
    {"lens over the story": agree},
    ax=axes[0],
    logy=False,
    ylabel="share",
    xlabel="after block (0: embeddings)",
    title="top token is the final answer",
)
plot_per_layer(
    {"lens over the story": p_next},
    ax=axes[1],
    logy=False,
    ylabel="probability",
    xlabel="after block (0: embeddings)",
    title="probability of the true next token",
)
plt.show()

# %% [markdown]
# The first block does the most: after it, the lens's top token is already the model's final
# answer at nearly one position in two, and it puts most of the final probability on the
# true next token; each later block moves that probability less (the last hardly at all),
# and the share of positions where the lens agrees with the final answer grows block by block
# (the cell above prints every value). A guess that forms early and is refined afterwards is
# also what the logit lens showed its author in GPT-2, whose middle layers already read close to
# the final answer.

# %% [markdown]
# ## 10.9 Consolidate: `helpers.heads` and `helpers.insight`
#
# The tools of this chapter are in `helpers.heads` and `helpers.insight`, written for any
# `GPTModel`: the four head
# scores (for weights of shape `(..., B, h, T, T)`, so a stack of layers works at once), the
# bertviz adapter `bertviz_inputs`, and `logit_lens`, which catches the residual stream with
# forward hooks during one ordinary forward pass instead of re-walking the blocks, so that it
# follows the model's own `forward` whatever that does. They compute what this chapter's inline
# versions compute:

# %%
helper_scores = helpers.heads.head_scores(torch.stack(val_weights), X_val)
for name in ("previous", "first", "self", "same"):
    assert torch.allclose(helper_scores[name], scores[name], atol=1e-6), name
helper_attention, helper_tokens = helpers.insight.bertviz_inputs(
    weights, tokens
)
assert helper_tokens == bv_tokens
assert all(torch.equal(a, b) for a, b in zip(helper_attention, bv_attention))
helper_lens = helpers.insight.logit_lens(model, lx)
assert torch.allclose(helper_lens, lens_logits, atol=1e-5)
assert torch.equal(helper_lens[-1], model_logits)
print(
    "head scores, bertviz inputs, logit lens: the helpers agree with this "
    "chapter's code"
)

# %% [markdown]
# ## 10.10 The same tools on GPT-2
#
# `helpers.heads` and `helpers.insight` work on any `GPTModel`, including one that holds OpenAI's weights (Chapter 9).
# The next cell asks the Hugging Face hub for GPT-2 small (about 500 MB, once; then from the cache).
# Where the hub cannot be reached, as on the machines that build this book, it says so in one
# sentence and uses Chapter 9's stand-in instead: the book's trained small model (one block, four
# heads), exported in the hub's format and loaded back through the same loader. Every output below
# names the model it comes from.

# %%
gpt2_tok = gpt2_encoding()
try:
    hub_model = load_hf_checkpoint("gpt2", timeout=5.0)
    HUB_LABEL = "OpenAI's GPT-2 small (124M)"
except CheckpointError as err:
    print(
        "OpenAI's GPT-2 small is not available here "
        f"({type(err).__name__}); using Chapter 9's stand-in."
    )
    # the threads Chapters 7 to 9 train it with: the same cache entry
    torch.set_num_threads(default_threads)
    # Chapter 6's run, trained once and cached by `book_model`
    book, _ = book_model(text, gpt2_tok, log=lambda line: None)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as directory:
        hub_model = load_hf_checkpoint(save_hf_checkpoint(book, directory))
    HUB_LABEL = "stand-in (book's small model, not OpenAI's weights)"
L_hub = hub_model.cfg.n_layers
print(
    f"[{HUB_LABEL}] {L_hub} layer{'s' if L_hub != 1 else ''} x "
    f"{hub_model.cfg.n_heads} heads"
)

# %% [markdown]
# The head scores of Section 10.4, on eight windows of 64 GPT-2 tokens from the story's validation
# part, with the strongest head of each kind against an even head on the same windows:

# %%
val_gpt2 = gpt2_tok.encode(text[int(0.9 * len(text)):])
# (8, 64)
X_hub = torch.tensor([val_gpt2[i * 64:(i + 1) * 64] for i in range(8)])
with torch.no_grad():
    hub_scores = helpers.heads.head_scores(
        helpers.heads.attention_of(hub_model, X_hub), X_hub
    )
    even_scores = helpers.heads.head_scores(
        uniform_attention(64).expand(8, 1, 64, 64), X_hub
    )
print(f"[{HUB_LABEL}]")
for name, table in hub_scores.items():  # table: (L, h)
    layer, head = divmod(table.argmax().item(), table.shape[1])
    print(
        f"{name:8s} strongest head: layer {layer}, head {head}, score "
        f"{table.max():.2f} "
        f"(even head {even_scores[name].item():.2f})"
    )
assert all(
    t.shape == (hub_model.cfg.n_layers, hub_model.cfg.n_heads)
    for t in hub_scores.values()
)

# %% [markdown]
# And the logit lens of Section 10.8 on the story's opening words: the top next-token guess for the
# last position after the embeddings and after every block.

# %%
# (1, T)
opening = torch.tensor(
    [gpt2_tok.encode("I HAD always thought Jack Gisburn rather a cheap")]
)
with torch.no_grad():
    # (L + 1, V)
    hub_lens = helpers.insight.logit_lens(hub_model, opening)[
        :, 0, -1
    ].softmax(dim=-1)
    final = hub_model(opening)[0, -1].softmax(dim=-1)  # (V,)
print(f"[{HUB_LABEL}]")
for i, probs in enumerate(hub_lens):
    p, token = probs.max(dim=-1)
    print(
        f"{'embeddings' if i == 0 else f'block {i}':>10s}: "
        f"{gpt2_tok.decode([token.item()])!r:14} {p:.2f}"
    )
# the last row is the model's own answer
assert torch.allclose(hub_lens[-1], final, atol=1e-5)
STAND_IN = HUB_LABEL.startswith("stand-in")
if STAND_IN:  # what the next paragraph says of the stand-in
    assert all(
        hub_scores[n].max() < 1.5 * even_scores[n] for n in hub_scores
    )
    assert hub_lens[0].argmax() == hub_lens[-1].argmax()

# %% [markdown]
# The label above says which model these outputs come from; the stored outputs of this page come
# from the stand-in. The stand-in's four heads score about as high as an even head on each of
# the four patterns, none reaching 1.5 times its score, and its embeddings alone already give
# the final guess (the asserts above check both whenever the stand-in is in use): one block
# trained on one short story leaves the tools little to find. Its "embed" row need not read back
# the input token, unlike Section 10.8's: the stand-in's output head is untied from its token
# embedding (Chapter 6), so before any block the lens scores the input's embedding with a
# separate matrix, trained to read the last block's output, not the embeddings. GPT-2 small, 12
# layers of 12 heads trained on 40 GB of web text {cite}`radford2019gpt2`, is what they are for;
# run this section with a network and compare its strongest heads and its lens with the book's
# five-block model of Sections 10.4 and 10.8.

# %% [markdown]
# ```{admonition} Where these numbers come from
# :class: dropdown
# The small model of Section 10.1 (4 heads, 5 blocks, context 16, dropout 0.3, a 2,000-token BPE
# with Llama 3's split) follows a blog post on visualizing the attention of a small GPT trained
# from scratch; the bertviz views follow a slide deck on attention visualization; the explorer of
# Section 10.7 follows a course report with an interactive GPT-2 dashboard. Every number on this
# page is computed by the cells above. {ref}`seeds` lists the write-ups the book grew from.
# ```
#
# ## Summary
#
# - `GPTModel.forward(idx, attn_weights=weights)` records every block's attention weights,
#   `(B, h, T, T)` per layer, from the model's own forward pass; the logits are the same as
#   without the request, to float rounding. Rows sum to 1 and the causal triangle above the
#   diagonal is exactly zero.
# - A GPT of 4 heads and 5 blocks, trained here for four passes over "The Verdict" with a
#   2,000-token BPE, has four *token-identity* heads in layer 0: they look at the token itself
#   and, about twice as much as an even head would or more, at earlier copies of it
#   (duplicate-token heads). It has no
#   previous-token head and no first-token head: the scores that would find them stay near or
#   below the level of a head with no preference, and Exercise 10.1 shows the previous-token
#   score finds such a head as soon as the data requires one. Deeper layers look as far back as
#   an even head but more narrowly, at kinds of tokens: sentence ends, pronouns and quotes,
#   auxiliaries, possessives.
# - A score only means something next to a baseline: here, the same score of a head that
#   spreads its attention evenly over the tokens it may see.
# - bertviz's `head_view` and `model_view` take a tuple of per-layer `(1, h, T, T)` tensors and
#   a list of token strings; in a rendered page they load require.js, d3 and jQuery from a CDN.
# - The trained token embeddings put tokens with the same role in a sentence near each other;
#   the trained position embeddings became similar for neighbouring positions and opposite at
#   the two ends of the window, a small version of the structure of GPT-2's positions.
# - The logit lens reads the residual stream through `final_norm` and `out_head` after every
#   block. With a tied head, the reading before the first block is the input token itself; the
#   first block makes most of the guess and the later blocks refine it. After the last block the lens *is* the model's
#   output.
# - The same tools run unchanged on a model holding OpenAI's GPT-2 weights (Section 10.10): with a
#   network on GPT-2 small itself, without one on Chapter 9's stand-in, labelled in every output.
#
# Moved into `helpers/`:
#
# - `helpers.heads`: `attention_of`, the head scores `previous_token_score`,
#   `first_token_score`, `self_score`, `same_token_score` and `head_scores`,
#   `uniform_attention`, `attention_distance`, `attention_entropy`, `key_token_preference`.
# - `helpers.insight`: `token_strings`, `bertviz_inputs`, `residual_stream`, `logit_lens`,
#   `cosine_similarity_matrix`, `nearest_tokens` and `greedy_trace` (with its `Step`).
# - `helpers.viz_inside`: `plot_attention_grid`, `plot_head_scores` and `plot_logit_lens`.
#
# ## Exercises

# %% [markdown]
# Each exercise whose answer is code or a value has a cell for your answer and a cell that checks
# it: `check("10.1", my_answer)` runs your answer on small cases, edge cases included, and says in
# a sentence or two what is wrong and where, with a hint, or that it is right. Until you write
# something it says "not attempted yet". The worked solution stays folded below.
#
# **Exercise 10.1.** Is the previous-token score able to find a previous-token head at all? Train
# a fresh two-block model of the same width for a few dozen steps on random token sequences
# whose target at every position is the *input* token one position back, and score its heads.
# First write `my_previous_targets(inputs)`: those targets for a batch `(B, T)`, position 0
# (which has nothing before it) predicting its own token.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_previous_targets(inputs):
    raise NotImplementedError


# %%
check("10.1", my_previous_targets)

# %% [markdown]
# ```{admonition} Solution 10.1
# :class: dropdown
# The targets are the inputs shifted one position right, with the first column repeated at
# position 0 (a roll would wrap the last token around to the front). On this task the previous
# token is the answer, so a head that looks one position back is the only way to lower the
# loss. After 60 steps the best head puts nearly all its weight on the previous token, far above
# the even head's 0.16: the score finds such heads when they exist, and our story model simply
# has none.
# ```

# %% tags=["hide-cell"]
def previous_targets(inputs):
    # (B, T): one back
    return torch.cat([inputs[:, :1], inputs[:, :-1]], dim=1)


torch.manual_seed(0)
copier = GPTModel(
    GPTConfig(
        vocab_size=tok.n_vocab,
        context_length=16,
        emb_dim=64,
        n_heads=4,
        n_layers=2,
        drop_rate=0.0,
    )
)
copier_optimizer = torch.optim.AdamW(
    copier.parameters(), lr=3e-3, weight_decay=0.1
)
generator = torch.Generator().manual_seed(0)
for step in range(60):
    # (B, T)
    inputs = torch.randint(
        0, tok.n_vocab, (32, 16), generator=generator
    )
    targets = previous_targets(inputs)
    loss = F.cross_entropy(
        copier(inputs).flatten(0, 1), targets.flatten()
    )
    copier_optimizer.zero_grad()
    loss.backward()
    copier_optimizer.step()
copier.eval()
with torch.no_grad():
    copier_weights = []
    copier(inputs, attn_weights=copier_weights)
# (L, h)
copier_scores = torch.stack([previous_score(w) for w in copier_weights])
best = divmod(copier_scores.argmax().item(), 4)
print(
    f"best previous-token score {copier_scores.max():.2f} (layer "
    f"{best[0]}, "
    f"head {best[1]}), even head {baseline['previous']:.2f}"
)
assert copier_scores.max() > 0.9
assert check("10.1", previous_targets).passed
check("10.1", previous_targets)

# %% [markdown]
# **Exercise 10.2.** Attention patterns show where a head looks, not whether the model needs it.
# Write `my_loss_without(model, layer, heads, inputs, targets)`: the loss of `model` on
# `inputs` and `targets` with the heads in the list `heads` of block `layer` switched off (zero
# the columns of `att.out_proj.weight` that read those heads' outputs), leaving the model as it
# was. Measure it on the story's windows for one head at a time, then for all heads of a layer
# at once. Which heads does the model miss most?

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_loss_without(model, layer, heads, inputs, targets):
    raise NotImplementedError


# %%
check("10.2", my_loss_without)

# %% [markdown]
# ```{admonition} Solution 10.2
# :class: dropdown
# Head $k$'s output occupies features `k * head_dim` to `(k + 1) * head_dim` of the attention
# output, and `out_proj` reads them through those columns (an `nn.Linear` weight is
# `(out, in)`); zeroing them removes the head and nothing else, and copying the saved weight back
# restores the model. No single head matters much: each adds about a hundredth of a nat at most.
# Yet without all four heads of layer 0 the loss rises by most of a nat (the last line): those
# heads all attend by token identity (Section 10.4), so any three of them cover for the fourth.
# The attention of each later layer is worth less than two hundredths.
# ```

# %% tags=["hide-cell"]
@torch.no_grad()
def loss_without(model, layer, heads, inputs, targets):
    W = model.trf_blocks[layer].att.out_proj.weight  # (C, C): (out, in)
    d_h = model.cfg.head_dim
    saved = W.clone()
    for k in heads:
        # the columns that read head k
        W[:, k * d_h:(k + 1) * d_h] = 0.0
    loss = F.cross_entropy(
        model(inputs).flatten(0, 1), targets.flatten()
    ).item()
    W.copy_(saved)
    return loss


# no head switched off
base_loss = loss_without(model, 0, [], X_all, Y_all)
head_increase = torch.tensor(
    [
        [
            loss_without(model, layer, [k], X_all, Y_all) - base_loss
            for k in range(cfg.n_heads)
        ]
        # (L, h)
        for layer in range(cfg.n_layers)
    ]
)
every_head = range(cfg.n_heads)
layer_increase = torch.tensor(
    [
        loss_without(model, layer, every_head, X_all, Y_all) - base_loss
        # (L,)
        for layer in range(cfg.n_layers)
    ]
)
print(f"story loss {base_loss:.3f}")
print("increase without one head (rows: layers):")
for layer in range(cfg.n_layers):
    print(
        f"  layer {layer}:",
        " ".join(f"{v:+.3f}" for v in head_increase[layer].tolist()),
    )
print("increase without a whole layer's attention:")
print("  " + " ".join(f"{v:+.3f}" for v in layer_increase.tolist()))
# the weights are back
assert loss_without(model, 0, [], X_all, Y_all) == base_loss
assert (
    head_increase.max() < 0.05 < layer_increase[0]
    and layer_increase.argmax() == 0
)
assert check("10.2", loss_without).passed
check("10.2", loss_without)

# %% [markdown]
# **Exercise 10.3.** `GPTModel` hands over its weights because Chapter 5 built it to. Recover them
# from a model that does not: catch the input of every block's attention layer with a forward
# pre-hook during an ordinary forward pass, and write `my_recover_weights(att, a_in)`, which
# recomputes the attention weights `(B, h, T, T)` of the attention layer `att` from its input
# `a_in` `(B, T, C)`, `W_query`, `W_key` and the causal mask. Compare them with the weights that
# `attn_weights` records.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_recover_weights(att, a_in):
    raise NotImplementedError


# %%
check("10.3", my_recover_weights)

# %% [markdown]
# ```{admonition} Solution 10.3
# :class: dropdown
# The attention layer's input is the normalized residual stream `norm1(x)`. From it, the weights
# are Chapter 3's formula: split the queries and keys into heads, take $QK^\top / \sqrt{d_h}$, hide
# the future and apply the softmax over the keys. A hook records without changing anything, so
# the forward pass that fills it is the fast one.
# ```

# %% tags=["hide-cell"]
def recover_weights(att, a_in):
    B, T, _ = a_in.shape
    split = (B, T, att.num_heads, att.head_dim)
    q = att.W_query(a_in).view(split).transpose(1, 2)  # (B, h, T, d_h)
    k = att.W_key(a_in).view(split).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / att.head_dim**0.5  # (B, h, T, T)
    future = torch.ones(T, T, dtype=torch.bool).triu(diagonal=1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1)


caught = {}
# a pre-hook sees the module's positional arguments before it runs
def catch(i):
    def hook(module, args):
        caught[i] = args[0]  # (B, T, C): norm1 of the residual stream
    return hook


hooks = [block.att.register_forward_pre_hook(catch(i))
         for i, block in enumerate(model.trf_blocks)]
try:
    with torch.no_grad():
        model(x)  # the ordinary forward pass, without attn_weights
finally:
    for hook in hooks:
        hook.remove()
worst = 0.0
with torch.no_grad():
    for i, block in enumerate(model.trf_blocks):
        recovered = recover_weights(block.att, caught[i])
        worst = max(worst, (recovered - weights[i]).abs().max().item())
print(
    "largest difference from the recorded weights over all layers: "
    f"{worst:.1e}"
)
assert worst < 1e-5
assert check("10.3", recover_weights).passed
check("10.3", recover_weights)

# %% [markdown]
# **Exercise 10.4.** At which block does the logit lens settle? Write `my_settle_layer(top)`: given
# the lens's top token at every layer, `top` `(L + 1, B, T)` (layer 0 the embeddings, layer $L$
# the last block, the model's final answer), the first layer from which the top token stays
# equal to the final answer through all later layers, for every position, `(B, T)`. Count how
# many positions of the story's windows settle at each layer.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_settle_layer(top):
    raise NotImplementedError


# %%
check("10.4", my_settle_layer)

# %% [markdown]
# ```{admonition} Solution 10.4
# :class: dropdown
# Compare each layer's top token with the last layer's, then scan from the top down: a position
# has settled at layer $l$ if layers $l, \dots, L$ all agree; a layer that agrees once and is
# then overruled does not count. The largest group settles at block 1; about a fifth of the
# positions only settle at the last block, where the lens is the output by definition.
# ```

# %% tags=["hide-cell"]
def settle_layer(top):
    n_layers = top.shape[0] - 1
    agrees = top == top[-1]  # (L + 1, B, T)
    settled = torch.full(top.shape[1:], n_layers)
    for layer in range(n_layers - 1, -1, -1):
        # this layer and all later ones agree
        stays = agrees[layer:].all(dim=0)
        settled = torch.where(
            stays, torch.full_like(settled, layer), settled
        )
    return settled  # (B, T)


settle_counts = torch.zeros(cfg.n_layers + 1, dtype=torch.long)
for i in range(0, len(X_all), 64):
    # (L+1, b, T)
    top = helpers.insight.logit_lens(model, X_all[i : i + 64]).argmax(
        dim=-1
    )
    settled = settle_layer(top).flatten()  # (b * T,)
    settle_counts += torch.bincount(settled, minlength=cfg.n_layers + 1)
for layer, n in enumerate(settle_counts.tolist()):
    name = "embeddings" if layer == 0 else f"block {layer}"
    print(f"{name:>10s}: {n:5d} positions settle here")
assert settle_counts.sum() == X_all.numel()
assert settle_counts[1] == settle_counts.max()
assert check("10.4", settle_layer).passed
check("10.4", settle_layer)

# %% [markdown]
# **Exercise 10.5.** Layer 0's heads find earlier copies of the current token. An *induction head*
# looks instead at the token that *followed* the earlier copy and predicts it again. Feed the model
# 8 random tokens followed by the same 8, and compare the loss on the two halves. Write
# `my_induction_score(weights, n)`: for the stacked attention weights `(L, B, h, 2n, 2n)` of `n`
# tokens repeated, the weight each head puts on the token after the earlier copy, averaged over
# the batch and the second half's queries, `(L, h)`. Does our model have an induction head?

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_induction_score(weights, n):
    raise NotImplementedError


# %%
check("10.5", my_induction_score)

# %% [markdown]
# ```{admonition} Solution 10.5
# :class: dropdown
# For a query at position $t \ge n$, the earlier copy of its token sits at $t - n$ and the token
# that followed it at $t - n + 1$. A model with an induction head predicts the second half far
# better than the first, since every token there repeats a pattern it has seen. Ours does not:
# the two losses are about the same, and no head puts much more weight on "the token after the
# earlier copy" than an even head would (under twice as much, the assert checks). Our model has
# five layers, so depth is not what is missing: an induction head is built on a previous-token
# head in an earlier layer, and Section 10.4 found none. Without one, no head can know which
# token followed the earlier copy.
# ```

# %% tags=["hide-cell"]
def induction_score(weights, n):
    queries = torch.arange(n, 2 * n)  # the second half
    # (L, h)
    return weights[..., queries, queries - n + 1].mean(dim=(1, -1))


generator = torch.Generator().manual_seed(1)
half = torch.randint(0, tok.n_vocab, (64, 8), generator=generator)
# (64, 16): 8 random tokens, twice
repeated = torch.cat([half, half], dim=1)
with torch.no_grad():
    rep_weights = []
    rep_logits = model(repeated, attn_weights=rep_weights)
token_loss = F.cross_entropy(
    rep_logits[:, :-1].flatten(0, 1),
    repeated[:, 1:].flatten(),
    # predicting token t + 1
    reduction="none",
).view(64, 15)
first_half, second_half = (
    token_loss[:, :7].mean().item(),
    token_loss[:, 8:].mean().item(),
)
induction = induction_score(torch.stack(rep_weights), 8)  # (L, h)
even_induction = sum(1 / (t + 1) for t in range(8, 16)) / 8
print(
    f"loss on the first half {first_half:.2f}, on the second half "
    f"{second_half:.2f}"
)
print(
    f"highest induction score {induction.max():.2f}, even head "
    f"{even_induction:.2f}"
)
assert (
    abs(second_half - first_half) < 1.0
    and induction.max() < 2 * even_induction
)
assert check("10.5", induction_score).passed
check("10.5", induction_score)
