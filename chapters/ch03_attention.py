# %% [markdown]
# # Chapter 3: Attention
#
# **Goal: compute causal multi-head self-attention by hand, number by number, then build the fast layer GPT-2 uses and check it against PyTorch's own.**
#
# What you will build:
#
# - attention scores, attention weights and a context vector for one word of "Your journey starts with one step", in code small enough to check on paper;
# - self-attention with trainable query, key and value projections, and the measured reason for dividing the scores by $\sqrt{d_h}$;
# - causal masking, so that no token sees the tokens after it, and dropout on the attention weights;
# - multi-head attention twice, as a stack of single heads and as one projection split into heads, proved equal;
# - the same computation through PyTorch's `scaled_dot_product_attention`, checked equal and timed against ours;
# - `helpers.attention.MultiHeadAttention`, the layer the rest of the book builds on, checked against `torch.nn.MultiheadAttention`.

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
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib_inline.backend_inline import set_matplotlib_formats
from torch import nn

import helpers.attention
from helpers.check import check
from helpers.offline import gpt2_encoding
from helpers.viz import plot_attention, plot_attention_heads

# figures with twice the pixels: sharp on any screen
set_matplotlib_formats("retina")

# %% [markdown]
# A language model reads a sequence of tokens and, at every position, has to decide which of the
# earlier tokens matter for what comes next. *Attention* {cite}`vaswani2017attention` is how a
# transformer does it: each token's vector is replaced by a weighted average of the vectors of the
# tokens it may see, with weights computed from the vectors themselves. This chapter builds that
# computation in small steps, on a running example small enough to check every number by hand
# (the example and its numbers follow {cite}`raschka2024llm`), and ends with the layer that GPT-2
# stacks twelve times.
#
# Shapes use the book's notation: $B$ sequences of $T$ tokens, each token a row vector of width
# $C$ (`emb_dim`); inside attention, `d_in` and `d_out` are the input and output widths of the
# query, key and value projections, and a model with $h$ heads gives each head
# $d_h$ = `head_dim` = `d_out // num_heads` features.

# %% [markdown]
# ## 3.1 Dot products measure similarity
#
# The dot product of two vectors multiplies them coordinate by coordinate and adds up:
# $a \cdot b = \sum_i a_i b_i = \lVert a \rVert \, \lVert b \rVert \cos\theta$, where $\theta$ is the
# angle between them. It is large and positive when the vectors point the same way, zero when
# they are perpendicular, and negative when they point in opposite directions. Dividing by the
# two lengths leaves the cosine alone.

# %%
a = torch.tensor([1.0, 2.0])
for name, b in [("same direction", torch.tensor([2.0, 4.0])),
                ("perpendicular", torch.tensor([-2.0, 1.0])),
                ("opposite", torch.tensor([-1.0, -2.0]))]:
    dot = torch.dot(a, b).item()
    cos = F.cosine_similarity(a, b, dim=0).item()
    print(f"{name:15s} a·b = {dot:5.1f}   cos θ = {cos:5.2f}")

# %% [markdown]
# Our running example is the sentence "Your journey starts with one step". GPT-2's tokenizer
# (Chapter 1) turns it into six tokens, one per word:

# %%
enc = gpt2_encoding()
sentence = "Your journey starts with one step"
ids = enc.encode(sentence)
tokens = [enc.decode([i]) for i in ids]
words = [t.strip() for t in tokens]  # labels for printing and plotting
print(ids)
print(tokens)
assert len(ids) == 6 and "".join(tokens) == sentence

# %% [markdown]
# In a trained GPT-2 each token id becomes a learned vector of 768 numbers. Here each token gets a
# hand-picked vector of three numbers, so that every score below can be checked on paper. The
# rows of `inputs` are $x_1, \dots, x_6$; together they form the $T \times C$ matrix $X$ with
# $T = 6$ and $C = 3$.

# %%
inputs = torch.tensor(
    [[0.43, 0.15, 0.89],  # Your     (x_1)
     [0.55, 0.87, 0.66],  # journey  (x_2)
     [0.57, 0.85, 0.64],  # starts   (x_3)
     [0.22, 0.58, 0.33],  # with     (x_4)
     [0.77, 0.25, 0.10],  # one      (x_5)
     [0.05, 0.80, 0.55]]  # step     (x_6)
)  # (T, C) = (6, 3)
T, C = inputs.shape

x_2 = inputs[1]  # "journey", (C,)
by_hand = 0.55 * 0.57 + 0.87 * 0.85 + 0.66 * 0.64
print(
    f"journey · starts = 0.55*0.57 + 0.87*0.85 + 0.66*0.64 = {by_hand:.4f}"
)
print(
    "journey · one    = 0.55*0.77 + 0.87*0.25 + 0.66*0.10 = "
    f"{torch.dot(x_2, inputs[4]).item():.4f}"
)
assert math.isclose(by_hand, torch.dot(x_2, inputs[2]).item(), abs_tol=1e-6)

# %% [markdown]
# "journey" and "starts" point almost the same way, so their dot product is about twice that of
# "journey" and "one" (the two lines above). Attention uses exactly this number to decide how much
# one token should look at another.
#
# ## 3.2 Scores, weights and a context vector for "journey"
#
# Take "journey" as the *query*. Step 1: its **attention score** with every token $j$ of the
# sentence, itself included, is the dot product $\omega_{2j} = x_2 \cdot x_j$.

# %%
attn_scores_2 = torch.empty(T)  # (T,)
for j, x_j in enumerate(inputs):
    attn_scores_2[j] = torch.dot(x_2, x_j)
print(attn_scores_2)
# the loop is one matrix-vector product
assert torch.allclose(attn_scores_2, inputs @ x_2)

# %% [markdown]
# Step 2: turn the scores into **attention weights** that are positive and sum to 1, with the
# softmax $\alpha_{2j} = e^{\omega_{2j}} / \sum_{j'} e^{\omega_{2j'}}$.

# %%
def softmax_naive(scores):
    return scores.exp() / scores.exp().sum(dim=-1, keepdim=True)


attn_weights_2 = softmax_naive(attn_scores_2)  # (T,)
for word, w in zip(words, attn_weights_2):
    print(f"{word:8s} {w:.4f}")
print(f"{'sum':8s} {attn_weights_2.sum():.4f}")
assert torch.allclose(attn_weights_2, torch.softmax(attn_scores_2, dim=0))
# the two-digit weights of the running example in LLMs from Scratch:
assert [round(w, 2) for w in attn_weights_2.tolist()] == (
    [0.14, 0.24, 0.23, 0.12, 0.11, 0.16]
)

# %% [markdown]
# "journey" gives itself the largest weight and "starts" nearly as much. The cell above also
# checks the two-digit weights that *LLMs from Scratch* {cite}`raschka2024llm`, whose running
# example this is, prints. We use `torch.softmax` from here on rather than `softmax_naive`: the
# naive version overflows once a score passes $\ln(\text{largest float32}) \approx 88.7$ (the cell
# below prints it), where $e^x$ no longer fits in a float32. `torch.softmax` first subtracts the
# row's largest score, which changes nothing mathematically (the factor $e^{-m}$ cancels between
# numerator and denominator) and keeps every exponent at or below 0:

