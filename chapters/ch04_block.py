# %% [markdown]
# # Chapter 4: The Transformer Block's Parts
#
# **Goal: build, one part at a time, everything a GPT-2 transformer block adds around attention, check each part against PyTorch, and measure why each is there.**
#
# What you will build:
#
# - layer normalization from its definition, step by step on a small example, equal to `nn.LayerNorm`;
# - GELU, exact and in the tanh form GPT-2 uses, against ReLU, equal to `torch.nn.functional.gelu`;
# - the feed-forward network that expands each token to `4 * emb_dim` features and back, and its parameter count;
# - shortcut (residual) connections, with a measurement of what they do to the gradients of a deep network;
# - GPT-2's pre-LayerNorm transformer block, compared in code and in a small training run with the post-LayerNorm block of the original Transformer;
# - `helpers.layers`, the block the next chapter stacks twelve times.

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
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib_inline.backend_inline import set_matplotlib_formats
from torch import nn

import helpers.layers
from helpers.attention import MultiHeadAttention
from helpers.check import check
from helpers.data import fetch_the_verdict
from helpers.viz import plot_curves, plot_per_layer

DATA_DIR = (
    Path("../data") if Path("../data/README.md").exists() else Path("data")
)
torch.set_printoptions(precision=4, sci_mode=False)

# figures with twice the pixels: sharp on any screen
set_matplotlib_formats("retina")

# %% [markdown]
# Chapter 3 built causal multi-head attention, the part of a transformer that lets tokens look at
# each other. A GPT-2 *transformer block* wraps it with four more parts: two layer normalizations,
# a feed-forward network with a GELU activation, and two shortcut connections. For an input
# `x  # (B, T, C)` the block computes
#
# $$
# x \leftarrow x + \mathrm{Dropout}\big(\mathrm{MHA}(\mathrm{LN}_1(x))\big), \qquad
# x \leftarrow x + \mathrm{Dropout}\big(\mathrm{FFN}(\mathrm{LN}_2(x))\big),
# $$
#
# and its output has the shape of its input, so blocks can be stacked: GPT-2 small stacks 12 of
# them {cite}`radford2019gpt2`. This chapter builds the parts in that order, following the running
# examples of *LLMs from Scratch* {cite}`raschka2024llm`, re-computing every number those examples
# print.

# %% [markdown]
# ## 4.1 Layer normalization, step by step
#
# Why normalize? Each sub-layer of the block works best on inputs of a steady scale, while the sum
# that flows through the blocks keeps growing (Section 4.6 measures it); normalizing each
# sub-layer's input keeps it on a fixed scale. Layer normalization (Ba, Kiros and Hinton, 2016)
# rescales each token's vector to mean 0 and
# variance 1 over its $C$ features, then applies a learned scale $\gamma$ and shift $\beta$:
#
# $$
# \mu = \frac{1}{C}\sum_{i=1}^{C} x_i, \qquad
# \sigma^2 = \frac{1}{C}\sum_{i=1}^{C} (x_i - \mu)^2, \qquad
# \mathrm{LN}(x)_i = \gamma_i \, \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta_i .
# $$
#
# *LLMs from Scratch*'s example is a batch of two token vectors with $C = 5$ features each:

# %%
torch.manual_seed(123)
batch_example = torch.randn(2, 5)  # (2, C): two token vectors, C = 5
print(batch_example)

# %% [markdown]
# **Step 1, the mean** of each row, over the last axis. `keepdim=True` keeps a column of shape
# `(2, 1)`, which broadcasts against the `(2, 5)` input in the next steps.

# %%
mean = batch_example.mean(dim=-1, keepdim=True)  # (2, 1)
print(mean)

# %% [markdown]
# **Step 2, the variance.** Layer normalization divides by $C$ (the *biased* variance,
# `unbiased=False`), as GPT-2 and `nn.LayerNorm` do; `torch.var`'s default divides by $C - 1$.
# With only five features the two differ by a factor $5/4$:

# %%
# (2, 1), divides by C
var = batch_example.var(dim=-1, keepdim=True, unbiased=False)
var_unbiased = batch_example.var(dim=-1, keepdim=True)  # divides by C - 1
print("biased:  ", [f"{v:.4f}" for v in var.flatten().tolist()])
print("unbiased:", [f"{v:.4f}" for v in var_unbiased.flatten().tolist()])
assert torch.allclose(var_unbiased, var * 5 / 4)

# %% [markdown]
# **Step 3, normalize**: subtract the mean and divide by the standard deviation, with a small
# $\epsilon = 10^{-5}$ under the square root.

# %%
eps = 1e-5
normalized = (batch_example - mean) / torch.sqrt(var + eps)  # (2, C)
print(normalized)
print(
    "mean of each row:    ",
    [f"{m:.4f}" for m in normalized.mean(dim=-1).abs().tolist()],
)
print(
    "variance of each row:",
    [f"{v:.5f}" for v in normalized.var(dim=-1, unbiased=False).tolist()],
)
assert normalized.mean(dim=-1).abs().max() < 1e-6
assert torch.allclose(
    normalized.var(dim=-1, unbiased=False), (var / (var + eps)).flatten()
)

# %% [markdown]
# The cell above computes, for that batch, the mean (-0.3596 and -0.2606), variance (0.2015 and
# 0.2673) and normalized rows. (*LLMs from Scratch* first passes the batch through a small linear
# layer and ReLU, so the intermediate numbers it prints differ; the final variances agree.) Each row now has mean 0; its variance is $\sigma^2 / (\sigma^2 + \epsilon)$,
# a hair below 1 (0.99995 and 0.99996 in the cell above), because of $\epsilon$. Printed with four
# digits, as *LLMs from Scratch* does, they show as 1.0000, which is the same number rounded to four digits.
#
# **Why $\epsilon$?** A token whose features are all equal has variance 0, and normalizing it
# divides 0 by 0:

# %%
flat = torch.full((1, 5), 2.0)  # all five features equal
flat_centered = flat - flat.mean(dim=-1, keepdim=True)  # all zeros
flat_var = flat.var(dim=-1, keepdim=True, unbiased=False)  # 0
print("without eps:", flat_centered / torch.sqrt(flat_var))
print("with eps:   ", flat_centered / torch.sqrt(flat_var + eps))
assert torch.isnan(flat_centered / torch.sqrt(flat_var)).all()
assert torch.equal(
    flat_centered / torch.sqrt(flat_var + eps), torch.zeros(1, 5)
)

