# %% [markdown]
# # Chapter 7: Training well
#
# **Goal: spend the same training steps better, make a run resumable to the last bit, export it for
# other tools, and train a second small model on data of another shape.**
#
# Chapter 6 trained the book's model on "The Verdict" with one learning rate from the first step to
# the last, and watched it memorize the story. This chapter keeps that model and its run as the
# baseline and builds:
#
# - learning-rate warmup, cosine decay and gradient clipping, measured against the plain run;
# - checkpoints that resume training exactly, and an export that `transformers` loads;
# - a measurement of our training loop's speed against `transformers`;
# - a small project: a character-level model that invents animal and fruit names.
#
# Everything here reuses `helpers.train.train` from Chapter 6, which already takes a schedule, a
# clipping threshold and a history to resume from.

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
import atexit
import contextlib
import dataclasses
import math
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

# Before any tensor exists: PyTorch (on Linux) then puts tensors of 2 MB and
# more on 2 MB memory pages, which spares the training loop most of its page
# faults. The same numbers, sooner (Appendix A.6).
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib_inline.backend_inline import set_matplotlib_formats
from safetensors import safe_open
from torch.utils.data import DataLoader, TensorDataset
from transformers import GPT2LMHeadModel
from transformers.utils import logging as transformers_logging

from helpers.bench import throughput_comparison
from helpers.check import check
from helpers.checkpoint import load_checkpoint, save_checkpoint
from helpers.data import fetch_the_verdict
from helpers.gpt2 import save_hf_checkpoint
from helpers.model import GPTConfig, GPTModel, generate_greedy
from helpers.offline import gpt2_encoding
from helpers.pretrain import BOOK_SMALL, book_model, setup_pretraining
from helpers.train import (
    calc_loss_batch,
    calc_loss_loader,
    next_token_accuracy,
    train,
    warmup_cosine,
)
from helpers.viz import plot_curves, plot_losses

DATA_DIR = (
    Path("../data") if Path("../data/README.md").exists() else Path("data")
)

# figures with twice the pixels: sharp on any screen
set_matplotlib_formats("retina")

# %% [markdown]
# ## 7.1 Warmup, cosine decay and gradient clipping
#
# The run to improve on is Chapter 6's: `BOOK_SMALL`, 15 epochs, one learning rate throughout.
# `helpers.pretrain.book_model` runs Chapter 6's training cell in one call, with the same seed, so
# it gives the same model and the same `History` (losses, learning rates, gradient norms). The first
# call trains (the cell prints how long it took); the result is cached under a name derived from
# everything that determines it, so later calls, in this chapter or another, load it in a second.
# No chapter depends on another having run: the cache only saves time, and with an empty cache
# this cell trains.

# %% tags=["nbval-ignore-output"]
tokenizer = gpt2_encoding()
text = fetch_the_verdict(DATA_DIR).read_text(encoding="utf-8")
settings, device = BOOK_SMALL, "cpu"
model, history = book_model(text, tokenizer, settings)

# %%
print("\n".join(history.lines()[-2:]))
best = min(range(len(history.val_loss)), key=history.val_loss.__getitem__)
print(
    f"lowest validation loss {history.val_loss[best]:.3f} at epoch "
    f"{history.epochs[best]}"
)


# the loaders and a fresh model of the same shape, for the run below
torch.manual_seed(123)
model_s, optimizer_s, train_loader_s, val_loader_s = setup_pretraining(
    text, tokenizer, settings, device
)
# every window in order: reading the shuffled `train_loader_s` would use up
# one of its shuffles, and the run below would then see other batches than
# Chapter 6's
all_windows = DataLoader(train_loader_s.dataset, batch_size=1)
acc_train = next_token_accuracy(model, all_windows)
print(f"next-token accuracy on the training text: {acc_train:.1%}")

# %% [markdown]
#
# Three standard refinements change the constant learning rate; the settings below (warmup, then
# cosine decay to 10% of the peak, gradient norm clipped at 1.0) are the recipe of GPT-3's paper (Brown et al., *Language Models are Few-Shot Learners*, 2020).
#
# - **Warmup.** At the first steps, Adam's running averages are built from a handful of gradients and the
#   weights are random, so full-size steps can throw the model somewhere bad. Warmup raises the learning
#   rate linearly from near zero over the first steps (here: one epoch).
# - **Cosine decay.** Late in training, large steps keep the weights jumping around a minimum. Decay lowers
#   the learning rate along half a cosine to a floor (here 10% of the peak), so the model settles.
# - **Gradient clipping.** When the gradient's norm (all gradients as one long vector) exceeds a threshold,
#   it is scaled down to that norm, so that a single unusual batch cannot move the weights far.
#
# `warmup_cosine` returns the schedule as a function from step $s$ (counted from 0) to learning
# rate: $\text{peak} \cdot (s + 1)/W$ during the $W$ warmup steps, then
# $\text{min} + \tfrac12(\text{peak} - \text{min})(1 + \cos \pi p)$, where $p$ goes from 0 at
# step $W$ to 1 at the last of the $S$ steps, $S - 1$, in $S - W - 1$ equal increments; `train`
# sets it before every step. The top plot compares it with the constant rate; the bottom one shows
# the gradient norms that the plain run above recorded, against the clipping threshold of 1.0.

