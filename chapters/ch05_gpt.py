# %% [markdown]
# # Chapter 5: Assembling GPT-2
#
# **Goal: stack Chapter 4's blocks into GPT-2, count what the model costs in parameters, memory and arithmetic, and turn text into (untrained) text.**
#
# What you will build:
#
# - a configuration with the four published GPT-2 sizes (small, medium, large, XL) as presets;
# - the model: token and position embeddings, dropout, a stack of blocks, a final layer normalization and the output head, initialized as GPT-2 was;
# - parameter counts for every preset, computed by code and explained term by term, with weight tying and what it saves;
# - memory in fp32 and bf16, and the floating-point operations per token, checked against PyTorch's FLOP counter;
# - greedy next-token generation as a loop, with every shape printed;
# - a measurement of why GPT-2 scales down the initial weights of the layers that write into the residual stream;
# - `helpers.model`, the model every later chapter trains, loads weights into and looks inside.

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
import dataclasses
import math

import matplotlib.pyplot as plt
import torch
from matplotlib_inline.backend_inline import set_matplotlib_formats
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import helpers.model
from helpers.check import check
from helpers.layers import LayerNorm, TransformerBlock
from helpers.model import (
    GPTConfig,
    count_parameters,
    flops_per_token,
    predicted_parameters,
)
from helpers.offline import gpt2_encoding
from helpers.viz import plot_per_layer

# figures with twice the pixels: sharp on any screen
set_matplotlib_formats("retina")

# %% [markdown]
# Chapter 4 ended with a transformer block that takes `x  # (B, T, C)` and returns the same shape.
# GPT-2 {cite}`radford2019gpt2` is that block repeated, with a way in (token ids to vectors) and a
# way out (vectors to a score for every possible next token):
#
# 1. token ids `(B, T)` are looked up in a token embedding table `(V, C)` and a position embedding
#    table `(context_length, C)`; the two vectors are added, giving `(B, T, C)`, and dropout is applied;
# 2. $L$ transformer blocks transform the `(B, T, C)` residual stream;
# 3. a final layer normalization, and a linear *output head* of shape `(C, V)` gives the *logits*
#    `(B, T, V)`: at every position, one score per token of the vocabulary for what comes next.
#
# The code follows *LLMs from Scratch* {cite}`raschka2024llm`, with the changes that make it GPT-2
# exactly: query, key and value biases, a tied output head, GPT-2's initialization.

# %% [markdown]
# ## 5.1 The configuration
#
# A model's shape is a handful of numbers, kept in one `GPTConfig`: the vocabulary size $V$, the
# context length, the width $C$ (`emb_dim`), the number of heads $h$ and of blocks $L$, the dropout
# rate, and two switches, `qkv_bias` and `tie_weights`. OpenAI published four sizes. (The dropout
# rate of 0.1 is not OpenAI's: the GPT-2 paper gives none and its released code has no dropout; 0.1
# is GPT-1's rate and the default of `transformers`' GPT-2.)

# %%
print(
    f"{'preset':12s} {'emb_dim':>7s} {'n_layers':>8s} {'n_heads':>7s} "
    f"{'head_dim':>8s}"
)
for name in helpers.model.PRESETS:
    cfg = GPTConfig.from_preset(name)
    print(
        f"{name:12s} {cfg.emb_dim:7d} {cfg.n_layers:8d} {cfg.n_heads:7d} "
        f"{cfg.head_dim:8d}"
    )
print()
print(GPTConfig.from_preset("gpt2-small"))

# %% [markdown]
# All four share GPT-2's vocabulary of 50,257 tokens (Chapter 1), a context of 1,024 tokens and
# heads of 64 features (the cell above). A preset can be changed field by field, which later
# chapters use to train a small model on a laptop; and a configuration that cannot work is refused
# with a sentence saying why:

# %%
short = GPTConfig.from_preset(
    "gpt2-small", context_length=256, drop_rate=0.0
)
print("overridden:", short.context_length, short.drop_rate)
for bad in [lambda: GPTConfig.from_preset("gpt2-huge"),
            lambda: GPTConfig.from_preset("gpt2-small", emb_dim=770)]:
    try:
        bad()
    except ValueError as err:
        print("ValueError:", err)

# %% [markdown]
# ## 5.2 The model, step by step
#
# {numref}`fig-gpt2-shapes` is the whole model on one page, with the shape of the tensor between
# every two stages; the cells below build it stage by stage.
#
# ```{figure} ../book/figures/gpt2_shapes.svg
# :name: fig-gpt2-shapes
# :alt: A vertical pipeline: token ids of shape (B, T); tok_emb plus pos_emb give (B, T, C); dropout, twelve transformer blocks and the final LayerNorm keep (B, T, C); out_head gives logits of shape (B, T, V).
# :width: 100%
#
# GPT-2 from token ids to logits. Every stage between the embeddings and the output head keeps the shape `(B, T, C)`; only the first and the last change the last dimension.
# ```
#
# To watch the shapes, take a narrow model ($C = 64$, 4 heads, 2 blocks) with GPT-2's real
# vocabulary, and a batch of two four-token texts.

# %%
enc = gpt2_encoding()
texts = ["Every effort moves you", "Every day holds a"]
batch = torch.tensor([enc.encode(t) for t in texts])  # (B, T)
print(batch)
print("batch:", tuple(batch.shape), "(B, T)")