# %% [markdown]
# Without $\epsilon$ the result is `nan` (not a number), and a single `nan` spreads through every
# later computation and into the loss. With $\epsilon$ the flat vector maps to zeros, which the
# shift $\beta$ then moves to $\beta$.
#
# **Scale and shift.** Forcing every token to mean 0 and variance 1 may be more than the next
# layer wants, so layer normalization ends with a learned per-feature scale $\gamma$ (`weight`,
# starting at ones) and shift $\beta$ (`bias`, starting at zeros). At the start they change
# nothing; training moves them. Here a scale of 2 and a shift of 0.5 give every token mean 0.5 and
# standard deviation 2 instead:

# %%
gamma = torch.full((5,), 2.0)
beta = torch.full((5,), 0.5)
scaled = gamma * normalized + beta  # (2, C)
print(
    "mean of each row:", [f"{m:.4f}" for m in scaled.mean(dim=-1).tolist()]
)
print(
    "std of each row: ",
    [f"{s:.4f}" for s in scaled.std(dim=-1, unbiased=False).tolist()],
)
assert torch.allclose(scaled.mean(dim=-1), torch.tensor(0.5), atol=1e-6)
assert torch.allclose(
    scaled.std(dim=-1, unbiased=False), torch.tensor(2.0), atol=1e-4
)

# %% [markdown]
# The three steps and the scale and shift make one module. Its parameters are named `weight` and
# `bias`, as in `nn.LayerNorm` and in GPT-2's checkpoint (`ln_1.weight`, `ln_1.bias`, ...);
# other texts call them `scale` and `shift`, or $\gamma$ and $\beta$.


# %%
class LayerNorm(nn.Module):
    def __init__(self, emb_dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(emb_dim))  # gamma, the scale
        self.bias = nn.Parameter(torch.zeros(emb_dim))  # beta, the shift

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
        var = x.var(dim=-1, keepdim=True, unbiased=False)  # (..., 1)
        x_hat = (x - mean) / torch.sqrt(var + self.eps)  # (..., C)
        return x_hat * self.weight + self.bias


# %% [markdown]
# Checked against PyTorch's `nn.LayerNorm` with the same $\epsilon$, first with the starting
# parameters and then with random ones copied into both:

# %%
ln = LayerNorm(5)
torch_ln = nn.LayerNorm(5, eps=1e-5)
assert torch.allclose(ln(batch_example), normalized)
assert torch.allclose(ln(batch_example), torch_ln(batch_example), atol=1e-6)

torch.manual_seed(0)
with torch.no_grad():
    ln.weight.copy_(torch.randn(5))
    ln.bias.copy_(torch.randn(5))
torch_ln.load_state_dict(ln.state_dict())  # the same names: weight and bias
x_check = torch.randn(4, 7, 5)  # (B, T, C)
assert torch.allclose(ln(x_check), torch_ln(x_check), atol=1e-6)
print(
    "our LayerNorm equals nn.LayerNorm to 1e-6 on a (4, 7, 5) input with "
    "random weight and bias"
)

# %% [markdown]
# **Per token, not per batch.** Batch normalization, common in image models, computes its mean
# and variance for each *feature* across the examples of a batch. Layer normalization computes
# them for each *token* across its own features, so a token's output never depends on the other
# tokens or sequences in the batch. The cell below checks whether row 0's output changes with the
# rest of the batch: for LayerNorm, row 0 alone against row 0 inside the batch of two; for
# BatchNorm (which cannot take a batch of one in training mode), row 0 next to row 1 against row 0
# next to twice row 1:

# %%
ln = LayerNorm(5)
bn = nn.BatchNorm1d(5)  # training mode: statistics from the batch
alone, in_batch = batch_example[:1], batch_example
ln_same = torch.allclose(ln(alone)[0], ln(in_batch)[0])
bn_same = torch.allclose(
    bn(in_batch)[0], bn(torch.cat([alone, 2 * in_batch[1:]]))[0]
)
print("LayerNorm, row 0 alone and in the batch equal:", ln_same)
print(
    "BatchNorm, row 0 in batches [row0, row1] and [row0, 2 * row1] equal:",
    bn_same,
)
assert ln_same and not bn_same
try:
    bn(alone)
except ValueError as err:
    print("BatchNorm on one example:", err)
assert torch.allclose(ln(alone)[0], ln(in_batch)[0])

# %% [markdown]
# Batch normalization changes row 0's output when the other row changes, and in training mode it
# cannot normalize a batch of one example at all (the error in the cell above). In evaluation mode
# it would use running averages kept during training, so generating one sequence at a time is
# possible, but it then computes something different in training and in evaluation. Worse for a
# language model: statistics pooled over a batch of sequences and their positions mix later tokens
# (and padding) into every token's features, and a token must not see the tokens after it (Chapter
# 3's causal mask). Layer normalization has none of these problems: each token is normalized by its
# own features alone, the same way in training and in evaluation.

# %% [markdown]
# ## 4.2 GELU, the activation
#
# Between its two linear layers, the feed-forward network needs a nonlinearity. The original
# Transformer used ReLU, $\max(0, x)$. GPT (and GPT-2) use GELU, the Gaussian error linear unit
# (Hendrycks and Gimpel, 2016):
#
# $$
# \mathrm{GELU}(x) = x\,\Phi(x) = \frac{x}{2}\left(1 + \mathrm{erf}\frac{x}{\sqrt 2}\right),
# $$
#
# where $\Phi$ is the cumulative distribution function of the standard normal distribution: the
# input is kept with the probability that a standard normal variable falls below it. OpenAI's
# GPT-2 code uses Hendrycks and Gimpel's faster approximation with $\tanh$:
#
# $$
# \mathrm{GELU}(x) \approx \frac{x}{2}\left(1 + \tanh\!\left[\sqrt{2/\pi}\,\big(x + 0.044715\,x^3\big)\right]\right).
# $$


# %%
def gelu_exact(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return (
        0.5
        * x
        * (
            1.0
            + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3))
        )
    )


class GELU(nn.Module):
    def forward(self, x):
        return gelu_tanh(x)  # the form GPT-2 uses