# %%
print(
    f"ln(largest float32) = {math.log(torch.finfo(torch.float32).max):.1f}"
)
big = torch.tensor([1000.0, 1001.0])
print("naive:", softmax_naive(big))
print("torch:", torch.softmax(big, dim=0))
print("shifted by the max:", softmax_naive(big - big.max()))

# %% [markdown]
# Step 3: the **context vector** of "journey" is the weighted sum of all input vectors,
# $z_2 = \sum_j \alpha_{2j} x_j$. It is a new vector for "journey" that mixes in the tokens it
# attends to.

# %%
context_vec_2 = torch.zeros(C)  # (C,)
for w, x_j in zip(attn_weights_2, inputs):
    context_vec_2 += w * x_j
print(context_vec_2)
assert torch.allclose(context_vec_2, attn_weights_2 @ inputs)
assert torch.allclose(
    context_vec_2, torch.tensor([0.4419, 0.6515, 0.5683]), atol=5e-5
)

# %% [markdown]
# ## 3.3 Every token at once: $\mathrm{softmax}(X X^\top)\, X$
#
# Doing the same for every token is three matrix operations: the $T \times T$ score matrix
# $X X^\top$ holds $x_i \cdot x_j$ in row $i$, column $j$; a softmax along each row gives the
# weights; multiplying by $X$ gives all context vectors.

# %%
attn_scores = inputs @ inputs.T  # (T, T): row i holds x_i · x_j for every j
# (T, T), softmax along each row
attn_weights = torch.softmax(attn_scores, dim=-1)
all_context_vecs = attn_weights @ inputs  # (T, C)
print(all_context_vecs)

seed_context_vecs = torch.tensor(
    [
        [0.4421, 0.5931, 0.5790],
        [0.4419, 0.6515, 0.5683],
        [0.4431, 0.6496, 0.5671],
        [0.4304, 0.6298, 0.5510],
        [0.4671, 0.5910, 0.5266],
        [0.4177, 0.6503, 0.5645],
    ]
)
# as published
assert torch.allclose(all_context_vecs, seed_context_vecs, atol=5e-5)
assert torch.allclose(all_context_vecs[1], context_vec_2)
assert torch.allclose(attn_weights.sum(dim=-1), torch.ones(T))

# %% [markdown]
# Row 2 is the context vector of "journey" from Section 3.2, and all six rows match the matrix that
# *LLMs from Scratch* prints, to its four digits. Which token does each word attend to most?

# %%
for word, row in zip(words, attn_weights):
    print(
        f"{word:8s} attends most to {words[row.argmax()]!r:10s} (weight "
        f"{row.max():.3f})"
    )
print("vector lengths:", [f"{n:.3f}" for n in inputs.norm(dim=-1).tolist()])

# %% [markdown]
# Only "Your" and "journey" attend most to themselves. A dot product rewards length as well as
# direction, and "journey" is the longest vector (1.223 in the cell above), so "with" and "step"
# attend more to it than to themselves. This is one reason the next section stops comparing the
# raw vectors and learns separate projections for asking and for being found.
#
# A heatmap shows the whole weight matrix; row $i$ is how token $i$ spreads its attention.

# %%
fig, ax = plt.subplots(figsize=(5, 4.2))
plot_attention(attn_weights, words, ax=ax, title="softmax(X Xᵀ)")
plt.show()

# %% [markdown]
# ## 3.4 Trainable queries, keys and values
#
# GPT-2 does not compare the input vectors directly. Three learned matrices project each input
# $x_i$ (width $d_\text{in}$) to three vectors of width $d_\text{out}$: a **query**
# $q_i = x_i W_q$ (what this token is looking for), a **key** $k_i = x_i W_k$ (what it offers to
# queries) and a **value** $v_i = x_i W_v$ (what it passes on when attended to). Scores compare
# queries with keys, and the context vector sums values:
#
# $$
# \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_h}}\right) V ,
# $$
#
# where $d_h$ is the width of one key (here $d_\text{out}$; Section 3.5 explains the division).
# `nn.Linear(d_in, d_out, bias=False)` holds such a matrix; it stores it transposed, as a
# `(d_out, d_in)` weight, and computes `x @ weight.T`.