# %%
cfg_demo = GPTConfig.from_preset(
    "gpt2-small",
    emb_dim=64,
    n_heads=4,
    n_layers=2,
    context_length=64,
    drop_rate=0.0,
)
torch.manual_seed(123)
tok_emb = nn.Embedding(cfg_demo.vocab_size, cfg_demo.emb_dim)  # (V, C)
# (context_length, C)
pos_emb = nn.Embedding(cfg_demo.context_length, cfg_demo.emb_dim)
blocks = nn.Sequential(
    *[
        TransformerBlock(
            cfg_demo.emb_dim,
            cfg_demo.n_heads,
            cfg_demo.context_length,
            qkv_bias=True,
        )
        for _ in range(cfg_demo.n_layers)
    ]
)
final_norm = LayerNorm(cfg_demo.emb_dim)
# (C -> V)
out_head = nn.Linear(cfg_demo.emb_dim, cfg_demo.vocab_size, bias=False)

B, T = batch.shape
token_vectors = tok_emb(batch)  # (B, T, C)
# (T, C), broadcast over the batch
position_vectors = pos_emb(torch.arange(T))
x = token_vectors + position_vectors  # (B, T, C)
h = blocks(x)  # (B, T, C)
logits = out_head(final_norm(h))  # (B, T, V)
for name, t in [
    ("token vectors", token_vectors),
    ("position vectors", position_vectors),
    ("x = tokens + positions", x),
    ("after the blocks", h),
    ("logits", logits),
]:
    print(f"{name:24s} {tuple(t.shape)}")

# %% [markdown]
# The logits have one row of $V = 50{,}257$ scores for each of the $B \times T$ positions: the
# row at position $t$ scores every candidate for token $t + 1$. Training (Chapter 6) will make the
# right candidate score highest; for now the weights are random.
#
# **Initialization.** GPT-2 starts every weight matrix and the token embedding from a normal
# distribution with standard deviation 0.02 (OpenAI's released code starts the position embedding
# at 0.01; `transformers` and nanoGPT use 0.02 for both, and so do we), every bias at zero, and
# every layer normalization at scale 1 and shift 0. One exception: "we scale the weights of
# residual layers at initialization by a factor
# of $1/\sqrt{N}$ where $N$ is the number of residual layers" {cite}`radford2019gpt2`. The
# residual layers are the two sub-layers of each block that write into the residual stream,
# attention's output projection `att.out_proj` and the feed-forward contraction `ff.proj`, so
# $N = 2L$ and their standard deviation is $0.02/\sqrt{2L}$ (this is also what transformers'
# `GPT2LMHeadModel` and nanoGPT do). Section 5.7 measures what the factor does.