x_grid = torch.linspace(-4, 4, 801)  # 0.01 apart
assert torch.allclose(gelu_exact(x_grid), F.gelu(x_grid), atol=1e-6)
assert torch.allclose(
    gelu_tanh(x_grid), F.gelu(x_grid, approximate="tanh"), atol=1e-6
)
print(
    "gelu_exact equals F.gelu(x); gelu_tanh equals F.gelu(x, "
    "approximate='tanh') (to 1e-6)"
)

# %% [markdown]
# How good is the approximation? The difference is measured in float64 on a fine grid, 160,001
# points from -8 to 8. Both forms satisfy $\mathrm{GELU}(x) - \mathrm{GELU}(-x) = x$, so their
# difference is symmetric around 0.

# %%
x64 = torch.linspace(-8, 8, 160_001, dtype=torch.float64)  # 1e-4 apart
diff = (gelu_exact(x64) - gelu_tanh(x64)).abs()
worst = diff.argmax()
print(
    f"largest |exact - tanh| = {diff.max().item():.2e} at x = "
    f"{x64[worst].item():.2f} "
    f"(and at x = {-x64[worst].item():.2f})"
)
print(
    "relative to GELU there: "
    f"{(diff[worst] / gelu_exact(x64[worst]).abs()).item():.1%}"
)
assert 4e-4 < diff.max() < 5e-4
assert torch.allclose(diff, diff.flip(0))  # symmetric

# %% [markdown]
# The largest gap, in the cell above, is below $5 \times 10^{-4}$, near $x = \pm 2.7$. At
# $x = -2.7$, where GELU itself is tiny, that is 5.0% of its value (the cell's last line); at
# $x = +2.7$, where GELU is nearly $x$ itself, it is a negligible fraction. In absolute terms it is
# far below anything training notices, which is why either form works. What matters is to use the
# one the weights were trained with, so `helpers.layers.GELU` defaults to `"tanh"` and Chapter 9
# loads OpenAI's weights into it.
#
# The curves, and their derivatives computed by autograd:

# %%
x_plot = torch.linspace(-4, 4, 801, requires_grad=True)
curves = {
    "ReLU": F.relu(x_plot),
    "GELU (exact)": gelu_exact(x_plot),
    "GELU (tanh)": gelu_tanh(x_plot),
}
slopes = {
    name: torch.autograd.grad(y.sum(), x_plot)[0]
    for name, y in curves.items()
}

fig, (ax1, ax2) = plt.subplots(
    1, 2, figsize=(7.5, 3.4), layout="constrained"
)
plot_curves(x_plot, curves, ax=ax1, title="activation", ylabel="f(x)")
plot_curves(x_plot, slopes, ax=ax2, title="derivative", ylabel="f'(x)")
plt.show()

# %%
at = torch.tensor([-3.0, -1.0, 0.0, 1.0], requires_grad=True)
for name, fn in [
    ("ReLU", F.relu),
    ("GELU (exact)", gelu_exact),
    ("GELU (tanh)", gelu_tanh),
]:
    y = fn(at)
    dy = torch.autograd.grad(y.sum(), at)[0]
    print(
        f"{name:13s} f  at -3, -1, 0, 1: {[round(v, 4) for v in y.tolist()]}"
    )
    print(
        f"{'':13s} f' at -3, -1, 0, 1: {[round(v, 4) for v in dy.tolist()]}"
    )
slope = slopes["GELU (exact)"]
low, high = slope.argmin(), slope.argmax()
print(f"GELU's derivative: lowest {slope[low].item():.3f}",
      f"at x = {x_plot[low].item():.2f},",
      f"highest {slope[high].item():.3f} at x = {x_plot[high].item():.2f}")
lowest = curves["GELU (exact)"].argmin()
print(
    "GELU's minimum on the grid: "
    f"{curves['GELU (exact)'][lowest].item():.4f} at x = "
    f"{x_plot[lowest].item():.2f}"
)

# %% [markdown]
# The plots and the numbers in the cell above show the three differences that matter:
#
# - ReLU's derivative is exactly 0 for every negative input, so a unit whose input stays negative
#   gets no gradient at all and stops learning (a "dead" ReLU). GELU's derivative at -1 is -0.0833,
#   and it only tends to 0 far to the left.
# - GELU is smooth: its derivative changes continuously instead of jumping from 0 to 1 at 0 (ReLU's
#   derivative at exactly 0 is 0 by PyTorch's convention). On its way it dips slightly below 0 and
#   overshoots slightly above 1 (the lowest and highest values in the cell above), tending to 0 far
#   to the left and to 1 far to the right.
# - GELU is not monotonic: it dips below zero, to about -0.17 near $x = -0.75$, so small negative
#   inputs produce small negative outputs.
#
# On the plots the exact and tanh GELUs lie on top of each other.

# %% [markdown]
# ## 4.3 The feed-forward network
#
# Attention mixes information *between* tokens. The feed-forward network then works on each
# token on its own, with the same weights at every position: a linear layer expands the $C$
# features to $4C$, GELU bends them, and a second linear layer contracts them back to $C$. The
# layer names `fc` and `proj` follow GPT-2's `mlp.c_fc` and `mlp.c_proj`.


# %%
class FeedForward(nn.Module):
    def __init__(self, emb_dim):
        super().__init__()
        self.fc = nn.Linear(emb_dim, 4 * emb_dim)  # expansion
        self.act = GELU()
        self.proj = nn.Linear(4 * emb_dim, emb_dim)  # contraction

    def forward(self, x):
        return self.proj(self.act(self.fc(x)))


# %%
emb_dim = 768  # C for GPT-2 small
torch.manual_seed(123)
ffn = FeedForward(emb_dim)
x = torch.rand(2, 3, emb_dim)  # (B, T, C)
hidden = ffn.act(ffn.fc(x))  # (B, T, 4C)
out = ffn.proj(hidden)  # (B, T, C)
print("input ", tuple(x.shape))
print("hidden", tuple(hidden.shape))
print("output", tuple(out.shape))
assert out.shape == x.shape and torch.equal(out, ffn(x))

# %% [markdown]
# Because the network sees one token at a time, its output at a position depends only on that
# position's input: permuting the tokens permutes the outputs.

# %%
perm = torch.tensor([2, 0, 1])
assert torch.allclose(ffn(x[:, perm]), ffn(x)[:, perm], atol=1e-6)
print(
    "FFN(x[:, perm]) equals FFN(x)[:, perm]: each token is processed on its "
    "own"
)