# %%
class SelfAttention(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.W_query = nn.Linear(d_in, d_out, bias=False)
        self.W_key = nn.Linear(d_in, d_out, bias=False)
        self.W_value = nn.Linear(d_in, d_out, bias=False)

    def forward(self, x):  # x: (T, d_in)
        queries = self.W_query(x)  # (T, d_out)
        keys = self.W_key(x)  # (T, d_out)
        values = self.W_value(x)  # (T, d_out)
        attn_scores = queries @ keys.transpose(-2, -1)  # (T, T)
        # (T, T)
        attn_weights = torch.softmax(
            attn_scores / keys.shape[-1] ** 0.5, dim=-1
        )
        return attn_weights @ values  # (T, d_out)


d_in, d_out = 3, 2
torch.manual_seed(123)
sa = SelfAttention(d_in, d_out)
with torch.no_grad():
    context_qkv = sa(inputs)  # (T, d_out)
print(context_qkv)

seed_qkv = torch.tensor(
    [
        [-0.5337, -0.1051],
        [-0.5323, -0.1080],
        [-0.5323, -0.1079],
        [-0.5297, -0.1076],
        [-0.5311, -0.1066],
        [-0.5299, -0.1081],
    ]
)
# the published output
assert torch.allclose(context_qkv, seed_qkv, atol=5e-5)

# %% [markdown]
# With `torch.manual_seed(123)` (the seed of *LLMs from Scratch*'s exercise solutions; its main
# text seeds this layer with 789 and so prints other numbers) the output matches the values
# printed there to all four digits. Now the same
# numbers by hand for "journey": its query, the key of "starts", their score, and the scaled score.

# %%
with torch.no_grad():
    # (T, d_out) each
    queries, keys, values = (
        sa.W_query(inputs),
        sa.W_key(inputs),
        sa.W_value(inputs),
    )
q_2 = queries[1]  # "journey"
# nn.Linear computes x @ weight.T
assert torch.allclose(q_2, x_2 @ sa.W_query.weight.T)
print(f"q_journey = {q_2.tolist()[0]:.4f}, {q_2.tolist()[1]:.4f}")
print(f"k_starts  = {keys[2].tolist()[0]:.4f}, {keys[2].tolist()[1]:.4f}")
score = torch.dot(q_2, keys[2]).item()
print(
    f"q_journey · k_starts = {score:.4f};  / sqrt({d_out}) = "
    f"{score / math.sqrt(d_out):.4f}"
)

# %%
scaled_2 = queries[1] @ keys.T / math.sqrt(d_out)  # (T,)
weights_2 = torch.softmax(scaled_2, dim=0)  # (T,)
print(f"{'key':8s} {'scaled score':>12s} {'weight':>7s}")
for word, s, w in zip(words, scaled_2, weights_2):
    print(f"{word:8s} {s:12.4f} {w:7.4f}")
context_2 = weights_2 @ values  # (d_out,)
print(f"context vector of journey: {context_2[0]:.4f}, {context_2[1]:.4f}")
assert torch.allclose(context_2, context_qkv[1])
# the two-digit scaled scores and weights of the walk-through we followed:
assert [round(s, 2) for s in scaled_2.tolist()] == (
    [0.12, 0.18, 0.18, 0.10, 0.10, 0.13]
)
assert [round(w, 2) for w in weights_2.tolist()] == (
    [0.16, 0.17, 0.17, 0.16, 0.16, 0.17]
)

# %% [markdown]
# The weights are nearly uniform: with untrained random projections, no query prefers any key.
# Training changes $W_q$, $W_k$ and $W_v$ so that the weights become useful. The weighted sum of
# the *values* (not of the inputs) is row 2 of the output above.
#
# ## 3.5 Why divide by $\sqrt{d_h}$
#
# Two measurements explain the division. First, the softmax of large scores is *peaky*: almost all
# weight goes to the largest score, and the gradient of the softmax, which training needs, shrinks
# as the weights approach 0 and 1. The cell below applies the softmax to a small score vector and to
# 8 times it; then it draws random scores for 64 keys with standard deviation 1, 8 and 64, and
# measures, averaged over 1,000 draws, the largest weight and the size of the softmax's Jacobian
# $\partial\,\mathrm{softmax}(s)_i / \partial s_j$ (its Frobenius norm: all entries as one vector).

# %%
s = torch.tensor([0.1, -0.2, 0.3, -0.2, 0.5])
print("softmax(s):    ", torch.softmax(s, dim=-1))
print("softmax(8 * s):", torch.softmax(8 * s, dim=-1))
gen = torch.Generator().manual_seed(123)
# 1,000 draws of 64 scores, standard deviation 1
z = torch.randn(1000, 64, generator=gen)
tops, norms = [], []
for std in [1, 8, 64]:
    p = torch.softmax(std * z, dim=-1)  # (1000, 64)
    # d p_i / d s_j
    jac = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    tops.append(p.max(dim=-1).values.mean().item())
    norms.append(jac.flatten(1).norm(dim=-1).mean().item())
    print(f"scores with std {std:2d}: largest weight {tops[-1]:.3f}, "
          f"Jacobian norm {norms[-1]:.3f}")
assert torch.allclose(
    torch.softmax(s, dim=-1),
    torch.tensor([0.1925, 0.1426, 0.2351, 0.1426, 0.2872]),
    atol=5e-5,
)
assert torch.allclose(
    torch.softmax(8 * s, dim=-1),
    torch.tensor([0.0326, 0.0030, 0.1615, 0.0030, 0.8000]),
    atol=5e-5,
)
assert tops[0] < 0.2 < 0.7 < tops[1] < tops[2] and norms[2] < norms[0] / 4

# %% [markdown]
# Both softmax rows match a classic illustration of this point (the asserts check them):
# multiplying the scores by 8 moves the top weight from 0.29 to 0.80. The random scores tell the
# general story (the last three lines above): with standard deviation 1, the 64 keys share the
# weight (the largest gets about 0.1 on average); with 8, one key takes most of it, although the
# Jacobian, the signal that training receives, is not yet smaller; with 64 the softmax is nearly
# one-hot and the Jacobian has shrunk about five times. A layer whose scores grew that large would
# barely learn.
#
# Second, scores *do* grow with the width of the vectors. If the $d$ entries of $q$ and $k$ are
# independent with mean 0 and variance 1, each product $q_i k_i$ has variance 1, so
# $q \cdot k = \sum_{i=1}^{d} q_i k_i$ has variance $d$, and $q \cdot k / \sqrt{d}$ has variance 1
# whatever $d$ is. Measured on 10,000 random pairs for each width:

# %%
gen = torch.Generator().manual_seed(123)
for dim in [5, 64, 100, 768]:
    q = torch.randn(10_000, dim, generator=gen)  # 10,000 random queries
    k = torch.randn(10_000, dim, generator=gen)  # and keys
    dots = (q * k).sum(dim=-1)  # (10_000,)
    var, var_scaled = dots.var().item(), (dots / math.sqrt(dim)).var().item()
    print(
        f"d = {dim:3d}: variance of q·k = {var:7.2f}   of q·k / sqrt(d) = "
        f"{var_scaled:.3f}"
    )
    assert abs(var / dim - 1) < 0.06 and abs(var_scaled - 1) < 0.06

# %% [markdown]
# GPT-2's heads have $d_h = 64$ features, so without the division scores built from unit-variance
# entries would have a standard deviation of $\sqrt{64} = 8$: the middle row of the random-score
# experiment above, where one key already takes most of the weight before training has begun; and
# since the spread grows like $\sqrt{d_h}$, wider heads would push the scores towards the last row.
# Divided by $\sqrt{d_h}$, the scores start with standard deviation 1 whatever the width, where the
# weights are spread and the softmax passes gradients on.
#
# ## 3.6 Causal masking: no peeking at the future
#
# GPT-2 is trained to predict the next token at every position at once. If position $i$ could
# attend to position $i+1$, it could copy the answer. So the weights must be zero above the
# diagonal: token $i$ sees only tokens $1, \dots, i$. The clean way is to set the future scores to
# $-\infty$ before the softmax, since $e^{-\infty} = 0$.

# %%
# (T, T): True above the diagonal = the future
mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
print(mask.int())
with torch.no_grad():
    # (T, T), scaled scores of Section 3.4
    scores = sa.W_query(inputs) @ sa.W_key(inputs).T / math.sqrt(d_out)
masked_scores = scores.masked_fill(mask, float("-inf"))
causal_weights = torch.softmax(masked_scores, dim=-1)  # (T, T)
print(causal_weights)
assert torch.all(causal_weights[mask] == 0)
assert torch.allclose(causal_weights.sum(dim=-1), torch.ones(T))

# %% [markdown]
# Another way reaches the same weights: take the ordinary softmax, zero the future, and divide
# each row by its new sum. The two agree because the softmax's denominator cancels:
# $\dfrac{e^{s_j}/Z}{\sum_{j' \le i} e^{s_{j'}}/Z} = \dfrac{e^{s_j}}{\sum_{j' \le i} e^{s_{j'}}}$.

# %%
plain_weights = torch.softmax(scores, dim=-1)  # (T, T), no mask
renormalised = plain_weights.masked_fill(mask, 0.0)
renormalised = renormalised / renormalised.sum(dim=-1, keepdim=True)
print(
    "mask before softmax == mask after softmax and renormalise:",
    torch.allclose(renormalised, causal_weights, atol=1e-7),
)
assert torch.allclose(renormalised, causal_weights, atol=1e-7)

# %% [markdown]
# Equal in exact arithmetic, but not equally safe in floating point. With the renormalising route
# the future still takes part in the first softmax, and a large future score can push the visible
# weights below the smallest float32 number; then the row sums to 0 and the division gives `nan`:

# %%
# a visible score and a much larger future score
row = torch.tensor([[0.0, 200.0]])
future = torch.tensor([[False, True]])
after = torch.softmax(row, dim=-1).masked_fill(future, 0.0)
print("renormalise after softmax:", after / after.sum(dim=-1, keepdim=True))
print(
    "-inf before softmax:      ",
    torch.softmax(row.masked_fill(future, float("-inf")), dim=-1),
)

# %% [markdown]
# Side by side, on one colour scale, the weights of Section 3.4's layer without and with the mask:

# %%
fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.6), layout="constrained")
# one colour scale for both
plot_attention(plain_weights, words, ax=axes[0], title="no mask", vmax=1.0)
plot_attention(
    causal_weights, words, ax=axes[1], title="causal mask", vmax=1.0
)
plt.show()