# %%
@torch.no_grad()
def init_gpt2_weights(model, n_layers, std=0.02, scale_residual=True):
    residual = {
        id(m) for b in model.trf_blocks for m in (b.att.out_proj, b.ff.proj)
    }
    scaled = std / math.sqrt(2 * n_layers) if scale_residual else std
    for module in model.modules():  # in the order the modules were created
        if isinstance(module, nn.Linear):
            if (
                module is model.out_head
                and model.out_head.weight is model.tok_emb.weight
            ):
                # a tied head is the token embedding, initialized once
                continue
            nn.init.normal_(
                module.weight, 0.0, scaled if id(module) in residual else std
            )
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, 0.0, std)
        elif isinstance(module, LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


# %% [markdown]
# The whole model in one class. The output head has no bias, and with `tie_weights` (GPT-2's
# choice, Section 5.4) its weight *is* the token embedding's.


# %%
class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        self.pos_emb = nn.Embedding(cfg.context_length, cfg.emb_dim)
        self.drop_emb = nn.Dropout(cfg.drop_rate)
        self.trf_blocks = nn.ModuleList(
            TransformerBlock(
                cfg.emb_dim,
                cfg.n_heads,
                cfg.context_length,
                cfg.drop_rate,
                cfg.qkv_bias,
            )
            for _ in range(cfg.n_layers)
        )
        self.final_norm = LayerNorm(cfg.emb_dim)
        self.out_head = nn.Linear(cfg.emb_dim, cfg.vocab_size, bias=False)
        if cfg.tie_weights:
            self.out_head.weight = self.tok_emb.weight
        init_gpt2_weights(self, cfg.n_layers)

    def forward(self, idx):  # (B, T)
        T = idx.shape[1]
        # (B, T, C)
        x = self.tok_emb(idx) + self.pos_emb(
            torch.arange(T, device=idx.device)
        )
        x = self.drop_emb(x)
        for block in self.trf_blocks:
            x = block(x)  # (B, T, C)
        return self.out_head(self.final_norm(x))  # (B, T, V)


# %%
torch.manual_seed(123)
demo = GPT(cfg_demo)
demo_logits = demo(batch)
print("logits:", tuple(demo_logits.shape), "(B, T, V)")
std_of = {name: p.std().item() for name, p in demo.named_parameters()}
for name in [
    "tok_emb.weight",
    "trf_blocks.0.att.W_query.weight",
    "trf_blocks.0.att.out_proj.weight",
    "trf_blocks.0.ff.proj.weight",
]:
    print(f"std of {name:34s} {std_of[name]:.4f}")
print(
    f"0.02 / sqrt(2 * {cfg_demo.n_layers}) = "
    f"{0.02 / math.sqrt(2 * cfg_demo.n_layers):.4f}"
)
assert demo_logits.shape == (2, 4, cfg_demo.vocab_size)
assert abs(std_of["trf_blocks.0.ff.proj.weight"] - 0.01) < 0.001

# %% [markdown]
# The two residual projections start with a standard deviation of 0.01 (the cell above), the
# others with 0.02.
#
# A language model must be *causal*: the logits at position $t$ may depend on tokens $0..t$ only,
# or training would let it read the answer. Each block is causal (Chapter 4), embeddings and the
# head work position by position, so the model is too. Changing the last token of each text
# leaves the logits of the first three positions untouched:

# %%
changed = batch.clone()
changed[:, -1] = torch.tensor([enc.encode(" me")[0], enc.encode(" the")[0]])
with torch.no_grad():
    before, after = demo(batch), demo(changed)
first_same, last_changed = (
    torch.allclose(before[:, :3], after[:, :3], atol=1e-5),
    not torch.allclose(before[:, 3], after[:, 3]),
)
print("first three positions unchanged:", first_same)
print("last position changed:          ", last_changed)
assert first_same and last_changed

# %% [markdown]
# ## 5.3 GPT-2 small, and how many parameters it has
#
# Now the real size. This is the only 124-million-parameter model the chapter builds; it is
# `helpers.model.GPTModel` (the class above with input checks and the option to return the
# attention weights; Section 5.8 checks that the two agree).

# %%
cfg = GPTConfig.from_preset("gpt2-small")
torch.manual_seed(123)
model = helpers.model.GPTModel(cfg)
n_params = sum(p.numel() for p in model.parameters())
print(f"parameters: {n_params:,}")

# %% [markdown]
# `model.parameters()` yields the tied matrix once, so this is the number of distinct parameters.
# Where they are, term by term, with $C = 768$, $V = 50{,}257$, $L = 12$ and a context of 1,024:

# %%
C, V, L, T_max = (
    cfg.emb_dim,
    cfg.vocab_size,
    cfg.n_layers,
    cfg.context_length,
)
terms = {
    "token embedding  V*C": V * C,
    "position embedding  T*C": T_max * C,
    "per block: 2 LayerNorms  4C": 4 * C,
    "per block: attention  4C^2 + 4C": 4 * C * C + 4 * C,
    "per block: feed-forward  8C^2 + 5C": 8 * C * C + 5 * C,
    "final LayerNorm  2C": 2 * C,
    "output head (tied: shares the token embedding)": 0,
}
per_block = sum(v for k, v in terms.items() if k.startswith("per block"))
total = V * C + T_max * C + L * per_block + 2 * C
for name, n in terms.items():
    print(f"{name:48s} {n:>12,}")
print(f"{'one block':48s} {per_block:>12,}")
print(f"{'12 blocks':48s} {L * per_block:>12,}")
print(f"{'total':48s} {total:>12,}")
print(
    f"\nshares: blocks {L * per_block / total:.1%}, token embedding "
    f"{V * C / total:.1%}"
)
assert (
    total == n_params == predicted_parameters(cfg) == count_parameters(model)
)
assert sum(p.numel() for p in model.trf_blocks[0].parameters()) == per_block

# %% [markdown]
# GPT-2 small has 124,439,808 parameters, the "124M" of its name: 68% of them in the 12 blocks,
# 31% in the token embedding. `helpers.model.predicted_parameters(cfg)` is this sum as a formula.
#
# **Where 163,009,536 and 124,412,160 come from.** *LLMs from Scratch* {cite}`raschka2024llm`
# reports 163,009,536 parameters, and 124,412,160 "considering weight tying". Both are for a model
# *without* query, key and value biases (`qkv_bias=False`) and, for the first, with a separate
# output head. The four combinations, counted by building each model on PyTorch's `meta` device,
# where tensors have shapes but no memory:

# %%
variants = {}
for qkv_bias in (True, False):
    for tie in (True, False):
        variant = dataclasses.replace(
            cfg, qkv_bias=qkv_bias, tie_weights=tie
        )
        # shapes only: nothing is allocated or initialized
        with torch.device("meta"):
            variants[qkv_bias, tie] = count_parameters(
                helpers.model.GPTModel(variant)
            )
        assert variants[qkv_bias, tie] == predicted_parameters(variant)
        print(
            f"qkv_bias={qkv_bias!s:5s} tie_weights={tie!s:5s} "
            f"{variants[qkv_bias, tie]:>13,}"
        )
assert (
    variants[False, False] == 163_009_536
    and variants[False, True] == 124_412_160
)
assert variants[True, True] == 124_439_808

# %% [markdown]
# The cell above reproduces both of *LLMs from Scratch*'s numbers, and shows what they are: the qkv biases
# are $3C$ per block, $12 \times 3 \times 768 = 27{,}648$ parameters in all, and a separate head
# is $V \times C = 38{,}597{,}376$. GPT-2 as OpenAI released it has the biases and the tied head:
# 124,439,808. The same numbers come out of Hugging Face transformers' own GPT-2 class, again on
# the meta device:

# %%
import transformers

for name in helpers.model.PRESETS:
    ours = GPTConfig.from_preset(name)
    hf_config = transformers.GPT2Config(
        n_embd=ours.emb_dim, n_layer=ours.n_layers, n_head=ours.n_heads
    )
    with torch.device("meta"):
        hf_count = sum(
            p.numel()
            for p in transformers.GPT2LMHeadModel(hf_config).parameters()
        )
    print(
        f"{name:12s} ours {predicted_parameters(ours):>13,}   transformers "
        f"{hf_count:>13,}"
    )
    assert hf_count == predicted_parameters(ours)
with torch.device("meta"):
    hf_small = transformers.GPT2LMHeadModel(transformers.GPT2Config())
print(
    "transformers' GPT-2 small, block 0: c_attn.bias",
    tuple(hf_small.transformer.h[0].attn.c_attn.bias.shape),
    "| mlp.c_fc.bias",
    tuple(hf_small.transformer.h[0].mlp.c_fc.bias.shape),
)

# %% [markdown]
# The four presets have about 124 million, 355 million, 774 million and 1.56 billion parameters
# (the cell above), the sizes usually quoted as 124M, 355M, 774M and 1.5B. (The GPT-2 paper's own
# table says 117M, 345M, 762M and 1542M; OpenAI later renamed the first two 124M and 355M after
# recounting.) The last line of the cell shows transformers'
# GPT-2 with a bias of $3C = 2{,}304$ on its fused query-key-value projection `c_attn` and biases on
# its feed-forward layers: GPT-2's linear layers do have biases, as the counts above and the
# checkpoint Chapter 9 loads confirm (some write-ups say otherwise).
#
# ## 5.4 Weight tying
#
# The token embedding maps a token id to a row of a $V \times C$ matrix; the output head maps a
# $C$-vector to $V$ scores with a $V \times C$ weight matrix (`nn.Linear` stores it as
# `(out, in)`). GPT-2 uses one matrix for both (Press and Wolf, 2017, "Using the Output Embedding
# to Improve Language Models"): the score of token $v$ is the dot product of the final hidden
# vector with $v$'s own embedding, so tokens that the model reads alike it also predicts alike.
# In our model the two attributes hold the same tensor:

# %%
print(
    "out_head.weight is tok_emb.weight:",
    model.out_head.weight is model.tok_emb.weight,
)
print(
    "same memory:",
    model.out_head.weight.data_ptr() == model.tok_emb.weight.data_ptr(),
)
print("shape:", tuple(model.tok_emb.weight.shape), "(V, C)")
saved = variants[True, False] - variants[True, True]
print(
    f"tying saves {saved:,} parameters: {saved / variants[True, False]:.1%} "
    "of the untied model, "
    f"{saved * 4 / 1e6:.1f} MB in fp32"
)
assert saved == V * C

# %% [markdown]
# Tying saves one $V \times C$ matrix, 38,597,376 parameters, nearly a quarter of the untied
# model (the cell above). The share falls as models widen, since the blocks grow with $C^2$ and
# the embedding with $C$ (Exercise 5.3). During training the shared matrix receives the sum of two
# gradients, one from its use as an embedding and one from its use as the head (Exercise 5.4).
#
# ## 5.5 Memory and arithmetic
#
# **Memory.** Each parameter takes 4 bytes in fp32 and 2 in bf16 (bfloat16: fp32's exponent
# range with a shorter mantissa, which later chapters use on GPUs). Training with AdamW needs, per
# parameter, the weight, its gradient and two moment estimates: 16 bytes in fp32, before any
# activations.

# %%
print(
    f"{'preset':12s} {'parameters':>14s} {'fp32 GB':>8s} {'bf16 GB':>8s} "
    f"{'AdamW fp32 GB':>14s}"
)
for name in helpers.model.PRESETS:
    n = predicted_parameters(GPTConfig.from_preset(name))
    print(
        f"{name:12s} {n:>14,} {4 * n / 1e9:8.2f} {2 * n / 1e9:8.2f} "
        f"{16 * n / 1e9:14.2f}"
    )
bytes_fp32 = sum(p.numel() * p.element_size() for p in model.parameters())
print(
    f"\nthe model above holds {bytes_fp32 / 1e6:.1f} MB of fp32 parameters"
)
assert bytes_fp32 == 4 * n_params

# %% [markdown]
# GPT-2 small's weights fit in half a gigabyte in fp32; XL needs 6.2 GB, and 24.9 GB to train
# with AdamW in fp32 (the table above; 1 GB = $10^9$ bytes).
#
# **Arithmetic.** Nearly all the work is matrix multiplication, and a product of an
# $m \times k$ by a $k \times n$ matrix costs $mkn$ multiply-adds, $2mkn$ floating-point
# operations (FLOPs). Per token, each block multiplies by $12C^2$ weights ($4C^2$ in attention,
# $8C^2$ in the feed-forward network), the head by $CV$, and attention's two products with the
# scores, $QK^\top$ and the weighted sum of the values, cost $2TC$ multiply-adds per token and
# per block: the token's query takes a dot product with all $T$ keys ($C$ numbers in all, summed
# over the heads), and the weighted sum of $T$ values is as wide again. (This counts the full $T \times T$ score matrix,
# the masked half included, as the code computes it.) So the forward pass costs
#
# $$
# \text{FLOPs per token} \approx 2\,(12 L C^2 + C V) + 4 L T C .
# $$
#
# `helpers.model.flops_per_token(cfg)` is this formula. PyTorch's `FlopCounterMode` counts the
# FLOPs of the matrix products a forward pass actually runs; on the narrow demo model, running the
# explicit attention path (`attn_weights=[]`, whose products the counter sees; the fused
# kernel of the default path is not counted on CPU):

# %%
torch.manual_seed(0)
demo_model = helpers.model.GPTModel(cfg_demo).eval()
# (B, T), T = context
idx = torch.randint(0, cfg_demo.vocab_size, (2, cfg_demo.context_length))
with FlopCounterMode(display=False) as counter, torch.no_grad():
    demo_model(idx, attn_weights=[])
counted = counter.get_total_flops() / idx.numel()
print(f"counted by PyTorch: {counted:,.0f} FLOPs per token")
print(f"formula:            {flops_per_token(cfg_demo):,} FLOPs per token")
assert counted == flops_per_token(cfg_demo)

# %%
print(
    f"{'preset':12s} {'GFLOPs/token (forward, T = 1024)':>33s} "
    f"{'of which attention':>19s} {'2N':>8s}"
)
for name in helpers.model.PRESETS:
    c = GPTConfig.from_preset(name)
    f = flops_per_token(c)
    attention_part = 4 * c.n_layers * c.context_length * c.emb_dim
    print(
        f"{name:12s} {f / 1e9:33.3f} {attention_part / f:19.1%} "
        f"{2 * predicted_parameters(c) / 1e9:8.3f}"
    )
f_small = flops_per_token(cfg)
print(
    f"\nGPT-2 small: about {f_small / 1e6:.0f} MFLOPs per token forward, "
    f"{3 * f_small / 1e6:.0f} MFLOPs per token to train (backward costs "
    "twice the forward)"
)

# %% [markdown]
# The counter and the formula agree exactly. For GPT-2 small a forward pass costs about 285
# million FLOPs per token at full context, and a training step about three times that (the cell
# above). The rule of thumb "2 FLOPs per parameter per token" (the column 2N) comes within 15%,
# because each weight is used in one multiply-add per token; it leaves out attention over the
# context, and it counts the position embedding, which costs no multiplication.

# %% [markdown]
# ## 5.6 Text in, text out
#
# Generating text is a loop: encode the prompt, run the model, take the logits at the last
# position, pick a token, append it, repeat. *Greedy* decoding picks the token with the highest
# score. The model must be in evaluation mode, so that dropout is off (Exercise 5.2). Every shape
# is printed:

# %%
model.eval()
prompt = "Hello, I am"
idx = torch.tensor([enc.encode(prompt)])  # (1, T)
print("prompt ids:", idx.tolist(), tuple(idx.shape))
for step in range(6):
    idx_cond = idx[:, -cfg.context_length:]  # at most context_length tokens
    with torch.no_grad():
        logits = model(idx_cond)  # (1, T, V)
    last = logits[:, -1, :]  # (1, V): scores for the next token
    next_id = last.argmax(dim=-1, keepdim=True)  # (1, 1)
    idx = torch.cat([idx, next_id], dim=1)  # (1, T + 1)
    print(
        f"step {step}: input {tuple(idx_cond.shape)} -> logits "
        f"{tuple(logits.shape)} -> "
        f"last {tuple(last.shape)} -> next id {next_id.item()} "
        f"{enc.decode_single_token_bytes(next_id.item())}"
    )
print("ids: ", idx.tolist())
print("text:", repr(enc.decode(idx[0].tolist())))

# %% [markdown]
# The untrained model picks one token and then repeats it (the cell above: 15926 here). That token is the
# two bytes `e2 97`, the start of a three-byte UTF-8 character, so the decoded text ends in
# replacement characters. Nothing else could be expected from random weights; Chapter 6 trains
# them. `helpers.model.generate_greedy` is this loop; it gives the same ids:

# %%
new_ids = idx[0, 4:].tolist()
# one token, repeated (15926 with the pinned PyTorch's random weights)
assert new_ids == new_ids[:1] * 6
assert torch.equal(
    helpers.model.generate_greedy(
        model, torch.tensor([enc.encode(prompt)]), 6
    ),
    idx,
)
print("generate_greedy gives the same ids")

# %% [markdown]
# The model checks its input before using it. A prompt longer than the context, or an id outside
# the vocabulary, would otherwise fail deep inside `nn.Embedding` with a message about indices;
# instead:

# %%
for bad in [
    torch.zeros(1, 1025, dtype=torch.long),
    torch.tensor([[15496, 50257]]),
]:
    try:
        model(bad)
    except ValueError as err:
        print("ValueError:", err)

# %% [markdown]
# `generate_greedy` refuses a prompt longer than the context in the same way; once generation
# itself outgrows the context, it keeps feeding the model the last `context_length` tokens.
#
# ## 5.7 Does the $1/\sqrt{2L}$ scaling matter?
#
# The residual stream after block $l$ is the embedding plus $2l$ updates, one per sub-layer. If the
# updates are roughly independent, their variances add, so the stream's variance grows in
# proportion to the number of sub-layers. Shrinking each update's weights by $1/\sqrt{2L}$ divides
# each update's variance by $2L$, which keeps the sum at the output of the last block about the
# same whatever the depth. To measure it, run the same two sequences of 64 random token ids
# through the model,
# record the standard deviation of the stream after each block, then re-initialize the same model
# without the scaling and do it again.

# %%
def stream_stds(model, idx):
    """Standard deviation of the residual stream: after the embeddings, then
    after each block."""
    with torch.no_grad():
        # (B, T, C)
        x = model.tok_emb(idx) + model.pos_emb(torch.arange(idx.shape[1]))
        stds = [x.std().item()]
        for block in model.trf_blocks:
            x = block(x)
            stds.append(x.std().item())
    return stds


# (B, T)
ids = torch.randint(
    0, cfg.vocab_size, (2, 64), generator=torch.Generator().manual_seed(0)
)
stds = {}
for scale_residual in (True, False):
    torch.manual_seed(123)
    model.init_weights(scale_residual=scale_residual)
    stds[
        "0.02 / sqrt(2L) (GPT-2)" if scale_residual else "0.02 everywhere"
    ] = stream_stds(model, ids)
for label, s in stds.items():
    print(f"{label:24s} embeddings {s[0]:.3f}, after blocks 1, 4, 8, 12: "
          f"{s[1]:.3f} {s[4]:.3f} {s[8]:.3f} {s[12]:.3f}")
assert stds["0.02 everywhere"][-1] > 4 * stds["0.02 / sqrt(2L) (GPT-2)"][-1]
del model  # the chapter's one 124M model is not used again

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
plot_per_layer(
    stds,
    ax=ax,
    xlabel="block (0 = embeddings)",
    ylabel="std of the residual stream",
    title="GPT-2 small at initialization",
)
plt.show()

# %% [markdown]
# With GPT-2's scaling, the stream of GPT-2 small ends at a standard deviation of about 0.3;
# without it, about five times larger (the cell above). The embeddings, which carry the only
# information about the input, have a standard deviation of 0.028: the first block's random
# update is already 13 times that without the scaling (0.372), against 3 times with it (0.081).
# The difference grows with depth. Switching to a narrower model, $C = 256$ (4 heads, a vocabulary
# of 1,000 to stay small), and varying only the number of blocks:

# %%
print(
    f"{'n_layers':>8s} {'with scaling':>13s} {'without':>8s}   (std of the "
    "stream after the last block)"
)
final_std = {}
for n_layers in (6, 12, 24, 48):
    c = GPTConfig(
        vocab_size=1000,
        context_length=64,
        emb_dim=256,
        n_heads=4,
        n_layers=n_layers,
        drop_rate=0.0,
    )
    deep = helpers.model.GPTModel(c).eval()
    sweep_ids = torch.randint(
        0, 1000, (2, 64), generator=torch.Generator().manual_seed(0)
    )
    for scale_residual in (True, False):
        torch.manual_seed(123)
        deep.init_weights(scale_residual=scale_residual)
        final_std[n_layers, scale_residual] = stream_stds(deep, sweep_ids)[
            -1
        ]
    print(
        f"{n_layers:8d} {final_std[n_layers, True]:13.3f} "
        f"{final_std[n_layers, False]:8.3f}"
    )
with_scaling = [final_std[n, True] for n in (6, 12, 24, 48)]
assert max(with_scaling) / min(with_scaling) < 1.15
assert final_std[48, False] / final_std[6, False] > 2.5

# %% [markdown]
# With the scaling, the output of the stack has the same scale at 6 blocks as at 48; without it,
# the scale grows about as $\sqrt{L}$ (eight times the depth, about three times the standard
# deviation, in the table above). The final layer normalization hides the scale from the output
# head, but not from training: the larger the stream, the smaller the effect of any one update on
# it, and a deep model starts with its embeddings buried under noise from its random blocks.

# %% [markdown]
# ## 5.8 Consolidate: `helpers.model`
#
# `helpers.model.GPTModel` is the class `GPT` of Section 5.2 with two additions: it checks its
# input (Section 5.6) and `forward(idx, attn_weights=weights)` also appends every block's
# attention weights to the list `weights`, which Chapter 10 draws. Built from the same seed, the two create and initialize
# their parameters in the same order, so they hold the same numbers and compute the same logits:

# %%
torch.manual_seed(7)
ours = GPT(cfg_demo).eval()
torch.manual_seed(7)
theirs = helpers.model.GPTModel(cfg_demo).eval()
assert ours.state_dict().keys() == theirs.state_dict().keys()
assert all(
    torch.equal(a, b)
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values())
)
with torch.no_grad():
    assert torch.equal(ours(batch), theirs(batch))
    weights = []
    logits = theirs(batch, attn_weights=weights)