# %%
total_steps = settings.num_epochs * len(train_loader_s)
schedule = warmup_cosine(
    settings.lr,
    total_steps,
    warmup_steps=len(train_loader_s),
    min_lr=0.1 * settings.lr,
)
steps = list(range(total_steps))
fig, (ax_lr, ax_norm) = plt.subplots(
    2, 1, figsize=(7.5, 5.6), layout="constrained"
)
plot_curves(
    steps,
    {
        "constant (plain loop)": [settings.lr] * total_steps,
        "warmup + cosine decay": [schedule(s) for s in steps],
    },
    ax=ax_lr,
    xlabel="step",
    ylabel="learning rate",
    title="learning rate",
)
plot_curves(
    steps,
    {
        "gradient norm, plain run": history.grad_norm,
        "clipping threshold": [1.0] * total_steps,
    },
    ax=ax_norm,
    xlabel="step",
    ylabel="norm",
    logy=True,
    title="gradient norm before clipping",
)
plt.show()
clipped = sum(n > 1.0 for n in history.grad_norm)
print(
    f"the plain run's gradient norm exceeded 1.0 at {clipped} of "
    f"{total_steps} steps; largest {max(history.grad_norm):.2f} at step "
    f"{history.grad_norm.index(max(history.grad_norm))}"
)

# %% [markdown]
# Now the measurement: the same model, seed, data and number of steps as the plain run, with the schedule
# and clipping switched on (`model_s` was built above from the same seed). We also save a checkpoint two
# epochs before the end, in a temporary folder, for Section 7.2.

# %%
# this chapter's files go here,
checkpoint_dir = Path(tempfile.mkdtemp(prefix="ch07-"))
# deleted when the kernel stops
atexit.register(shutil.rmtree, checkpoint_dir, ignore_errors=True)
resume_epoch = settings.num_epochs - 2


def save_before_the_end(h):
    if h.epoch == resume_epoch:
        save_checkpoint(
            checkpoint_dir / "resume.safetensors",
            model_s,
            optimizer_s,
            h,
            train_loader_s,
        )

# %% tags=["nbval-ignore-output"]
start = time.perf_counter()
history_s = train(
    model_s,
    train_loader_s,
    val_loader_s,
    optimizer_s,
    settings.num_epochs,
    eval_every=settings.eval_every,
    eval_iters=settings.eval_iters,
    lr_schedule=schedule,
    grad_clip=1.0,
    on_epoch_end=save_before_the_end,
)
print(f"training took {time.perf_counter() - start:.0f} s")

# %%
def summary(h):
    i = min(range(len(h.val_loss)), key=h.val_loss.__getitem__)
    return h.train_loss[-1], h.val_loss[-1], h.val_loss[i], h.epochs[i]


print(
    f"{'run':24}{'final train':>12}{'final val':>11}"
    f"{'lowest val':>12}{'at epoch':>10}"
)
for name, h in [("plain", history), ("warmup + cosine + clip", history_s)]:
    tr, va, lo, ep = summary(h)
    print(f"{name:24}{tr:12.3f}{va:11.3f}{lo:12.3f}{ep:10d}")
print(f"next-token accuracy on the training text: plain {acc_train:.1%}, "
      f"schedule {next_token_accuracy(model_s, train_loader_s):.1%}")
fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
plot_losses(history, ax=ax, label="plain", color="C0")
plot_losses(history_s, ax=ax, label="warmup + cosine + clip", color="C1")
plt.show()

# %% [markdown]
# On the same budget of steps, in this run (one seed), the schedule changes what the steps buy. Its
# validation loss reaches a lower minimum, later, and stays near it instead of climbing; its
# training loss ends far higher, and it predicts far fewer training tokens. A likely reading: the
# decaying learning rate spends the last epochs settling the weights rather than memorizing the
# text. The run changes three things at once (warmup, decay, clipping), and its mean learning rate
# is lower than the constant one, so it does not say which of them made the difference; one seed
# and a gap of a tenth of a nat are a hint, not a proof.
#
# What did clipping contribute? The gradient norm exceeded the threshold at most steps of the plain run
# (the count printed above), so the clipped run scaled most gradients down. With Adam that changes less
# than it seems: Adam divides each gradient by the running root-mean-square of its past values, so a
# gradient scaled down by a similar factor at every step gives nearly the same update. Clipping bites
# when one step's gradient is far larger than its neighbours', such as the spikes in the plot.