# %% [markdown]
# ## 3.7 Dropout on the attention weights
#
# During training, GPT-2 as `transformers` configures it (`attn_pdrop=0.1`, as in GPT-1; OpenAI's
# released code has no dropout) applies *dropout* to the attention weights: each weight is set to 0
# with probability $p$, and the survivors are multiplied by $1/(1-p)$ so that the expected value of
# every weight stays the same. In evaluation mode dropout does nothing. With $p = 0.5$ on a matrix
# of ones, the survivors become 2:

# %%
torch.manual_seed(123)
dropout = nn.Dropout(0.5)  # a new module is in training mode
print(dropout(torch.ones(T, T)))

# %%
torch.manual_seed(123)
dropped = dropout(causal_weights)  # (T, T)
print(dropped)
print(
    "row sums after dropout:",
    [f"{r:.3f}" for r in dropped.sum(dim=-1).tolist()],
)

torch.manual_seed(123)
mean_of_many = torch.stack(
    [dropout(causal_weights) for _ in range(10_000)]
).mean(dim=0)
gap = (mean_of_many - causal_weights).abs().max().item()
print(
    "average of 10,000 dropped-out copies vs the weights: largest "
    f"difference {gap:.3f}"
)
assert gap < 0.03
# eval mode: no dropout
assert torch.equal(dropout.eval()(causal_weights), causal_weights)

# %% [markdown]
# After dropout a row no longer sums to 1 (the cell above prints the sums), but on average over
# many draws every weight is what it was, up to the printed sampling noise. That rescaling is why
# a model trained with dropout can run without it at evaluation time.
#
# Now one module does all of it for a batch: projections, scaled scores, the causal mask, softmax,
# dropout and the weighted sum of values. The mask is a *buffer*: it moves with the module to a GPU
# like a parameter but is not trained. We register it with `persistent=False`, so it is rebuilt from
# `context_length` rather than saved in every checkpoint (*LLMs from Scratch* keeps it in the
# `state_dict`).

# %%
class CausalAttention(nn.Module):
    def __init__(
        self, d_in, d_out, context_length, dropout=0.0, qkv_bias=False
    ):
        super().__init__()
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = nn.Dropout(dropout)
        mask = torch.triu(
            torch.ones(context_length, context_length, dtype=torch.bool),
            diagonal=1,
        )
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):  # x: (B, T, d_in)
        num_tokens = x.shape[1]
        # (B, T, d_out) each
        queries, keys, values = (
            self.W_query(x),
            self.W_key(x),
            self.W_value(x),
        )
        # (B, T, T)
        attn_scores = queries @ keys.transpose(1, 2) / keys.shape[-1] ** 0.5
        attn_scores = attn_scores.masked_fill(
            self.mask[:num_tokens, :num_tokens], float("-inf")
        )
        attn_weights = torch.softmax(attn_scores, dim=-1)  # (B, T, T)
        # (B, T, d_out), (B, T, T)
        return self.dropout(attn_weights) @ values, attn_weights


batch = torch.stack([inputs, inputs])  # (B, T, d_in) = (2, 6, 3)
torch.manual_seed(123)
ca = CausalAttention(d_in, d_out, context_length=T, dropout=0.0)
with torch.no_grad():
    context_vecs, ca_weights = ca(batch)
print("context vectors:", tuple(context_vecs.shape))
print(ca_weights[0])
print("state_dict keys:", list(ca.state_dict()))

seed_causal = torch.tensor(
    [
        [1.0000, 0, 0, 0, 0, 0],
        [0.4833, 0.5167, 0, 0, 0, 0],
        [0.3190, 0.3408, 0.3402, 0, 0, 0],
        [0.2445, 0.2545, 0.2542, 0.2468, 0, 0],
        [0.1994, 0.2060, 0.2058, 0.1935, 0.1953, 0],
        [0.1624, 0.1709, 0.1706, 0.1654, 0.1625, 0.1682],
    ]
)
# the walk-through's matrix
assert torch.allclose(ca_weights[0], seed_causal, atol=5e-5)
# same seed, same three matrices as `sa`
assert torch.allclose(ca_weights[0], causal_weights)

# %% [markdown]
# The weights are the walk-through's matrix and, because `torch.manual_seed(123)` drew the same three
# matrices again, the `causal_weights` of the start of Section 3.6.

# %% [markdown]
# ## 3.8 Multi-head attention
#
# One head computes one pattern of weights. GPT-2 runs several heads side by side, each with its
# own projections, so that different heads can track different relations (one the previous token,
# one the subject of the sentence, and so on), and concatenates their outputs. The plainest way
# to write that is a list of the single heads we already have; we give each head
# `d_out // num_heads` features so that the concatenation is `d_out` wide.

# %%
class MultiHeadAttentionWrapper(nn.Module):
    def __init__(
        self,
        d_in,
        d_out,
        context_length,
        num_heads,
        dropout=0.0,
        qkv_bias=False,
    ):
        super().__init__()
        self.heads = nn.ModuleList(
            [
                CausalAttention(
                    d_in,
                    d_out // num_heads,
                    context_length,
                    dropout,
                    qkv_bias,
                )
                for _ in range(num_heads)
            ]
        )

    def forward(self, x):  # x: (B, T, d_in)
        # (B, T, d_out)
        return torch.cat([head(x)[0] for head in self.heads], dim=-1)


torch.manual_seed(123)
wrapper = MultiHeadAttentionWrapper(
    d_in, d_out=4, context_length=T, num_heads=2
)
with torch.no_grad():
    print(wrapper(batch)[0])  # (T, 4): two heads of 2 features each

# %% [markdown]
# This does $3h$ small projections and $h$ separate attention computations, one after the
# other. The faster way does **one** query, one key and one value projection of width `d_out`, and
# cuts each result into $h$ slices of `head_dim` features: a `view` turns `(B, T, d_out)` into
# `(B, T, h, d_h)` and a `transpose` into `(B, h, T, d_h)`, after which one batched matrix product
# computes all heads' scores at once. An output projection `out_proj` then mixes the heads'
# concatenated outputs; GPT-2 has one. {numref}`fig-heads-split` draws the reshaping, there and back.
#
# ```{figure} ../book/figures/heads_split.svg
# :name: fig-heads-split
# :alt: A 4 by 6 matrix, tokens as rows, whose first three columns are coloured as head 0 and last three as head 1. view regroups each row into two groups of three; transpose(1, 2) makes each head a separate 4 by 3 matrix. After attention, transpose(1, 2) and view put the heads side by side again as a 4 by 6 matrix.
# :width: 100%
#
# Splitting queries into heads and back, for one batch item with $T = 4$, $d_\text{out} = 6$ and $h = 2$ heads: `view` only regroups the numbers, `transpose` brings the head dimension to the front, so that one batched product computes every head's own $(T, T)$ attention.
# ```