assert torch.allclose(logits, ours(batch), atol=1e-5)
print(
    "same parameters, same logits; attention weights:",
    len(weights),
    "x",
    tuple(weights[0].shape),
    "(B, h, T, T)",
)

# %% [markdown]
# And the initialization function of Section 5.2 is `GPTModel.init_weights`:

# %%
torch.manual_seed(11)
init_gpt2_weights(ours, cfg_demo.n_layers, scale_residual=False)
torch.manual_seed(11)
theirs.init_weights(scale_residual=False)
assert all(
    torch.equal(a, b)
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values())
)
print("init_gpt2_weights and GPTModel.init_weights draw the same weights")

# %% [markdown]
# ```{admonition} Where these numbers come from
# :class: dropdown
# The model code follows *Build a Large Language Model (From Scratch)* {cite}`raschka2024llm`, whose
# counts (163,009,536 untied, 124,412,160 tied, both without query, key and value biases) the cells
# above reproduce; GPT-2's own initialization and biases come from its paper {cite}`radford2019gpt2`
# and OpenAI's released code. An article that builds a "GPT-2-like" model states that GPT-2's linear
# layers have no biases and loses the $1/\sqrt{N}$ of the paper's sentence; Section 5.3's counts
# and Chapter 9's checkpoint settle both. {ref}`seeds` lists the write-ups the book grew from.
# ```
#
# ## Summary
#
# - GPT-2 is token embeddings plus position embeddings, dropout, $L$ pre-LayerNorm blocks, a final
#   layer normalization and an output head: token ids `(B, T)` in, logits `(B, T, V)` out, causal
#   at every position.
# - GPT-2 initializes weights with standard deviation 0.02 and the two residual projections of
#   each block with $0.02/\sqrt{2L}$. Measured: this keeps the stream at the output of the last
#   block at the same scale whatever the number of blocks; without it the stream grows like $\sqrt{L}$.
# - GPT-2 small has 124,439,808 parameters with its query, key and value biases and the output
#   head tied to the token embedding; 124,412,160 and 163,009,536, *LLMs from Scratch*'s numbers,
#   are the same model without qkv biases, tied and untied. Tying saves $V \times C$ = 38,597,376
#   parameters. Medium, large and XL have 354,823,168, 774,030,080 and 1,557,611,200, equal to
#   transformers'
#   `GPT2LMHeadModel`.
# - A forward pass costs $2(12LC^2 + CV) + 4LTC$ FLOPs per token, about 285 million for GPT-2
#   small, checked against PyTorch's FLOP counter; fp32 weights take 4 bytes a parameter, bf16 2.
# - Greedy generation is a loop of forward pass, argmax and append; the untrained model produces
#   a repeated arbitrary token.
#
# Moved into `helpers/`:
#
# - `helpers.model`: `GPTConfig` (with `GPTConfig.from_preset(name, **overrides)` and `PRESETS`),
#   `GPTModel` (`forward(idx, cache=None, attn_weights=None)`, always the logits; `cache` is
#   the key-value cache of Chapter 8;
#   `init_weights(std=0.02, scale_residual=True)`, `check_ids`), `count_parameters(model)`, `predicted_parameters(cfg)`, `flops_per_token(cfg)` and
#   `generate_greedy(model, idx, max_new_tokens)`.
# - `helpers.viz.plot_per_layer` drew the residual stream's scale.
#
# ## Exercises