# %%
plain, scheduled = summary(history), summary(history_s)
assert scheduled[2] < plain[2]  # lower minimum of the validation loss
# less overfitting, less memorization
assert scheduled[1] < plain[1] and scheduled[0] > plain[0] + 1

# %% [markdown]
#
# ## 7.2 Checkpoints
#
# A training run that dies at epoch 13 of 15 should not start again from scratch. A *checkpoint* holds
# everything needed to continue exactly where the run stopped:
#
# - the model's weights;
# - the optimizer's state: for AdamW, each weight's two running averages and the step count;
# - where the run is: epochs, steps and tokens done, and the losses so far (a `History`);
# - the state of the random number generators: the global one that draws dropout masks, and the one
#   that shuffles the training loader.
#
# `save_checkpoint` writes the tensors with safetensors (Hugging Face's format: a JSON header, then the
# raw tensor bytes), and the small things (settings, history) as JSON inside that header, with a
# sha256 digest of the tensors, so that a file changed or damaged after saving is noticed when it
# is loaded (below). It
# never uses Python's pickle, which `torch.save` uses and which can run arbitrary code when a downloaded
# file is loaded. The scheduled run above saved one at the end of epoch `resume_epoch`:

# %%
with safe_open(checkpoint_dir / "resume.safetensors", framework="pt") as f:
    names, metadata = list(f.keys()), f.metadata()
groups = Counter(name.split(".")[0] for name in names)
size_mb = (checkpoint_dir / "resume.safetensors").stat().st_size / 1e6
print(
    f"{len(names)} tensors {dict(groups)}, {size_mb:.1f} MB; metadata keys "
    f"{sorted(metadata)}"
)
print(
    [
        n
        for n in names
        if n.startswith("optimizer.0.") or n.startswith("rng.")
    ]
)

# %% [markdown]
# To resume, build everything afresh, here even with another seed, which the checkpoint overrides; load;
# and call `train` with the loaded history, which knows that `resume_epoch` epochs are done.

# %% tags=["nbval-ignore-output"]
torch.manual_seed(0)
model_r, optimizer_r, train_loader_r, val_loader_r = setup_pretraining(
    text, tokenizer, settings, device
)
resumed = load_checkpoint(
    checkpoint_dir / "resume.safetensors",
    model_r,
    optimizer_r,
    train_loader_r,
)
resumed = train(
    model_r,
    train_loader_r,
    val_loader_r,
    optimizer_r,
    settings.num_epochs,
    eval_every=settings.eval_every,
    eval_iters=settings.eval_iters,
    lr_schedule=schedule,
    grad_clip=1.0,
    history=resumed,
)

# %%
n_before = sum(e <= resume_epoch for e in history_s.epochs)
print(f"{'epoch':>5}{'uninterrupted':>28}{'resumed':>28}")
for i in range(n_before, len(history_s.steps)):
    print(
        f"{history_s.epochs[i]:5d}   train {history_s.train_loss[i]:.6f} "
        f"val {history_s.val_loss[i]:.6f}   train "
        f"{resumed.train_loss[i]:.6f} val {resumed.val_loss[i]:.6f}"
    )
assert (
    resumed.train_loss == history_s.train_loss
    and resumed.val_loss == history_s.val_loss
)
assert resumed.lr == history_s.lr  # the schedule picked up at the right step
assert all(
    torch.equal(a, b)
    for a, b in zip(
        model_s.state_dict().values(), model_r.state_dict().values()
    )
)

# %% [markdown]
# Identical to the last bit, weights included, and the schedule continued from the right step. Drop any one ingredient and that stops being true: without
# the optimizer's state, AdamW would restart its running averages from zero; without the generators'
# states, the dropout masks and the batch order differ (Exercise 7.2 measures that one).
#
# Loading is strict. Every tensor's name, shape and type is checked against the model *before* anything
# is copied; a file that does not fit raises one error that names the tensor, and the model stays as it
# was. A damaged file gets a clear message too:

# %%
def show_error(fn):
    try:
        fn()
    except (ValueError, FileNotFoundError) as err:
        print(
            f"{type(err).__name__}:",
            str(err).replace(str(checkpoint_dir), "<checkpoint_dir>"),
        )


other = GPTModel(
    dataclasses.replace(model.cfg, emb_dim=2 * model.cfg.emb_dim)
)
before = {k: v.clone() for k, v in other.state_dict().items()}
show_error(
    lambda: load_checkpoint(checkpoint_dir / "resume.safetensors", other)
)
assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())