# %%
class MultiHeadAttention(nn.Module):
    def __init__(
        self,
        d_in,
        d_out,
        context_length,
        num_heads,
        dropout=0.0,
        qkv_bias=False,
    ):
        super().__init__()
        assert d_out % num_heads == 0, "d_out must be divisible by num_heads"
        self.d_out, self.num_heads, self.head_dim = (
            d_out,
            num_heads,
            d_out // num_heads,
        )
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)  # mixes the heads
        self.dropout = nn.Dropout(dropout)
        mask = torch.triu(
            torch.ones(context_length, context_length, dtype=torch.bool),
            diagonal=1,
        )
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):  # x: (B, T, d_in)
        B, T, _ = x.shape
        # (B, T, d_out) -> (B, T, h, d_h) -> (B, h, T, d_h)
        queries = (
            self.W_query(x)
            .view(B, T, self.num_heads, self.head_dim)
            .transpose(1, 2)
        )
        keys = (
            self.W_key(x)
            .view(B, T, self.num_heads, self.head_dim)
            .transpose(1, 2)
        )
        values = (
            self.W_value(x)
            .view(B, T, self.num_heads, self.head_dim)
            .transpose(1, 2)
        )
        # (B, h, T, T)
        attn_scores = queries @ keys.transpose(2, 3) / self.head_dim**0.5
        attn_scores = attn_scores.masked_fill(
            self.mask[:T, :T], float("-inf")
        )
        attn_weights = torch.softmax(attn_scores, dim=-1)  # (B, h, T, T)
        context = self.dropout(attn_weights) @ values  # (B, h, T, d_h)
        # (B, T, d_out): heads side by side
        context = context.transpose(1, 2).contiguous().view(B, T, self.d_out)
        return self.out_proj(context)  # (B, T, d_out)


torch.manual_seed(123)
mha = MultiHeadAttention(d_in=3, d_out=2, context_length=T, num_heads=2)
with torch.no_grad():
    mha_out = mha(batch)  # (B, T, d_out)
print(mha_out[0])

seed_mha = torch.tensor(
    [
        [0.3190, 0.4858],
        [0.2943, 0.3897],
        [0.2856, 0.3593],
        [0.2693, 0.3873],
        [0.2639, 0.3928],
        [0.2575, 0.4028],
    ]
)
assert torch.allclose(mha_out[0], seed_mha, atol=5e-5) and torch.equal(
    mha_out[0], mha_out[1]
)

# %% [markdown]
# These are the multi-head numbers that *LLMs from Scratch* prints (the assert checks them). With
# `d_out = 2` and two heads, each head has a single feature, so every number of "journey"'s trip
# through the layer can be written down: column $h$ of the query, key and value projections belongs
# to head $h$; "journey" (position 2) sees "Your" and itself; the scale is $\sqrt{d_h} = \sqrt{1}$.

# %%
with torch.no_grad():
    # (T, d_out) each
    q_all, k_all, v_all = (
        mha.W_query(inputs),
        mha.W_key(inputs),
        mha.W_value(inputs),
    )
head_outputs = []
for h in range(2):
    # query of journey; keys and values of Your, journey
    q, k, v = q_all[1, h], k_all[:2, h], v_all[:2, h]
    w = torch.softmax(q * k / math.sqrt(1), dim=0)  # (2,)
    head_outputs.append((w @ v).item())
    print(
        f"head {h}: q = {q:.4f}, keys = {k[0]:.4f}, {k[1]:.4f} -> scores "
        f"{q * k[0]:.4f}, {q * k[1]:.4f}"
        f" -> weights {w[0]:.4f}, {w[1]:.4f}; values {v[0]:.4f}, {v[1]:.4f} "
        f"-> {head_outputs[-1]:.4f}"
    )
concat = torch.tensor(head_outputs)  # (d_out,): the two heads side by side
print(f"before out_proj: [{concat[0]:.4f}, {concat[1]:.4f}]")
with torch.no_grad():
    projected = mha.out_proj(concat)
print(f"after out_proj:  [{projected[0]:.4f}, {projected[1]:.4f}]")
assert torch.allclose(projected, mha_out[0, 1], atol=1e-6)

# %% [markdown]
# The last line is row 2 of the layer's output, as the assert checks.
#
# The split layer is the wrapper in disguise. Stack the heads' query matrices on top of each other
# and you have the big query matrix: head $h$ owns rows $h\,d_h$ to $(h+1)\,d_h - 1$ of
# `W_query.weight`, exactly the slice that `view(B, T, h, d_h)` hands to head $h$. The cell
# copies the wrapper's weights into a split layer and checks that both compute the same function
# (the split layer's `out_proj` is applied to the wrapper's output, since the wrapper has none).

# %%
torch.manual_seed(0)
x = torch.randn(2, 8, 12)  # (B, T, d_in)
wrapper = MultiHeadAttentionWrapper(
    d_in=12, d_out=12, context_length=8, num_heads=3
)
split = MultiHeadAttention(d_in=12, d_out=12, context_length=8, num_heads=3)
with torch.no_grad():
    for name in ["W_query", "W_key", "W_value"]:
        # (d_out, d_in)
        stacked = torch.cat(
            [getattr(head, name).weight for head in wrapper.heads], dim=0
        )
        getattr(split, name).weight.copy_(stacked)
    expected = split.out_proj(wrapper(x))  # (B, T, d_out)
    diff = (split(x) - expected).abs().max().item()
print(
    "wrapper vs split, same weights: largest difference below 1e-6: "
    f"{diff < 1e-6}"
)
assert diff < 1e-6

# %% [markdown]
# ## 3.9 The same computation through `scaled_dot_product_attention`
#
# PyTorch has the whole middle of the layer, from scores to weighted values, as one function:
# `torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)` (SDPA). It divides by
# $\sqrt{d_h}$ by default, applies the causal mask itself, and picks a fused kernel for the
# hardware that never stores the $T \times T$ weights. First, it computes our numbers:

# %%
# q, k, v: (B, h, T, d_h); the middle of MultiHeadAttention.forward
def naive_attention(q, k, v):
    num_tokens = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5  # (B, h, T, T)
    future = torch.triu(
        torch.ones(num_tokens, num_tokens, dtype=torch.bool), diagonal=1
    )
    # (B, h, T, d_h)
    return (
        torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1) @ v
    )