# %% [markdown]
# Each exercise whose answer is code or a value has a cell for your answer and a cell that checks
# it: `check("5.1", my_answer)` runs your answer on small cases, edge cases included, and says in
# a sentence or two what is wrong and where, with a hint, or that it is right. Until you write
# something it says "not attempted yet". The worked solution stays folded below.
#
# **Exercise 5.1.** Why does GPT-2 need position embeddings? Write
# `my_logits_without_positions(model, ids)`: the logits that `model` gives for `ids` `(B, T)`
# while its position embedding is all zeros, leaving the model as it was. Use it on the demo model
# of Section 5.2 with a token repeated twice, " the the", and compare the logits at the two
# positions, with and without the position embedding.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_logits_without_positions(model, ids):
    raise NotImplementedError


# %%
check("5.1", my_logits_without_positions)

# %% [markdown]
# ```{admonition} Solution 5.1
# :class: dropdown
# Zero the position embedding's weight without gradients, run the model, and copy the saved
# weight back. Without positions, the second " the" sees the keys and values of two identical
# vectors, so its attention output is the same average the first one sees of itself alone: every
# block computes the same vector at both positions, and the logits are equal. The model could
# not tell "the the" from "the". With position embeddings the two positions differ.
# ```

# %% tags=["hide-cell"]
def logits_without_positions(model, ids):
    saved = model.pos_emb.weight.detach().clone()
    with torch.no_grad():
        model.pos_emb.weight.zero_()
        logits = model(ids)  # (B, T, V)
        model.pos_emb.weight.copy_(saved)
    return logits