# %% [markdown]
# Its parameters: two weight matrices of $C \times 4C$ and two bias vectors of $4C$ and $C$, so
# $8C^2 + 5C$. Attention (Chapter 3) has four $C \times C$ matrices and, in GPT-2, biases on all
# four, $4C^2 + 4C$:

# %%
n_ffn = sum(p.numel() for p in ffn.parameters())
attention = MultiHeadAttention(
    emb_dim, emb_dim, context_length=1024, num_heads=12, qkv_bias=True
)
n_att = sum(p.numel() for p in attention.parameters())
print(
    f"feed-forward: {n_ffn:,} parameters (8C² + 5C = "
    f"{8 * emb_dim**2 + 5 * emb_dim:,})"
)
print(
    f"attention:    {n_att:,} parameters (4C² + 4C = "
    f"{4 * emb_dim**2 + 4 * emb_dim:,})"
)
print(
    f"the feed-forward network holds {n_ffn / (n_ffn + n_att):.1%} of the "
    "two"
)
assert (
    n_ffn == 8 * emb_dim**2 + 5 * emb_dim
    and n_att == 4 * emb_dim**2 + 4 * emb_dim
)

# %% [markdown]
# Two thirds of a block's weights sit in the feed-forward network, not in attention (the cell
# above: 4,722,432 of the 7,084,800 in the two together, for GPT-2 small).

# %% [markdown]
# ## 4.4 Shortcut connections
#
# A shortcut (residual, skip) connection adds a layer's input to its output: $y = x + F(x)$
# (He et al., 2016). Its derivative is $\partial y / \partial x = I + \partial F / \partial x$:
# however small $\partial F / \partial x$ becomes, the identity carries the gradient back
# unchanged. Without shortcuts, the gradient that reaches the first layer of a deep network is a
# product of one Jacobian per layer, and a product of many small factors vanishes.
#
# *LLMs from Scratch*'s experiment measures this with five small layers (widths 3, 3, 3, 3, 3, 1), each a
# linear layer followed by GELU, with a shortcut around every layer whose input and output shapes
# agree, so not around the last one (3 to 1). One input, target 0, mean squared error; then the
# mean absolute gradient of each layer's weights.


# %%
class ExampleDeepNeuralNetwork(nn.Module):
    def __init__(self, layer_sizes, use_shortcut):
        super().__init__()
        self.use_shortcut = use_shortcut
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(n_in, n_out), GELU())
            for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]))

    def forward(self, x):
        for layer in self.layers:
            layer_output = layer(x)
            if self.use_shortcut and x.shape == layer_output.shape:
                x = x + layer_output  # the shortcut
            else:
                x = layer_output
        return x


def gradient_means(model, x):
    """Mean absolute gradient of each layer's weight matrix, first layer
    first."""
    loss = nn.MSELoss()(model(x), torch.tensor([[0.0]]))
    loss.backward()
    return [
        layer[0].weight.grad.abs().mean().item() for layer in model.layers
    ]


layer_sizes = [3, 3, 3, 3, 3, 1]
sample_input = torch.tensor([[1.0, 0.0, -1.0]])
grad_means = {}
for use_shortcut in (False, True):
    torch.manual_seed(123)
    model = ExampleDeepNeuralNetwork(layer_sizes, use_shortcut)
    label = "with shortcuts" if use_shortcut else "without shortcuts"
    grad_means[label] = gradient_means(model, sample_input)
    print(f"--- {label} ---")
    for i, g in enumerate(grad_means[label]):
        print(f"layers.{i}.0.weight has gradient mean of {g:.4e}")

# %% [markdown]
# The cell above reproduces the ten gradient means *LLMs from Scratch* prints (the dictionary
# holds its printed digits) to the four significant digits shown; the check below compares them
# to a relative $10^{-5}$.

# %%
published = {
    "without shortcuts": [
        0.00020173587836325169,
        0.00012011159560643137,
        0.0007152039906941354,
        0.0013988736318424344,
        0.005049645435065031,
    ],
    "with shortcuts": [
        0.22169792652130127,
        0.20694106817245483,
        0.32896995544433594,
        0.2665732204914093,
        1.3258540630340576,
    ],
}
for label, values in published.items():
    assert all(
        math.isclose(ours, theirs, rel_tol=1e-5)
        for ours, theirs in zip(grad_means[label], values)
    )
without, with_ = (
    grad_means["without shortcuts"],
    grad_means["with shortcuts"],
)
ratios = [w / wo for w, wo in zip(with_, without)]
print("with / without, per layer:", [f"{r:,.0f}" for r in ratios])
assert 150 < min(ratios) and max(ratios) < 2000
print(
    f"first / last layer:   {without[0] / without[-1]:.3f} without, "
    f"{with_[0] / with_[-1]:.3f} with"
)

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
plot_per_layer(grad_means, ax=ax, ylabel="mean |gradient| of the weights",
               title="Gradients per layer, 5-layer network")
plt.show()

# %% [markdown]
# Without shortcuts, the first layer's gradient is 0.040 of the last layer's (the cell above);
# with them, every layer's gradient is between about 190 and 1,700 times larger than without. (The
# fall without shortcuts is not monotonic: layer 1's gradient is the smallest, but the trend is the
# point.) Exercise 4.4 makes the network deeper.
#
# The shape check in `forward` matters: without it, the last layer's `(1, 1)` output would broadcast
# against the `(1, 3)` input and the network would silently return three numbers instead of one. In
# the transformer block every sub-layer keeps the width $C$, so the shortcut always applies.
#
# ## 4.5 The transformer block
#
# GPT-2's block normalizes the input of each sub-layer, runs attention or the feed-forward
# network on it, applies dropout, and adds the result back to the unnormalized input. The
# unnormalized sum that runs from the embeddings through every block is the *residual stream*;
# each sub-layer reads a normalized copy of it and writes an update into it.


# %%
class TransformerBlock(nn.Module):
    def __init__(
        self, emb_dim, n_heads, context_length, drop_rate=0.0, qkv_bias=False
    ):
        super().__init__()
        self.norm1 = LayerNorm(emb_dim)
        self.att = MultiHeadAttention(
            emb_dim,
            emb_dim,
            context_length,
            n_heads,
            dropout=drop_rate,
            qkv_bias=qkv_bias,
        )
        self.norm2 = LayerNorm(emb_dim)
        self.ff = FeedForward(emb_dim)
        self.drop_shortcut = nn.Dropout(drop_rate)

    def forward(self, x):  # (B, T, C)
        # attention, with a shortcut
        x = x + self.drop_shortcut(self.att(self.norm1(x)))
        # feed-forward, with a shortcut
        x = x + self.drop_shortcut(self.ff(self.norm2(x)))
        return x  # (B, T, C)