data = (checkpoint_dir / "resume.safetensors").read_bytes()
(checkpoint_dir / "truncated.safetensors").write_bytes(
    data[: len(data) // 2]
)
show_error(
    lambda: load_checkpoint(
        checkpoint_dir / "truncated.safetensors", model_r
    )
)

# %% [markdown]
# **The transformers format.** Other tools expect GPT-2 checkpoints as Hugging Face's `transformers`
# writes them: a folder with `config.json` and `model.safetensors`, with OpenAI's tensor names and
# layout. `helpers.gpt2.save_hf_checkpoint` (Chapter 9 explains the mapping) writes our trained model
# that way, and `transformers.GPT2LMHeadModel.from_pretrained` loads it:

# %%
hf_dir = save_hf_checkpoint(model, checkpoint_dir / "hf-gpt2")
print(sorted(p.name for p in hf_dir.iterdir()))
# no "Loading weights" bar in the output
transformers_logging.disable_progress_bar()
hf_model = GPT2LMHeadModel.from_pretrained(hf_dir).to(device).eval()
model.eval()
prompt = torch.tensor(
    [tokenizer.encode("Every effort moves you")], device=device
)
with torch.no_grad():
    ours_logits, hf_logits = model(prompt), hf_model(prompt).logits
    hf_ids = hf_model.generate(
        prompt,
        max_new_tokens=30,
        do_sample=False,
        pad_token_id=tokenizer.eot_token,
    )
print(
    f"largest logit difference {(ours_logits - hf_logits).abs().max():.1e}"
)
print(
    "transformers:", tokenizer.decode(hf_ids[0].tolist()).replace("\n", " ")
)
assert torch.allclose(ours_logits, hf_logits, atol=1e-4)
assert torch.equal(hf_ids, generate_greedy(model, prompt, 30))

# %% [markdown]
# ## 7.3 How fast is our training loop?
#
# Our model is built for reading, not for speed; how much does that cost? `throughput_comparison` trains
# our `GPTModel` and `transformers`' `GPT2LMHeadModel`, built from one configuration (the book's small
# shape; with query/key/value biases, which GPT-2's format always has), on the same batch with AdamW,
# taking turns, and reports tokens per second for each. The same measurement runs as
# `benchmarks/train_throughput.py`.

# %% tags=["nbval-ignore-output"]
bench_cfg = dataclasses.replace(settings.model, qkv_bias=True)
with torch.device(device):
    r = throughput_comparison(
        bench_cfg, batch_size=settings.batch_size, repeat=5
    )
print(
    f"ours {r['ours_tokens_per_s']:,.0f} tokens/s, transformers "
    f"{r['transformers_tokens_per_s']:,.0f} tokens/s, ratio "
    f"ours/transformers {r['ratio']:.2f}"
)

# %% [markdown]
# With the default settings, the ratio printed above is close to 1 (above 1 would mean ours is faster).
# That is no accident of this machine: at this shape almost all the work is the multiplication by the 50,257 x 64 output matrix and
# its gradients, which both models hand to the same matrix-multiply routine; the block, where the two
# implementations differ (our explicit LayerNorm and GELU, three query/key/value matrices instead of
# GPT-2's fused one), is a small part of the step. Run `benchmarks/train_throughput.py --preset gpt2-small`
# for the 124M shape, where the blocks dominate.
#
# ## 7.4 Project: a model that invents animal and fruit names
#
# Everything so far trained on one long text cut into windows. Many datasets are instead many short,
# separate sequences. Our project: teach a tiny GPT, one character per token, the shape of animal and
# fruit names, and let it invent new ones. The names are typed below (hundreds of common English names,
# listed for this book).

# %%
ANIMALS = """
aardvark albatross alligator alpaca anaconda anchovy angelfish ant anteater
antelope armadillo baboon badger barracuda bat bear beaver bee beetle bison
boar bobcat buffalo butterfly buzzard camel canary capybara caribou carp
cassowary cat caterpillar catfish chameleon cheetah chicken chimpanzee
chinchilla chipmunk cicada clam cobra cockatoo cockroach cod condor coyote
crab crane cricket crocodile crow cuckoo deer dingo dodo dog dolphin donkey
dove dragonfly duck dugong eagle eel egret elephant elk emu falcon ferret
finch firefly flamingo flounder fox frog gazelle gecko gerbil gibbon giraffe
gnat gnu goat goldfinch goose gopher gorilla grasshopper grouse gull hamster
hare hawk hedgehog heron herring hippopotamus hornet horse hummingbird hyena
ibex ibis iguana impala jackal jaguar jellyfish kangaroo kingfisher kiwi
koala kookaburra ladybug lemming lemur leopard lion lizard llama lobster
locust loris lynx macaw magpie mallard manatee mandrill marmot meerkat mink
mole mongoose monkey moose mosquito moth mouse mule narwhal newt nightingale
ocelot octopus opossum orangutan orca ostrich otter owl ox oyster panda
panther parrot partridge peacock pelican penguin pheasant pig pigeon piranha
platypus pony porcupine porpoise possum prawn puffin puma python quail rabbit
raccoon rat raven reindeer rhinoceros robin salamander salmon sardine
scorpion seahorse seal shark sheep shrew shrimp skunk sloth slug snail snake
sparrow spider squid squirrel starfish stingray stork swallow swan tapir
tarantula termite tiger toad tortoise toucan trout tuna turkey turtle viper
vulture wallaby walrus wasp weasel whale wolf wolverine wombat woodpecker
worm yak zebra
""".split()
FRUITS = """
acerola ackee apple apricot avocado banana barberry bilberry blackberry
blackcurrant blueberry boysenberry breadfruit calamansi cantaloupe carambola
cherimoya cherry chokeberry citron clementine cloudberry coconut cranberry
currant damson date dewberry dragonfruit durian elderberry feijoa fig
gooseberry grape grapefruit guava honeydew huckleberry jabuticaba jackfruit
jostaberry jujube kiwano kumquat langsat lemon lime lingonberry loganberry
longan loquat lucuma lychee mamey mandarin mango mangosteen marionberry
marula medlar melon mirabelle mulberry nance nectarine olive orange papaya
passionfruit pawpaw peach pear persimmon pineapple pitanga pitaya plantain
plum pomegranate pomelo quince raisin rambutan raspberry redcurrant rowan
salak salmonberry santol sapodilla sapote satsuma serviceberry sloe soursop
starfruit strawberry tamarillo tamarind tangerine tangelo tayberry watermelon
wolfberry yuzu
""".split()
NAMES = sorted(set(ANIMALS + FRUITS))
print(f"{len(ANIMALS)} animals + {len(FRUITS)} fruits = {len(NAMES)} names, "
      f"{min(map(len, NAMES))} to {max(map(len, NAMES))} letters")
assert len(NAMES) == len(ANIMALS) + len(FRUITS) and all(
    n.isalpha() and n.islower() for n in NAMES
)

# %% [markdown]
# Three special tokens turn names into training sequences. `<bos>` (beginning of sequence) starts every
# name, so that the model has something to predict the first letter from; `<eos>` (end of sequence) ends
# it, so the model learns when a name is finished and we know when to stop generating; `<pad>` fills each
# sequence up to one common length, so that names of different lengths stack into one `(B, T)` tensor.

# %%
SPECIALS = ["<pad>", "<bos>", "<eos>"]
itos = SPECIALS + sorted(set("".join(NAMES)))  # id -> token
stoi = {s: i for i, s in enumerate(itos)}  # token -> id
PAD, BOS, EOS = stoi["<pad>"], stoi["<bos>"], stoi["<eos>"]
SEQ_LEN = max(map(len, NAMES)) + 2  # the longest name plus <bos> and <eos>


def encode_name(name):
    ids = [BOS] + [stoi[c] for c in name] + [EOS]
    return ids + [PAD] * (SEQ_LEN - len(ids))


example = encode_name("fig")
print(f"{len(itos)} tokens; 'fig' -> {example}")
print("inputs :", [itos[i] for i in example[:-1]])
print("targets:", [itos[i] for i in example[1:]])

# %% [markdown]
# Inputs and targets are the sequence without its last and without its first token. The positions whose
# target is `<pad>` must not count: predicting "`<pad>` after `<pad>`" is trivially easy and says nothing
# about names. `F.cross_entropy(..., ignore_index=PAD)` drops those positions from the mean. The cell
# below shows how much padding would otherwise dilute the loss of an untrained model.

# %%
generator = torch.Generator().manual_seed(123)
order = torch.randperm(len(NAMES), generator=generator).tolist()
val_names = [NAMES[i] for i in order[: len(NAMES) // 10]]
train_names = [NAMES[i] for i in order[len(NAMES) // 10:]]


def names_loader(names, shuffle):
    seqs = torch.tensor([encode_name(n) for n in names])  # (N, SEQ_LEN)
    return DataLoader(
        TensorDataset(seqs[:, :-1], seqs[:, 1:]),
        batch_size=32,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(123) if shuffle else None,
    )


names_train, names_val = (
    names_loader(train_names, True),
    names_loader(val_names, False),
)
torch.manual_seed(123)
names_cfg = GPTConfig(
    vocab_size=len(itos),
    context_length=SEQ_LEN - 1,
    emb_dim=64,
    n_heads=4,
    n_layers=2,
    drop_rate=0.1,
    qkv_bias=False,
    tie_weights=True,
)
names_model = GPTModel(names_cfg)
x, y = next(iter(names_val))
names_model.eval()
with torch.no_grad():
    logits = names_model(x)  # (B, T, V)
    with_pad = F.cross_entropy(logits.flatten(0, 1), y.flatten())
    without_pad = F.cross_entropy(
        logits.flatten(0, 1), y.flatten(), ignore_index=PAD
    )
real = (y != PAD).float().mean()
print(
    f"{len(train_names)} training and {len(val_names)} validation names; "
    f"{real:.0%} of target positions are real"
)
print(
    f"untrained loss: counting padding {with_pad:.3f}, ignoring it "
    f"{without_pad:.3f}, ln(V) = {math.log(len(itos)):.3f}"
)
assert torch.allclose(
    without_pad, calc_loss_batch(x, y, names_model, ignore_index=PAD)
)

# %% [markdown]
# Untrained, both are near $\ln V$. A model trained *on* the padding would learn that `<pad>`
# follows `<pad>`, and a loss that counts padding would fall for that reason alone. Ours is trained
# with `ignore_index` and never learns it, so counting padding would make its loss *rise* (Exercise
# 7.3 measures by how much). `train` takes the same `ignore_index`. The model is
# GPT-2's architecture at toy size, tied weights included. Its tensors are so small that a second CPU
# thread mostly waits for the first (and on a busy machine, for its turn), so this section runs on one.

# %%
@contextlib.contextmanager
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)

# %% tags=["nbval-ignore-output"]
names_optimizer = torch.optim.AdamW(
    names_model.parameters(), lr=3e-3, weight_decay=0.1
)
with one_thread():
    names_history = train(
        names_model,
        names_train,
        names_val,
        names_optimizer,
        num_epochs=30,
        eval_every=5 * len(names_train),
        eval_iters=None,
        ignore_index=PAD,
    )

# %%
print("\n".join(names_history.lines()))
names_best = min(
    range(len(names_history.val_loss)),
    key=names_history.val_loss.__getitem__,
)
print(
    f"lowest validation loss {names_history.val_loss[names_best]:.3f} at "
    f"epoch {names_history.epochs[names_best]}"
)
assert (
    0 < names_best < len(names_history.val_loss) - 1
    and names_history.val_loss[-1] > names_history.val_loss[names_best]
)

# %% [markdown]
# The same story in miniature: the validation loss bottoms out about halfway and drifts up while the
# training loss keeps falling. A few hundred names are not enough to learn English spelling in general;
# the model learns the list's habits, such as the ending "-berry".
#
# To invent a name, start from `<bos>`, and repeatedly *sample* the next character from the model's
# distribution (greedy decoding would produce the same name every time), until `<eos>`. A *temperature*
# divides the logits before the softmax: below 1 the distribution sharpens towards the likeliest letters,
# above 1 it flattens. Chapter 8 covers decoding in depth.

# %%
@torch.no_grad()
def invent(model, prefix="", temperature=1.0, generator=None):
    model.eval()
    ids = [BOS] + [stoi[c] for c in prefix]
    while len(ids) < SEQ_LEN - 1:
        logits = model(torch.tensor([ids]))[0, -1] / temperature  # (V,)
        next_id = torch.multinomial(
            torch.softmax(logits, dim=-1), 1, generator=generator
        ).item()
        if next_id == EOS:
            break
        ids.append(next_id)
    return "".join(itos[i] for i in ids[1:] if i not in (PAD, BOS, EOS))


generator = torch.Generator().manual_seed(2024)
with one_thread():
    invented = [invent(names_model, generator=generator) for _ in range(16)]
    for prefix in ["ca", "straw", "ze"]:
        invented += [
            invent(names_model, prefix, generator=generator)
            for _ in range(3)
        ]
new = [n for n in invented if n not in NAMES]
print("invented:", ", ".join(invented))
print(
    f"{len(new)} of {len(invented)} are not in the list; copied: "
    f"{sorted(set(invented) - set(new))}; "
    f"{sum('berr' in n for n in invented)} contain 'berr'"
)
assert len(new) >= len(invented) // 2

# %% [markdown]
# ```{admonition} Where these numbers come from
# :class: dropdown
# The schedule is GPT-3's recipe. The names project of Section 7.4 rebuilds one from an article that
# builds a "GPT-2-like" model, here with GPT-2's own block, a validation split and ignored padding.
# Every number is computed by the cells above. {ref}`seeds` lists the write-ups the book grew from.
# ```
#
# ## Summary
#
# - Warmup, cosine decay and gradient clipping change how a budget of steps is spent; measured here, on
#   the same budget, in this one run, they gave a lower validation minimum and much less
#   memorization.
# - A checkpoint must hold the weights, the optimizer's state, the position in the run and the random
#   generators' states; then resuming equals never stopping, schedule included. Safetensors stores
#   tensors without pickle, and `helpers.gpt2.save_hf_checkpoint` writes a folder that `transformers`
#   loads.
# - At the book's small shape our training step runs about as fast as `transformers`': the output
#   matrix dominates, and both hand it to the same routine.
# - Sequences of different lengths are padded, and the padding is left out of the loss (`ignore_index`).
#
# What moved into `helpers/`:
#
# | Module | Names |
# |---|---|
# | `helpers.train` | `warmup_cosine` (and `train`'s `lr_schedule`, `grad_clip`, `history`, `ignore_index`) |
# | `helpers.pretrain` | `book_model` (Chapter 6's run in one call, cached) |
# | `helpers.checkpoint` | `save_checkpoint`, `load_checkpoint` (with a sha256 digest) |
# | `helpers.bench` | `throughput_comparison` |
# | `helpers.viz` | `plot_curves` |
#
# ## Exercises

# %% [markdown]
# Each exercise whose answer is code or a value has a cell for your answer and a cell that checks
# it: `check("7.1", my_answer)` runs your answer on small cases, edge cases included, and says in
# a sentence or two what is wrong and where, with a hint, or that it is right. Until you write
# something it says "not attempted yet". The worked solution stays folded below.
#
# **Exercise 7.1.** Work out by hand the learning rate of `schedule` at the first step, at the last
# warmup step, halfway through the decay, and at the last step. Then write
# `my_lr(step, peak_lr, total_steps, warmup_steps, min_lr)` from Section 7.1's description alone
# and check it against `warmup_cosine` at those steps.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_lr(step, peak_lr, total_steps, warmup_steps, min_lr):
    raise NotImplementedError


# %%
check("7.1", my_lr)

# %% [markdown]
# ```{admonition} Solution 7.1
# :class: dropdown
# Warmup climbs in equal steps of `lr / warmup_steps`, so the first step (step 0) uses one such
# step and the last warmup step the peak. The decay runs over the remaining
# `total_steps - warmup_steps - 1` step intervals; halfway the cosine is near 0 and the rate near
# the mean of peak and floor; at the last step the cosine is -1 and the rate is the floor, 10% of
# the peak. The cell prints the four rates by hand next to `schedule`'s.
# ```

# %% tags=["hide-cell"]
def lr_by_hand(step, peak_lr, total_steps, warmup_steps, min_lr):
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    # 0 to 1
    progress = (step - warmup_steps) / max(
        1, total_steps - warmup_steps - 1
    )
    return min_lr + 0.5 * (peak_lr - min_lr) * (
        1 + math.cos(math.pi * progress)
    )


warmup, peak, floor = (
    len(train_loader_s),
    settings.lr,
    0.1 * settings.lr,
)
# step intervals from the peak down to the floor
decay = total_steps - warmup - 1
halfway = warmup + decay // 2
for step in (0, warmup - 1, halfway, total_steps - 1):
    expected = lr_by_hand(step, peak, total_steps, warmup, floor)
    print(
        f"step {step:3d}: warmup_cosine {schedule(step):.6f}, by hand "
        f"{expected:.6f}"
    )
    assert math.isclose(schedule(step), expected, rel_tol=1e-12)
assert lr_by_hand(0, peak, total_steps, warmup, floor) == peak / warmup
assert (
    lr_by_hand(total_steps - 1, peak, total_steps, warmup, floor)
    == floor
)
mid = lr_by_hand(halfway, peak, total_steps, warmup, floor)
assert abs(mid - (peak + floor) / 2) < 0.02 * peak
assert check("7.1", lr_by_hand).passed
check("7.1", lr_by_hand)

# %% [markdown]
# **Exercise 7.2.** Resume from the same checkpoint, but with
# `load_checkpoint(..., restore_rng=False)`, so that the dropout masks and the batch order come
# from whatever state the generators are in. Predict first: are the losses still those of the
# uninterrupted run? Answer `my_same_losses = True` or `False`, then run it.

# %%
my_same_losses = ...  # your answer: True or False

# %%
check("7.2", my_same_losses)

# %% [markdown]
# ```{admonition} Solution 7.2
# :class: dropdown
# No. The weights and the optimizer are the same, but the resumed epochs see the batches in another
# order and drop out other activations, so the losses part from the first evaluation after the
# checkpoint on. Exact reproducibility needs the generators' states too.
# ```

# %% tags=["hide-cell", "nbval-ignore-output"]
torch.manual_seed(0)
model_x, optimizer_x, train_loader_x, val_loader_x = setup_pretraining(
    text, tokenizer, settings, device
)
h_x = load_checkpoint(
    checkpoint_dir / "resume.safetensors",
    model_x,
    optimizer_x,
    train_loader_x,
    restore_rng=False,
)
h_x = train(
    model_x,
    train_loader_x,
    val_loader_x,
    optimizer_x,
    settings.num_epochs,
    eval_every=settings.eval_every,
    eval_iters=settings.eval_iters,
    lr_schedule=schedule,
    grad_clip=1.0,
    history=h_x,
)
print(
    f"final train loss: uninterrupted {history_s.train_loss[-1]:.4f}, "
    f"resumed without RNG state {h_x.train_loss[-1]:.4f}"
)
# the same up to the checkpoint
assert h_x.train_loss[:n_before] == history_s.train_loss[:n_before]
# different from the first evaluation after it
assert h_x.train_loss[n_before] != history_s.train_loss[n_before]
same_losses = h_x.train_loss == history_s.train_loss
assert check("7.2", same_losses).passed
check("7.2", same_losses)


# %% [markdown]
# **Exercise 7.3.** The names model was trained with `ignore_index=PAD`. Write
# `my_loss_without_padding(logits, targets, pad)`: the mean cross-entropy of `logits` `(B, T, V)`
# over the targets `(B, T)` that are not `pad`. Then compute the names model's validation loss
# with `calc_loss_loader` twice, ignoring the padding and counting it, and explain the
# difference.

# %%
# Your answer: replace `raise NotImplementedError` with your code.
def my_loss_without_padding(logits, targets, pad):
    raise NotImplementedError


# %%
check("7.3", my_loss_without_padding)

# %% [markdown]
# ```{admonition} Solution 7.3
# :class: dropdown
# Take the cross-entropy of every position (`reduction="none"`), keep the positions whose target
# is not `pad`, and average over those only: dividing by all positions would let the padding
# dilute the loss. This is what `ignore_index=PAD` does.
#
# Counting the padding positions makes the loss *higher*: the model was never asked to predict
# `<pad>` (those targets were ignored in training), so it gives `<pad>` little probability after
# `<eos>`. The padded number measures a task the model was not trained for; with padding in the
# training loss instead, the same positions would be trivially easy and would pull the loss
# down. Either way, only the loss without padding says how well the model predicts names.
# ```

# %% tags=["hide-cell"]
def loss_without_padding(logits, targets, pad):
    # (B*T, V), (B*T,)
    flat_logits, flat_targets = logits.flatten(0, 1), targets.flatten()
    per_position = F.cross_entropy(
        flat_logits, flat_targets, reduction="none"
    )
    real = flat_targets != pad  # (B*T,)
    return per_position[real].mean()


names_model.eval()
x_val, y_val = next(iter(names_val))
with torch.no_grad():
    mine = loss_without_padding(names_model(x_val), y_val, PAD)
library = calc_loss_batch(x_val, y_val, names_model, ignore_index=PAD)
assert torch.allclose(mine, library)
ignoring = calc_loss_loader(names_val, names_model, ignore_index=PAD)
counting = calc_loss_loader(names_val, names_model)
print(
    f"validation loss ignoring padding {ignoring:.3f}, counting "
    f"padding {counting:.3f}"
)
assert counting > ignoring
assert check("7.3", loss_without_padding).passed
check("7.3", loss_without_padding)


# %% [markdown]
# **Exercise 7.4.** Invent 50 names at each temperature 0.5, 1.0 and 2.0. How does the share of
# invented names that are in the list change? Predict first which temperature copies the
# most: `my_most_copies = 0.5`, `1.0` or `2.0`.

# %%
my_most_copies = ...  # your answer: 0.5, 1.0 or 2.0

# %%
check("7.4", my_most_copies)

# %% [markdown]
# ```{admonition} Solution 7.4
# :class: dropdown
# A low temperature concentrates the probability on the likeliest letters, which are those of the names
# the model has seen most clearly, so it copies more; a high temperature flattens the distribution and
# produces more, and stranger, new strings.
# ```

# %% tags=["hide-cell"]
generator = torch.Generator().manual_seed(7)
copied = {}
for temperature in (0.5, 1.0, 2.0):
    with one_thread():
        names = [
            invent(
                names_model,
                temperature=temperature,
                generator=generator,
            )
            for _ in range(50)
        ]
    copied[temperature] = sum(n in NAMES for n in names) / len(names)
    print(
        f"T = {temperature}: {copied[temperature]:.0%} copied, e.g. "
        f"{', '.join(names[:6])}"
    )
assert copied[0.5] > copied[2.0]
most_copies = max(copied, key=copied.get)
assert check("7.4", most_copies).passed
check("7.4", most_copies)