the_the = torch.tensor([enc.encode(" the the")])  # (1, 2)
assert the_the[0, 0] == the_the[0, 1]
with torch.no_grad():
    with_positions = demo(the_the)
without_positions = logits_without_positions(demo, the_the)
print(
    "with position embeddings, positions 0 and 1 equal:   ",
    torch.allclose(
        with_positions[0, 0], with_positions[0, 1], atol=1e-5
    ),
)
print(
    "without position embeddings, positions 0 and 1 equal:",
    torch.allclose(
        without_positions[0, 0], without_positions[0, 1], atol=1e-5
    ),
)
assert torch.allclose(
    without_positions[0, 0], without_positions[0, 1], atol=1e-5
)
assert not torch.allclose(
    with_positions[0, 0], with_positions[0, 1], atol=1e-3
)
assert check("5.1", logits_without_positions).passed
check("5.1", logits_without_positions)

# %% [markdown]
# **Exercise 5.2.** Section 5.6's loop never reached the end of the context. Write
# `my_generate_greedy(model, ids, max_new_tokens)` for a batch of prompts `ids` `(B, T)`: it
# returns the prompts followed by `max_new_tokens` greedy tokens, `(B, T + max_new_tokens)`,
# and keeps going once the sequence outgrows the model's context. Before you run it, predict:
# for a model with a context of 8 tokens, a 3-token prompt and 10 new tokens, which positions
# does the model see at the last step? And why must the model be in evaluation mode when it
# was built with `drop_rate=0.1`?

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_generate_greedy(model, ids, max_new_tokens):
    raise NotImplementedError