# %%
torch.manual_seed(123)
block = TransformerBlock(
    emb_dim=768,
    n_heads=12,
    context_length=1024,
    drop_rate=0.1,
    qkv_bias=True,
)
x = torch.rand(2, 4, 768)  # (B, T, C)
out = block(x)
n_block = sum(p.numel() for p in block.parameters())
print("input shape: ", tuple(x.shape))
print("output shape:", tuple(out.shape))
print(f"parameters: {n_block:,} = 12C² + 13C = {12 * 768**2 + 13 * 768:,}")
assert out.shape == x.shape and n_block == 12 * 768**2 + 13 * 768

# %% [markdown]
# The block keeps the shape `(B, T, C)`, so the output of one block is a valid input for the
# next, and the model in Chapter 5 stacks as many as it likes. Dropout (`drop_rate`) appears in
# three places: on the attention weights inside attention, and on each sub-layer's output before
# it is added to the stream. It is only active in training mode; `block.eval()` turns it off, and
# then the block is an ordinary deterministic function:

# %%
block.eval()
assert torch.equal(block(x), block(x))
block.train()
train_same = torch.equal(block(x), block(x))
print(
    "eval mode: two passes equal; training mode: two passes equal?",
    train_same,
)
assert not train_same  # dropout draws new masks on every pass

# %% [markdown]
# Like attention, the block is causal: the output at position $t$ depends only on the inputs at
# positions up to $t$. Changing the last token leaves every earlier output unchanged.

# %%
block.eval()
x_changed = x.clone()
x_changed[:, -1] = torch.rand(2, 768)
same_before = torch.allclose(
    block(x)[:, :-1], block(x_changed)[:, :-1], atol=1e-6
)
last_changed = not torch.allclose(block(x)[:, -1], block(x_changed)[:, -1])
print(
    "earlier positions unchanged:",
    same_before,
    "| last position changed:",
    last_changed,
)
assert same_before and last_changed

# %% [markdown]
# ## 4.6 Pre-LayerNorm (GPT-2) against post-LayerNorm (the original Transformer)
#
# The original Transformer {cite}`vaswani2017attention` and GPT-1 put the layer normalization
# *after* the shortcut addition: $x \leftarrow \mathrm{LN}(x + F(x))$. GPT-2 moved it to the input
# of each sub-layer, $x \leftarrow x + F(\mathrm{LN}(x))$, and added one more layer normalization
# after the last block {cite}`radford2019gpt2`. {numref}`fig-pre-post-ln` draws both blocks. In code
# the difference is where `norm1` and `norm2` are called:
#
# ```{figure} ../book/figures/block_pre_post_ln.svg
# :name: fig-pre-post-ln
# :alt: Two block diagrams side by side. Pre-LN, GPT-2: the residual stream runs straight down; each branch goes through LayerNorm, attention or feed-forward, and dropout, and is added back. Post-LN, original Transformer: the branches have no LayerNorm, and a LayerNorm follows each addition on the stream itself.
# :width: 100%
#
# The transformer block with its residual stream: pre-LN (GPT-2, left) normalizes the input of each branch and leaves the stream a plain sum; post-LN (right) normalizes the stream after each addition.
# ```


# %%
class PostLNBlock(TransformerBlock):
    """The original Transformer's arrangement: normalize after adding the
    shortcut."""

    def forward(self, x):
        x = self.norm1(x + self.drop_shortcut(self.att(x)))
        x = self.norm2(x + self.drop_shortcut(self.ff(x)))
        return x


# %% [markdown]
# The two have exactly the same parameters; only the order of operations differs. That order
# decides what the residual stream is. In the pre-LN block nothing ever touches the stream except
# additions: the output of block $L$ is the input plus the sum of all $2L$ sub-layer updates, and
# the identity path from the last layer back to the embeddings is intact. In the post-LN block the
# stream passes through $2L$ layer normalizations, each rescaling it. The cell below stacks 12
# blocks of each kind ($C = 64$, 4 heads) and follows the standard deviation of the stream:

# %%
def stream_std(blocks, x):
    stds = [x.std().item()]
    for b in blocks:
        x = b(x)
        stds.append(x.std().item())
    return stds


torch.manual_seed(123)
pre_blocks = nn.Sequential(
    *[TransformerBlock(64, 4, context_length=32) for _ in range(12)]
).eval()
post_blocks = nn.Sequential(
    *[PostLNBlock(64, 4, context_length=32) for _ in range(12)]
).eval()
post_blocks.load_state_dict(pre_blocks.state_dict())  # the very same weights
x = torch.randn(8, 32, 64)  # (B, T, C)
with torch.no_grad():
    pre_std, post_std = stream_std(pre_blocks, x), stream_std(post_blocks, x)
print("stream std at the input and after blocks 3, 6, 9, 12")
print("pre-LN: ", [f"{s:.2f}" for s in pre_std[::3]])
print("post-LN:", [f"{s:.2f}" for s in post_std[::3]])
assert pre_std[-1] > 1.3 * pre_std[0] and all(
    abs(s - 1) < 0.01 for s in post_std[1:]
)

# %% [markdown]
# The cell above shows the stream of the pre-LN stack growing with depth (which is why GPT-2 adds
# a final layer normalization, and why Chapter 5 scales the initial weights of the sub-layers
# that write into the stream), while every post-LN block hands on a freshly normalized stream.
#
# Does the arrangement matter in training? Xiong et al. (2020, "On Layer Normalization in the
# Transformer Architecture") show that post-LN gradients near the output are large at
# initialization, so post-LN transformers need a learning-rate warm-up (a learning rate that
# starts near zero and rises over the first steps; Chapter 7 builds one), while pre-LN ones train
# without one. A small measured experiment: two byte-level language models on the-verdict
# (Chapter 1's short story), each 12 blocks of width 32 with 4 heads, identical except for the
# block type (the post-LN model, like the original Transformer, has no final layer
# normalization). Each trains for 100 steps of Adam, with no warm-up, at a small and at a large
# learning rate, on the same batches.