gen = torch.Generator().manual_seed(0)
# each (B, h, T, d_h) = (2, 4, 32, 16)
q, k, v = torch.randn(3, 2, 4, 32, 16, generator=gen).unbind(0)
ours, theirs = (
    naive_attention(q, k, v),
    F.scaled_dot_product_attention(q, k, v, is_causal=True),
)
print(
    "shape:",
    tuple(theirs.shape),
    "| equal within 1e-6:",
    torch.allclose(ours, theirs, atol=1e-6, rtol=0),
)
assert torch.allclose(ours, theirs, atol=1e-6, rtol=0)

# %% [markdown]
# Second, it is faster and needs less memory. `helpers.attention.attention_benchmark` times the
# explicit computation (the same formula as `naive_attention`) against SDPA, forward and backward,
# on GPT-2-sized input: a batch of 8 sequences of 1,024 tokens, 768 features split into 12 heads of
# 64. The timings change on every run and on every machine: these were measured on the 2-core CPU
# that built this page, and yours will differ.

# %% tags=["nbval-ignore-output"]
bench = helpers.attention.attention_benchmark(
    batch_size=8, num_tokens=1024, emb_dim=768, num_heads=12, repeat=3
)
print(f"{'':9s} {'forward':>9s} {'backward':>9s}")
for path in ["naive", "sdpa"]:
    print(
        f"{path:9s} {bench[f'{path}_forward_s']:8.3f}s "
        f"{bench[f'{path}_backward_s']:8.3f}s"
    )
print(
    f"SDPA is {bench['forward_speedup']:.1f}x faster forward and "
    f"{bench['backward_speedup']:.1f}x faster backward"
)

# %% [markdown]
# The last line of the cell above gives the two ratios of this run, forward and backward. Memory,
# unlike time, repeats exactly, so it is printed outside the timing cell: the benchmark also counted
# the bytes that autograd keeps between the forward and the backward pass.

# %%
naive_MiB, sdpa_MiB = bench["naive_saved_MiB"], bench["sdpa_saved_MiB"]
# one float32 (B, h, T, T) tensor
weights_MiB = 8 * 12 * 1024 * 1024 * 4 / 2**20
qkv_MiB = 8 * 12 * 1024 * 64 * 4 / 2**20  # one float32 (B, h, T, d_h) tensor
print(
    f"kept for backward: naive {naive_MiB:.1f} MiB, SDPA {sdpa_MiB:.1f} MiB "
    f"({naive_MiB / sdpa_MiB:.1f}x less)"
)
print(
    f"one (B, h, T, T) weights tensor: {weights_MiB:.0f} MiB; one (B, h, T, "
    f"d_h) tensor: {qkv_MiB:.0f} MiB"
)
assert naive_MiB >= weights_MiB + 3 * qkv_MiB and sdpa_MiB < 4 * qkv_MiB + 1

# %% [markdown]
# The explicit path keeps the whole $(B, h, T, T)$ weights tensor for the backward pass, plus $q$,
# $k$ and $v$; SDPA keeps $q$, $k$, $v$, its output and one small number per row (the log of the
# softmax's denominator), and recomputes the weights during the backward pass. The gap grows with
# $T^2$: at GPT-2's 1,024 tokens it is the difference printed above, per layer.
#
# ## 3.10 Consolidate: `helpers.attention.MultiHeadAttention`
#
# The book's package has the layer of Section 3.8 with three additions: the SDPA fast path
# (used unless you ask for the weights), `attn_weights=[]` (a list it appends the weights to) to
# get the weights for plotting,
# and errors that say what was wrong. Its signature is
# `MultiHeadAttention(d_in, d_out, context_length, num_heads, dropout=0.0, qkv_bias=False)`, and
# it creates its parameters in the same order as ours, so the state of our `mha` loads into it as is.

# %%
layer = helpers.attention.MultiHeadAttention(
    d_in=3, d_out=2, context_length=T, num_heads=2
)
layer.load_state_dict(mha.state_dict())
with torch.no_grad():
    fast = layer(batch)  # SDPA path
    recorded = []
    # explicit path, appends the weights
    slow = layer(batch, attn_weights=recorded)
    weights = recorded[0]  # (B, h, T, T)
print(
    "our layer == helpers, fast path:",
    torch.allclose(fast, mha_out, atol=1e-6, rtol=0),
)
print(
    "our layer == helpers, weights path:",
    torch.allclose(slow, mha_out, atol=1e-6, rtol=0),
)
print(
    "weights:",
    tuple(weights.shape),
    "| rows sum to 1:",
    torch.allclose(weights.sum(-1), torch.ones(2, 2, T)),
    "| zero above the diagonal:",
    bool(torch.all(weights[..., mask] == 0)),
)
assert torch.allclose(fast, mha_out, atol=1e-6, rtol=0) and torch.allclose(
    slow, mha_out, atol=1e-6, rtol=0
)
assert torch.allclose(weights.sum(-1), torch.ones(2, 2, T)) and torch.all(
    weights[..., mask] == 0
)

# %% [markdown]
# The returned weights are the softmax *before* dropout, so every row sums to 1 even in training
# mode; the output itself uses the dropped-out weights. The two heads of the running example:

# %%
fig = plot_attention_heads(weights[0], words, annotate=True, ncols=2)
plt.show()

# %% [markdown]
# PyTorch ships its own layer, `torch.nn.MultiheadAttention`. It keeps the query, key and value
# matrices stacked in one `in_proj_weight` of shape `(3 * d_out, d_in)` and, with a boolean
# `attn_mask`, hides the positions marked True, the same convention as our mask. Copy our weights
# into it (with biases on, `qkv_bias=True`) and compare outputs and per-head weights:

# %%
torch.manual_seed(123)
ours_layer = helpers.attention.MultiHeadAttention(
    d_in=64, d_out=64, context_length=16, num_heads=4, qkv_bias=True
).eval()
torch_layer = nn.MultiheadAttention(
    embed_dim=64, num_heads=4, bias=True, batch_first=True
).eval()
with torch.no_grad():
    torch_layer.in_proj_weight.copy_(
        torch.cat(
            [
                ours_layer.W_query.weight,
                ours_layer.W_key.weight,
                ours_layer.W_value.weight,
            ]
        )
    )
    torch_layer.in_proj_bias.copy_(
        torch.cat(
            [
                ours_layer.W_query.bias,
                ours_layer.W_key.bias,
                ours_layer.W_value.bias,
            ]
        )
    )
    torch_layer.out_proj.load_state_dict(ours_layer.out_proj.state_dict())
    x = torch.randn(2, 16, 64)  # (B, T, d_in)
    causal = torch.triu(torch.ones(16, 16, dtype=torch.bool), diagonal=1)
    ref_out, ref_weights = torch_layer(
        x,
        x,
        x,
        attn_mask=causal,
        need_weights=True,
        average_attn_weights=False,
    )
    recorded = []
    out = ours_layer(x, attn_weights=recorded)
    out_weights = recorded[0]  # (B, h, T, T)
print(
    "outputs equal within 1e-6:",
    torch.allclose(out, ref_out, atol=1e-6, rtol=0),
    "| weights equal within 1e-6:",
    torch.allclose(out_weights, ref_weights, atol=1e-6, rtol=0),
    "| fast path equal within 1e-6:",
    torch.allclose(ours_layer(x), ref_out, atol=1e-6, rtol=0),
)
assert torch.allclose(out, ref_out, atol=1e-6, rtol=0) and torch.allclose(
    out_weights, ref_weights, atol=1e-6, rtol=0
)
assert torch.allclose(ours_layer(x), ref_out, atol=1e-6, rtol=0)