# %%
check("5.2", my_generate_greedy)

# %% [markdown]
# ```{admonition} Solution 5.2
# :class: dropdown
# Each step runs the model on at most the last `context_length` tokens, `ids[:, -8:]` here, and
# appends the argmax of the last position's logits. At the last step the sequence holds
# 3 + 9 = 12 tokens, and the model sees the last 8, positions 4 to 11, to predict the 13th.
# Cropping to the *first* 8 tokens instead would show the model the same window at every step.
# In training mode dropout zeroes a fresh random tenth of the activations on each pass, so two
# passes over the same batch differ and greedy generation would pick different tokens from run
# to run; in evaluation mode dropout does nothing and the model is a deterministic function, as
# the cell shows for a narrow model with `drop_rate=0.1`.
# ```

# %% tags=["hide-cell"]
def generate_greedy_cropped(model, ids, max_new_tokens):
    # dropout off: the same ids always give the same logits
    model.eval()
    context_length = model.cfg.context_length
    for _ in range(max_new_tokens):
        with torch.no_grad():
            # (B, at most context_length, V)
            logits = model(ids[:, -context_length:])
        # (B, 1)
        next_id = logits[:, -1, :].argmax(dim=-1, keepdim=True)
        ids = torch.cat([ids, next_id], dim=1)  # (B, T + 1)
    return ids