# %%
# token ids 0..255
text_bytes = torch.tensor(list(fetch_the_verdict(DATA_DIR).read_bytes()))
print(f"{len(text_bytes):,} bytes of training text")


class ByteLM(nn.Module):
    def __init__(
        self,
        block_class,
        n_layers=12,
        emb_dim=32,
        n_heads=4,
        context_length=32,
    ):
        super().__init__()
        self.tok_emb = nn.Embedding(256, emb_dim)
        self.pos_emb = nn.Embedding(context_length, emb_dim)
        self.blocks = nn.Sequential(
            *[
                block_class(emb_dim, n_heads, context_length)
                for _ in range(n_layers)
            ]
        )
        self.final_norm = (
            LayerNorm(emb_dim)
            if block_class is TransformerBlock
            else nn.Identity()
        )
        self.out_head = nn.Linear(emb_dim, 256)

    def forward(self, idx):  # (B, T) -> (B, T, 256)
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(idx.shape[1]))
        return self.out_head(self.final_norm(self.blocks(x)))


def train_byte_lm(
    block_class, lr, steps=100, batch_size=16, context_length=32
):
    threads = torch.get_num_threads()
    # a model this small runs fastest on one CPU thread
    torch.set_num_threads(1)
    try:
        return _train_byte_lm(
            block_class, lr, steps, batch_size, context_length
        )
    finally:
        torch.set_num_threads(threads)