# %% [markdown]
# Causality is a property we can test directly: change every token from some position on, and no
# output before that position may move, not even in the last bit.

# %%
changed = x.clone()
changed[:, 10:] = torch.randn(2, 6, 64)  # replace tokens 10..15
with torch.no_grad():
    before, after = ours_layer(x), ours_layer(changed)
print(
    "outputs 0..9 unchanged:",
    torch.equal(before[:, :10], after[:, :10]),
    "| outputs 10..15 changed:",
    not torch.allclose(before[:, 10:], after[:, 10:]),
)
assert torch.equal(before[:, :10], after[:, :10]) and not torch.allclose(
    before[:, 10:], after[:, 10:]
)

# %% [markdown]
# Finally, the layer's errors. Each names the numbers involved and what to do instead:

# %%
errors = []
for attempt in [
    lambda: helpers.attention.MultiHeadAttention(
        d_in=768, d_out=768, context_length=1024, num_heads=10
    ),
    # context_length is 16
    lambda: ours_layer(torch.randn(1, 17, 64)),
    # no batch dimension
    lambda: ours_layer(torch.randn(16, 64)),
]:
    try:
        attempt()
    except ValueError as err:
        errors.append(str(err))
        print("ValueError:", err)
assert len(errors) == 3

# %% [markdown]
# ```{admonition} Where these numbers come from
# :class: dropdown
# The sentence "Your journey starts with one step", its six three-dimensional vectors and the
# weights drawn with `torch.manual_seed(123)` are the running example of *Build a Large Language
# Model (From Scratch)* {cite}`raschka2024llm`, which we met through a popular walk-through of it;
# the asserts above check our numbers against the values printed there, to their four digits. Where
# that walk-through's own printouts differ from what its code computes (an intermediate vector
# before the output projection, a multi-head layer built without re-seeding, an unseeded variance
# experiment), this chapter follows the code. {ref}`seeds` lists the write-ups the book grew from.
# ```
#
# ## Summary
#
# - A dot product scores how similar two vectors are; a softmax turns one query's scores into
#   weights that sum to 1; the context vector is the weighted sum. For all tokens at once:
#   $\mathrm{softmax}(X X^\top) X$, which reproduced the running example of
#   *LLMs from Scratch* to four digits.
# - Trainable projections give each token a query, a key and a value:
#   $\mathrm{softmax}(Q K^\top / \sqrt{d_h})\, V$. Dividing by $\sqrt{d_h}$ keeps the scores'
#   variance near 1 whatever the width, which keeps the softmax from going peaky and its gradient
#   from vanishing (both measured in Section 3.5).
# - A causal mask sets future scores to $-\infty$ before the softmax; it equals masking after the
#   softmax and renormalising, but cannot produce `nan`. Dropout zeroes weights in training and
#   rescales the rest, keeping each weight's expected value.
# - Multi-head attention is several heads side by side; one projection split with
#   `view`/`transpose` computes the same function as a stack of heads with the same weights, with
#   fewer, larger matrix products. An output projection mixes the heads.
# - PyTorch's `scaled_dot_product_attention` computes the same numbers faster and without keeping
#   the $(B, h, T, T)$ weights for the backward pass.
#
# Moved into `helpers/`:
#
# - `helpers.attention`: `MultiHeadAttention(d_in, d_out, context_length, num_heads, dropout=0.0, qkv_bias=False)`
#   with `forward(x, attn_weights=None)` (SDPA fast path; given a list, the explicit path, which
#   appends the weights to it; the output is returned either way),
#   `causal_mask`, `causal_attention` (the explicit computation), and `attention_benchmark` with
#   `saved_tensor_bytes` (the measurement of Section 3.9; `benchmarks/attention.py` prints it).
# - `helpers.viz`: `plot_attention` and `plot_attention_heads`, the heatmaps of this chapter.
#
# ## Exercises
#
# Each exercise whose answer is code or a value has a cell for your answer, marked as yours, and
# a cell that checks it: `check("3.3", my_head_weights)` says "not attempted yet" until you write
# something, then either what is wrong, on which case, with a hint, or that the answer is right
# and what it was checked on. The worked solution is folded away under it. How to use the checks
# in Colab and locally: {doc}`../book/exercises`.

# %% [markdown]
# **Exercise 3.1.** Write `my_context_vector(rows, i)` with plain Python loops only: `rows` is a
# list of token vectors (lists of floats), and the answer is the context vector of token `i` as a
# list, with the scores as dot products, the softmax written out with `math.exp` (safe for large
# scores too), then the weighted sum. Check the vector of "starts" (`i = 2`, the third token)
# of Section 3.3 against `all_context_vecs[2]`.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_context_vector(rows, i):
    raise NotImplementedError


# %%
check("3.1", my_context_vector)

# %% [markdown]
# ```{admonition} Solution 3.1
# :class: dropdown
# The query is $x_i$; its scores are the dot products $x_i \cdot x_j$, the weights are their
# exponentials divided by the sum of the exponentials, and the context vector adds up the inputs
# with those weights, one coordinate at a time. Subtracting the largest score before `math.exp`
# changes no weight (it divides the numerator and the denominator by the same number) and keeps
# the exponentials from overflowing.
# ```

# %% tags=["hide-cell"]
def context_vector(rows, i):
    scores = [sum(a * b for a, b in zip(rows[i], row)) for row in rows]
    exps = [math.exp(s - max(scores)) for s in scores]
    weights = [e / sum(exps) for e in exps]
    n_features = len(rows[i])
    return [
        sum(w * row[c] for w, row in zip(weights, rows))
        for c in range(n_features)
    ]


context_3 = context_vector(inputs.tolist(), 2)
print("context vector of 'starts':", [f"{c:.4f}" for c in context_3])
assert torch.allclose(
    torch.tensor(context_3), all_context_vecs[2], atol=1e-6
)
verdict = check("3.1", context_vector)
assert verdict.passed
verdict

# %% [markdown]
# **Exercise 3.2.** How many parameters does one attention layer of GPT-2 small have? It has
# `d_in = d_out = 768`, 12 heads and biases on the query, key and value projections
# (`qkv_bias=True`). Write the count as a function `my_count_parameters(d_out)` (with
# `d_in = d_out`), check it against `helpers.attention.MultiHeadAttention`, and give the total for
# GPT-2 small's 12 layers.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_count_parameters(d_out):
    raise NotImplementedError


# %%
check("3.2", my_count_parameters)

# %% [markdown]
# ```{admonition} Solution 3.2
# :class: dropdown
# Four $d \times d$ matrices (query, key, value, output projection) and four bias vectors of
# length $d$: $4d^2 + 4d$ parameters. The number of heads does not change the count; it only
# decides how the $d$ features are cut into heads. The cell evaluates it for $d = 768$ and for
# the 12 layers.
# ```