torch.manual_seed(0)
cfg_short = dataclasses.replace(
    cfg_demo, drop_rate=0.1, context_length=8
)
dropout_model = helpers.model.GPTModel(cfg_short)
dropout_model.train()
train_differs = not torch.equal(
    dropout_model(batch), dropout_model(batch)
)
# (2, 13)
long_run = generate_greedy_cropped(dropout_model, batch[:, :3], 10)
eval_equal = torch.equal(dropout_model(batch), dropout_model(batch))
print("training mode: two passes differ:", train_differs,
      "| evaluation mode: two passes equal:", eval_equal)
print(
    "prompts",
    tuple(batch[:, :3].shape),
    "-> generated",
    tuple(long_run.shape),
)
assert train_differs and eval_equal
reference = helpers.model.generate_greedy(
    dropout_model, batch[:, :3], 10
)
assert torch.equal(long_run, reference)
assert check("5.2", generate_greedy_cropped).passed
check("5.2", generate_greedy_cropped)

# %% [markdown]
# **Exercise 5.3.** What fraction of each preset's parameters is the token embedding? Give
# `my_shares`, a dict from each name in `PRESETS` to that fraction (between 0 and 1). Why does
# it shrink as the models grow?

# %%
my_shares = ...  # your answer: {preset name: fraction of its parameters}

# %%
check("5.3", my_shares)

# %% [markdown]
# ```{admonition} Solution 5.3
# :class: dropdown
# The embedding has $V C$ parameters, the blocks about $12 L C^2$. Both $C$ and $L$ grow from
# small to XL, so the blocks outgrow the embedding: from 31% of GPT-2 small to 5% of XL.
# ```

# %% tags=["hide-cell"]
embedding_shares = {}
for name in helpers.model.PRESETS:
    c = GPTConfig.from_preset(name)
    embedding_shares[name] = (
        c.vocab_size * c.emb_dim / predicted_parameters(c)
    )
    print(
        f"{name:12s} token embedding: {embedding_shares[name]:.1%} of "
        "the parameters"
    )
shares = list(embedding_shares.values())
assert (
    shares == sorted(shares, reverse=True)
    and shares[0] > 0.3 > 0.06 > shares[-1]
)
assert check("5.3", embedding_shares).passed
check("5.3", embedding_shares)

# %% [markdown]
# **Exercise 5.4.** Show that the gradient of the tied matrix is the sum of the gradient it would
# get as an embedding and the gradient it would get as the output head. Write
# `my_untie(tied_model)`: an untied copy of a tied `GPTModel` whose embedding and head both start
# as the tied matrix (every other weight copied too). Then run a batch through a narrow tied model
# and its copy, and compare the gradients.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_untie(tied_model):
    raise NotImplementedError


# %%
check("5.4", my_untie)

# %% [markdown]
# ```{admonition} Solution 5.4
# :class: dropdown
# Build a model from the same config with `tie_weights=False` and load a clone of the tied
# model's state dict: it holds `out_head.weight` as a key of its own, so the copy's head starts as
# the tied matrix but is a separate tensor. The untied copy computes the same function, so the
# same loss. Autograd adds up the gradient contributions of every use of a tensor; for the tied
# matrix these are the two uses that the untied copy keeps apart.
# ```

# %% tags=["hide-cell"]
def untie(tied_model):
    untied_cfg = dataclasses.replace(tied_model.cfg, tie_weights=False)
    untied_model = helpers.model.GPTModel(untied_cfg)
    # the state dict includes out_head.weight, the same tensor as
    # tok_emb.weight
    state = {k: v.clone() for k, v in tied_model.state_dict().items()}
    untied_model.load_state_dict(state)
    return untied_model


torch.manual_seed(0)
tied = helpers.model.GPTModel(cfg_demo)
untied = untie(tied)
assert untied.out_head.weight is not untied.tok_emb.weight
targets = torch.roll(batch, -1, dims=1)
for m in (tied, untied):
    logits = m(batch)
    nn.functional.cross_entropy(
        logits.flatten(0, 1), targets.flatten()
    ).backward()
summed = untied.tok_emb.weight.grad + untied.out_head.weight.grad
print("tied gradient equals embedding gradient + head gradient:",
      torch.allclose(tied.tok_emb.weight.grad, summed, atol=1e-7))
assert torch.allclose(tied.tok_emb.weight.grad, summed, atol=1e-7)
assert check("5.4", untie).passed
check("5.4", untie)

# %% [markdown]
# **Exercise 5.5.** Double GPT-2 small's context to 2,048 tokens. How many parameters does that
# add, and how much does it add to the forward FLOPs per token at full context? Give
# `my_extra = (extra_parameters, extra_flops)`.

# %%
# your answer: (extra parameters, extra forward FLOPs per token)
my_extra = ...

# %%
check("5.5", my_extra)

# %% [markdown]
# ```{admonition} Solution 5.5
# :class: dropdown
# Only the position embedding depends on the context length: $1{,}024 \times 768 = 786{,}432$
# more parameters. The FLOPs grow by the attention term $4 L \Delta T C$, with $\Delta T = 1{,}024$:
# attention over twice as many positions.
# ```

# %% tags=["hide-cell"]
long = GPTConfig.from_preset("gpt2-small", context_length=2048)
extra_params = predicted_parameters(long) - predicted_parameters(cfg)
extra_flops = flops_per_token(long) - flops_per_token(cfg)
print(
    f"extra parameters: {extra_params:,}; extra FLOPs per token: "
    f"{extra_flops:,} "
    f"({extra_flops / flops_per_token(cfg):.1%} more)"
)
assert extra_params == 1024 * 768 and extra_flops == 4 * 12 * 1024 * 768
assert check("5.5", (extra_params, extra_flops)).passed
check("5.5", (extra_params, extra_flops))