def _train_byte_lm(block_class, lr, steps, batch_size, context_length):
    torch.manual_seed(123)
    model = ByteLM(block_class, context_length=context_length)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    # the same batches for every run
    batches = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(steps):
        starts = torch.randint(
            0,
            len(text_bytes) - context_length - 1,
            (batch_size,),
            generator=batches,
        )
        # (B, T)
        inputs = torch.stack(
            [text_bytes[s : s + context_length] for s in starts]
        )
        # (B, T)
        targets = torch.stack(
            [text_bytes[s + 1 : s + context_length + 1] for s in starts]
        )
        loss = F.cross_entropy(
            model(inputs).flatten(0, 1), targets.flatten()
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


# %%
runs = {
    (name, lr): train_byte_lm(cls, lr)
    for lr in (1e-3, 1e-2)
    for name, cls in (("pre-LN", TransformerBlock), ("post-LN", PostLNBlock))
}
# mean of the last 20 steps
final = {key: sum(losses[-20:]) / 20 for key, losses in runs.items()}
print("learning rate   pre-LN   post-LN   (mean loss of steps 81-100, nats)")
for lr in (1e-3, 1e-2):
    print(
        f"{lr:<13g} {final['pre-LN', lr]:8.2f} {final['post-LN', lr]:9.2f}"
    )
assert abs(final["pre-LN", 1e-3] - final["post-LN", 1e-3]) < 0.1
assert final["post-LN", 1e-2] - final["pre-LN", 1e-2] > 0.3

# %%
steps = torch.arange(1, 101)
fig, ax = plt.subplots(figsize=(6, 3.5))
plot_curves(
    steps,
    {f"{name}, lr {lr:g}": runs[name, lr] for name, lr in runs},
    ax=ax,
    xlabel="step",
    ylabel="training loss (nats)",
    title="12 blocks, no warm-up",
    zero_line=False,
)
plt.show()

# %% [markdown]
# At the small learning rate the two arrangements train equally well (the table above). At the
# large one the pre-LN model trains faster still, while the post-LN model ends higher than it
# did at the small rate. This is one small model and 100 steps, not a benchmark, but it is the
# behaviour Xiong et al. describe: the pre-LN block tolerates larger steps without a warm-up,
# which is a large part of why GPT-2 and nearly every later GPT-style model use it.

# %% [markdown]
# ## 4.7 Consolidate: `helpers.layers`
#
# The chapter's parts are collected in `helpers.layers`: `LayerNorm`, `gelu` and `GELU` (exact or
# tanh), `FeedForward` and `TransformerBlock`, with the same parameter names as the classes above.
# `helpers.layers` computes the same formulas, but through PyTorch's fused kernels
# (`F.layer_norm`, `F.gelu`: one pass over the tensor instead of one per step above), so copying
# the inline modules' weights into the `helpers` versions gives the same outputs to float
# rounding: within 1e-6 here.

# %%
torch.manual_seed(123)
x = torch.randn(2, 6, 64)  # (B, T, C)

ours_ln, their_ln = LayerNorm(64), helpers.layers.LayerNorm(64)
with torch.no_grad():
    ours_ln.weight.normal_()
    ours_ln.bias.normal_()
their_ln.load_state_dict(ours_ln.state_dict())
assert torch.allclose(ours_ln(x), their_ln(x), atol=1e-6)

for mode, ours_gelu in (("none", gelu_exact), ("tanh", gelu_tanh)):
    assert torch.allclose(
        ours_gelu(x), helpers.layers.gelu(x, mode), atol=1e-6
    )
    assert torch.allclose(
        ours_gelu(x), helpers.layers.GELU(mode)(x), atol=1e-6
    )
# both default to tanh
assert torch.allclose(GELU()(x), helpers.layers.GELU()(x), atol=1e-6)

ours_ff, their_ff = FeedForward(64), helpers.layers.FeedForward(64)
their_ff.load_state_dict(ours_ff.state_dict())
assert torch.allclose(ours_ff(x), their_ff(x), atol=1e-6)

ours_block = TransformerBlock(64, 4, context_length=8, qkv_bias=True).eval()
their_block = helpers.layers.TransformerBlock(
    64, 4, context_length=8, qkv_bias=True
).eval()
their_block.load_state_dict(ours_block.state_dict())
assert torch.allclose(ours_block(x), their_block(x), atol=1e-6)
print(
    "LayerNorm, GELU (both modes), FeedForward and TransformerBlock equal "
    "their helpers versions to 1e-6"
)

# %% [markdown]
# The `helpers` block also records the attention weights of its attention layer when given a
# list to put them in (its output stays the same), which Chapter 10 uses to look inside a trained
# model:

# %%
recorded = []
out = their_block(x, attn_weights=recorded)
weights = recorded[0]  # (B, h, T, T)
print(
    "output",
    tuple(out.shape),
    "| attention weights",
    tuple(weights.shape),
    "(B, h, T, T)",
)
assert torch.allclose(out, their_block(x), atol=1e-6)
assert torch.allclose(weights.sum(dim=-1), torch.ones(2, 4, 6))

# %% [markdown]
# ```{admonition} Where these numbers come from
# :class: dropdown
# The LayerNorm batch, the GELU and feed-forward examples and the five-layer shortcut experiment are
# the running examples of *Build a Large Language Model (From Scratch)* {cite}`raschka2024llm`,
# which we met through a popular walk-through of it; the cells above recompute every number those
# examples print. The walk-through's shorter shortcut loop, without the shape check, is the silent
# broadcasting bug described in Section 4.4. {ref}`seeds` lists the write-ups the book grew from.
# ```
#
# ## Summary
#
# - **Layer normalization** subtracts each token's mean and divides by its standard deviation
#   (biased variance; $\epsilon = 10^{-5}$ keeps an all-equal vector from dividing 0 by 0), then
#   applies a learned
#   scale and shift. It works per token, so a token's output does not depend on the batch,
#   unlike batch normalization. It reproduced *LLMs from Scratch*'s final numbers and equals `nn.LayerNorm`.
# - **GELU** is $x\,\Phi(x)$: smooth, slightly negative for small negative inputs, with a nonzero
#   gradient there. GPT-2's tanh approximation differs from the exact form by less than
#   $5 \times 10^{-4}$ anywhere; both equal `torch.nn.functional.gelu`.
# - The **feed-forward network** expands each token to $4C$ features, applies GELU and contracts
#   back, with $8C^2 + 5C$ parameters: two thirds of a block.
# - **Shortcut connections** give the gradient an identity path. In *LLMs from Scratch*'s five-layer network
#   they made every layer's gradient hundreds of times larger (its published numbers, reproduced
#   to a relative 1e-5).
# - The **pre-LayerNorm block** (GPT-2) normalizes the input of each sub-layer and leaves the
#   residual stream a pure sum; the post-LayerNorm block normalizes after each addition. In a
#   small experiment both trained equally at learning rate 1e-3 and the pre-LN block trained
#   clearly better at 1e-2 without warm-up. The block keeps the shape `(B, T, C)`.
#
# Moved into `helpers/`:
#
# - `helpers.layers`: `LayerNorm(emb_dim, eps=1e-5)`, `gelu(x, approximate)` and
#   `GELU(approximate="tanh")`, `FeedForward(emb_dim, hidden_dim=None)`, and
#   `TransformerBlock(emb_dim, n_heads, context_length, drop_rate=0.0, qkv_bias=False)` with
#   `forward(x, attn_weights=None)` (a list records the attention weights).
# - `helpers.viz`: `plot_curves` and `plot_per_layer`, the figures of this chapter.
#
# ## Exercises
#
# Each exercise whose answer is code or a value has a cell for your answer, marked as yours, and
# a cell that checks it: `check("4.1", MyRMSNorm)` says "not attempted yet" until you write
# something, then either what is wrong, on which case, with a hint, or that the answer is right
# and what it was checked on. Exercises 4.2 and 4.4 are a discussion and an experiment: they have
# no check, only the worked answer. The worked solutions are folded away under each exercise. How
# to use the checks in Colab and locally: {doc}`../book/exercises`.

# %% [markdown]
# **Exercise 4.1.** Llama and many later models replace layer normalization with RMSNorm, which
# skips the mean: $\mathrm{RMSNorm}(x)_i = \gamma_i\, x_i / \sqrt{\frac{1}{C}\sum_j x_j^2 + \epsilon}$,
# and has no shift. Implement it as a module `MyRMSNorm(emb_dim, eps=1e-5)` whose scale $\gamma$ is
# a parameter `weight` of ones, check it against `torch.nn.RMSNorm`, and show that it equals our
# layer normalization (with zero shift) on inputs whose rows already have mean 0.

# %%
# Your answer: give `__init__` its parameter and replace
# `raise NotImplementedError`.
class MyRMSNorm(nn.Module):
    def __init__(self, emb_dim, eps=1e-5):
        super().__init__()

    def forward(self, x):
        raise NotImplementedError


# %%
check("4.1", MyRMSNorm)

# %% [markdown]
# ```{admonition} Solution 4.1
# :class: dropdown
# Divide by the root mean square instead of the standard deviation. When a row has mean 0 its
# mean square *is* its biased variance, so the two normalizations coincide there.
# ```

# %% tags=["hide-cell"]
class RMSNorm(nn.Module):
    def __init__(self, emb_dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(emb_dim))

    def forward(self, x):
        return (
            x
            / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
            * self.weight
        )


torch.manual_seed(0)
x = torch.randn(3, 5, 16)
rms = RMSNorm(16)
assert torch.allclose(rms(x), nn.RMSNorm(16, eps=1e-5)(x), atol=1e-6)
centered = x - x.mean(dim=-1, keepdim=True)
assert torch.allclose(rms(centered), LayerNorm(16)(centered), atol=1e-6)
assert not torch.allclose(rms(x), LayerNorm(16)(x), atol=1e-3)
print(
    "RMSNorm equals nn.RMSNorm, and equals LayerNorm on zero-mean rows "
    "only"
)
verdict = check("4.1", RMSNorm)
assert verdict.passed
verdict

# %% [markdown]
# **Exercise 4.2.** Show that layer normalization ignores the overall offset and scale of a token:
# for a number $a > 0$ and any $b$, $\mathrm{LN}(a x + b) \approx \mathrm{LN}(x)$. What happens for
# $a < 0$? Why is it only approximately equal? (A discussion: the answer is an argument, so there
# is no check; the cell under the solution illustrates it.)

# %% [markdown]
# ```{admonition} Solution 4.2
# :class: dropdown
# A discussion, answered here. Adding $b$ moves the mean by $b$ and leaves the deviations alone;
# multiplying by $a$ multiplies
# the deviations and the standard deviation by $|a|$, which cancel. For $a < 0$ the sign of the
# deviations flips, so the output is $-\mathrm{LN}(x)$ (with the starting scale and shift). It is
# approximate because of $\epsilon$: $\sqrt{a^2\sigma^2 + \epsilon} \ne |a| \sqrt{\sigma^2 + \epsilon}$.
# ```

# %% tags=["hide-cell"]
ln = LayerNorm(5)
for a, b in [(3.0, 0.0), (0.5, -7.0), (10.0, 2.0)]:
    assert torch.allclose(
        ln(a * batch_example + b), ln(batch_example), atol=1e-3
    )
assert torch.allclose(
    ln(-2.0 * batch_example + 1.0), -ln(batch_example), atol=1e-3
)
gap = (ln(0.01 * batch_example) - ln(batch_example)).abs().max().item()
print(
    "with a = 0.01, eps is no longer negligible: the outputs differ "
    f"by up to {gap:.3f}"
)
assert gap > 0.01

# %% [markdown]
# **Exercise 4.3.** Write `my_bisect(f, lo, hi)` that returns the root of `f` in `[lo, hi]`, for
# `f(lo) < 0 < f(hi)`, to seven decimals. Use it to find the minimum of the exact GELU by solving
# $\mathrm{GELU}'(x) = \Phi(x) + x\,\varphi(x) = 0$, where $\varphi$ is the standard normal
# density. Where is the minimum of the tanh approximation?

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_bisect(f, lo, hi):
    raise NotImplementedError


# %%
check("4.3", my_bisect)

# %% [markdown]
# ```{admonition} Solution 4.3
# :class: dropdown
# Each step halves the interval and keeps the half whose ends have opposite signs; 60 steps shrink
# any interval below what a float can tell apart. The derivative is negative at $x = -2$ and
# positive at $x = 0$, so bisection on $[-2, 0]$ converges to the root. For the tanh form, use
# autograd for the derivative and bisect the same way.
# ```

# %% tags=["hide-cell"]
def bisect(f, lo, hi, steps=60):
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    return (lo + hi) / 2


def exact_slope(x):
    return 0.5 * (1 + math.erf(x / math.sqrt(2))) + x * math.exp(
        -x * x / 2
    ) / math.sqrt(2 * math.pi)


def tanh_slope(x):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    return torch.autograd.grad(gelu_tanh(t), t)[0].item()


x_min, x_min_tanh = (
    bisect(exact_slope, -2.0, 0.0),
    bisect(tanh_slope, -2.0, 0.0),
)
y_min = gelu_exact(torch.tensor(x_min, dtype=torch.float64)).item()
y_min_tanh = gelu_tanh(
    torch.tensor(x_min_tanh, dtype=torch.float64)
).item()
print(f"exact GELU: minimum {y_min:.6f} at x = {x_min:.6f}")
print(f"tanh GELU:  minimum {y_min_tanh:.6f} at x = {x_min_tanh:.6f}")
assert (
    abs(exact_slope(x_min)) < 1e-9
    and -0.18 < y_min < -0.16
    and abs(x_min - x_min_tanh) < 0.01
)
verdict = check("4.3", bisect)
assert verdict.passed
verdict

# %% [markdown]
# **Exercise 4.4.** Repeat the shortcut experiment of Section 4.4 with 10 and with 20 layers of
# width 3 (then the final layer to width 1). How large is the first layer's mean gradient with and
# without shortcuts? (An experiment: the answer is what you measure and what it shows, so there
# is no check; compare with the worked solution.)

# %% [markdown]
# ```{admonition} Solution 4.4
# :class: dropdown
# An experiment, answered here. Build `ExampleDeepNeuralNetwork([3] * n + [1], ...)` with the same
# seed and input. Without
# shortcuts the first layer's gradient shrinks by orders of magnitude with every few layers
# added; with them it stays of order 1. The cell prints both for 5, 10 and 20 layers.
# ```

# %% tags=["hide-cell"]
first_layer = {}
for n in (5, 10, 20):
    for use_shortcut in (False, True):
        torch.manual_seed(123)
        net = ExampleDeepNeuralNetwork([3] * n + [1], use_shortcut)
        first_layer[n, use_shortcut] = gradient_means(
            net, sample_input
        )[0]
    print(
        f"{n:2d} layers: first-layer gradient "
        f"{first_layer[n, False]:.2e} without shortcuts, "
        f"{first_layer[n, True]:.2e} with"
    )
assert first_layer[20, False] < 1e-12 < 0.1 < first_layer[20, True]
assert (
    first_layer[5, False]
    > first_layer[10, False]
    > first_layer[20, False]
)

# %% [markdown]
# **Exercise 4.5.** GPT-J and PaLM run attention and the feed-forward network side by side, from
# one normalized input, instead of one after the other:
# $y = x + \mathrm{Att}(\mathrm{LN}(x)) + \mathrm{FF}(\mathrm{LN}(x))$. Write
# `my_parallel_block(block, x)` that computes this from the parts of a
# `helpers.layers.TransformerBlock` (`block.norm1`, `block.att`, `block.ff`). How far is its
# output from the sequential `block(x)` with the same weights, and which of the block's parameters
# does the parallel form not use?

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_parallel_block(block, x):
    raise NotImplementedError


# %%
check("4.5", my_parallel_block)

# %% [markdown]
# ```{admonition} Solution 4.5
# :class: dropdown
# Normalize once and give the same normalized input to both sub-layers; both results are added to
# the un-normalized input. The two forms are different functions of the same weights, so their
# outputs differ (the cell measures by how much); the parallel form never calls `norm2`, so its
# $2C$ parameters go unused. Neither sub-layer waits for the other, so the two can run at the
# same time: the speed-up that GPT-J and PaLM were after.
# ```

# %% tags=["hide-cell"]
def parallel_block(block, x):
    h = block.norm1(x)  # (B, T, C), read by both sub-layers
    return (
        x
        + block.drop_shortcut(block.att(h))
        + block.drop_shortcut(block.ff(h))
    )


torch.manual_seed(123)
blk = helpers.layers.TransformerBlock(
    64, 4, context_length=8, qkv_bias=True
).eval()
x_par = torch.randn(2, 8, 64)  # (B, T, C)
with torch.no_grad():
    gap = (parallel_block(blk, x_par) - blk(x_par)).abs().max().item()
unused = sum(p.numel() for p in blk.norm2.parameters())
print(
    "parallel against sequential, same weights: outputs differ by up "
    f"to {gap:.3f}"
)
print(
    f"parameters the parallel form leaves unused: {unused} (norm2's "
    "scale and shift)"
)
assert gap > 1e-3 and unused == 2 * 64
verdict = check("4.5", parallel_block)
assert verdict.passed
verdict