# %% tags=["hide-cell"]
def count_parameters(d_out):
    return 4 * d_out * d_out + 4 * d_out


d = 768
gpt2_attention = helpers.attention.MultiHeadAttention(
    d, d, context_length=1024, num_heads=12, qkv_bias=True
)
counted = sum(p.numel() for p in gpt2_attention.parameters())
print(f"formula {count_parameters(d):,}, counted {counted:,}, "
      f"12 layers: {12 * counted:,}")
assert counted == count_parameters(d) == 2_362_368
verdict = check("3.2", count_parameters)
assert verdict.passed
verdict

# %% [markdown]
# **Exercise 3.3.** Write `my_head_weights(layer, x, head)`: the `(B, T, T)` attention weights of
# one head of a `helpers.attention.MultiHeadAttention` on `x`, computed by hand from the layer's
# query and key projections (`layer.W_query`, `layer.W_key`, whose bias may be `None`) and
# `layer.head_dim`. Check it on head 2 of `ours_layer` from Section 3.10 (4 heads of 16
# features) against `all_heads[:, 2]`, where `recorded = []`, `ours_layer(x,
# attn_weights=recorded)` and `all_heads = recorded[0]` (`x` is Section 3.10's `(2, 16, 64)`
# input).

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_head_weights(layer, x, head):
    raise NotImplementedError


# %%
check("3.3", my_head_weights)

# %% [markdown]
# ```{admonition} Solution 3.3
# :class: dropdown
# Head $h$ owns rows $h d_h$ to $(h + 1) d_h - 1$ of each projection's weight (and the same slice
# of its bias). Project with those rows only, compute the scaled scores, mask the future with
# $-\infty$ and take the softmax over the keys.
# ```

# %% tags=["hide-cell"]
def head_weights(layer, x, head):
    rows_h = slice(head * layer.head_dim, (head + 1) * layer.head_dim)

    def project(linear):  # (B, T, d_h)
        out = x @ linear.weight[rows_h].T
        return out if linear.bias is None else out + linear.bias[rows_h]

    # (B, T, T)
    scores = project(layer.W_query) @ project(layer.W_key).transpose(
        1, 2
    )
    T = x.shape[1]
    hidden = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    scores = (scores / math.sqrt(layer.head_dim)).masked_fill(
        hidden, float("-inf")
    )
    return torch.softmax(scores, dim=-1)


with torch.no_grad():
    weights_h = head_weights(ours_layer, x, 2)
    recorded = []
    ours_layer(x, attn_weights=recorded)
    all_heads = recorded[0]  # (B, h, T, T)
same = torch.allclose(weights_h, all_heads[:, 2], atol=1e-6)
print("head 2 by hand == all_heads[:, 2]:", same)
assert torch.allclose(weights_h, all_heads[:, 2], atol=1e-6)
verdict = check("3.3", head_weights)
assert verdict.passed
verdict

# %% [markdown]
# **Exercise 3.4.** Write the causality test of Section 3.10 as a function
# `my_moved_outputs(layer, x, position)`: replace the token at `position` of `x` (shape
# `(1, T, C)`) by another vector, run the layer on both inputs, and return the sorted list of the
# positions whose output changed. Use it on the split layer of Section 3.8 with its causal mask
# and with the mask removed (a mask of all `False`), changing the last token.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_moved_outputs(layer, x, position):
    raise NotImplementedError


# %%
check("3.4", my_moved_outputs)

# %% [markdown]
# ```{admonition} Solution 3.4
# :class: dropdown
# Without the mask every token attends to the last one, so every output changes. With the mask
# only the last position can see the last token, so only its output changes, and the others stay
# identical to the last bit. Change a copy of `x`, not `x` itself, or both runs see the same
# input.
# ```

# %% tags=["hide-cell"]
def moved_outputs(layer, x, position):
    changed = x.clone()
    changed[0, position] = x[0, position] + 1.0
    with torch.no_grad():
        before, after = layer(x)[0], layer(changed)[0]  # (T, C) each
    return [
        i
        for i in range(x.shape[1])
        if not torch.equal(before[i], after[i])
    ]


torch.manual_seed(0)
masked_layer = MultiHeadAttention(
    d_in=12, d_out=12, context_length=8, num_heads=3
)
unmasked_layer = MultiHeadAttention(
    d_in=12, d_out=12, context_length=8, num_heads=3
)
unmasked_layer.load_state_dict(masked_layer.state_dict())
# nothing hidden
unmasked_layer.mask = torch.zeros(8, 8, dtype=torch.bool)
seq = torch.randn(1, 8, 12)
for name, lyr in [
    ("no mask", unmasked_layer),
    ("causal mask", masked_layer),
]:
    print(
        f"{name:11s}: outputs that changed: "
        f"{moved_outputs(lyr, seq, 7)}"
    )
assert moved_outputs(unmasked_layer, seq, 7) == list(range(8))
assert moved_outputs(masked_layer, seq, 7) == [7]
verdict = check("3.4", moved_outputs)
assert verdict.passed
verdict

# %% [markdown]
# **Exercise 3.5.** Dropout keeps the *expected* attention weights, so the expected row sum stays 1.
# Write `my_predicted_std(weights, p)`, the `(T,)` standard deviation of each row sum of
# `weights` after dropout with probability `p`, predicted from the weights alone. Then, with
# $p = 0.1$, measure the mean and the standard deviation of the row sums of `causal_weights` over
# 10,000 dropout draws, compare, and explain why the last row varies least.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_predicted_std(weights, p):
    raise NotImplementedError


# %%
check("3.5", my_predicted_std)

# %% [markdown]
# ```{admonition} Solution 3.5
# :class: dropdown
# Each weight $w$ becomes $w/(1-p)$ with probability $1-p$ and 0 otherwise, so its mean is $w$ and
# its variance is $w^2\,p/(1-p)$; the row sum has mean 1 and variance $\frac{p}{1-p}\sum_j w_j^2$.
# The first row puts all its weight on one token ($\sum_j w_j^2 = 1$), the last row spreads it over
# six ($\sum_j w_j^2 \approx 1/6$), so the last row's sum varies least.
# ```

# %% tags=["hide-cell"]
def predicted_std(weights, p):
    return (p / (1 - p) * weights.square().sum(dim=-1)).sqrt()  # (T,)


p = 0.1
torch.manual_seed(123)
# (10_000, T)
sums = torch.stack(
    [
        F.dropout(causal_weights, p=p, training=True).sum(dim=-1)
        for _ in range(10_000)
    ]
)
for i, word in enumerate(words):
    print(
        f"{word:8s} mean {sums[:, i].mean():.3f}  std "
        f"{sums[:, i].std():.3f}  "
        f"(predicted {predicted_std(causal_weights, p)[i]:.3f})"
    )
assert torch.allclose(sums.mean(dim=0), torch.ones(T), atol=0.01)
assert torch.allclose(
    sums.std(dim=0), predicted_std(causal_weights, p), rtol=0.05
)
assert sums.std(dim=0).argmin() == T - 1
verdict = check("3.5", predicted_std)
assert verdict.passed
verdict
