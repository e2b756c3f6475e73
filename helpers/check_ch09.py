"""The checks of Chapter 9's exercises (GPT-2's weights); see :mod:`helpers.check`.

The cases compare the reader's answer with :func:`helpers.gpt2.weight_mapping`,
:func:`helpers.gpt2.hf_state_dict` and :func:`helpers.perplexity.window_plan` on GPT-2's presets
and tiny configurations; nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from helpers.check import Wrong
from helpers.gpt2 import hf_state_dict, weight_mapping
from helpers.model import GPTConfig, GPTModel, predicted_parameters
from helpers.perplexity import window_plan

TINY = GPTConfig(vocab_size=40, context_length=16, emb_dim=16, n_heads=2, n_layers=2,
                 drop_rate=0.0)


def check_9_1(fn) -> str:
    cases = [("GPT-2 small", GPTConfig.from_preset("gpt2-small")),
             ("GPT-2 XL", GPTConfig.from_preset("gpt2-xl")),
             ("a tiny untied model with 10 tokens and C = 64 (two tensors tie for largest)",
              dataclasses.replace(TINY, vocab_size=10, emb_dim=64, tie_weights=False))]
    for name, cfg in cases:
        sizes = {r.hub_name: math.prod(r.hub_shape) for r in weight_mapping(cfg)
                 if r.transform != "tied to wte"}
        total = predicted_parameters(cfg)
        biggest = max(sizes.values())
        got = fn(cfg)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise Wrong(f"On {name}, your function should return a pair (hub_name, share).")
        hub_name, share = got
        if sizes.get(hub_name) != biggest:
            raise Wrong(f"On {name}, {hub_name!r} is not the largest tensor. Hint: compare "
                        "the number of elements, the product of hub_shape, over every row.")
        if math.isclose(share, 100 * biggest / total, rel_tol=1e-6):
            raise Wrong(f"On {name}, {share:.1f} looks like a percentage. Hint: give the "
                        "fraction, between 0 and 1.")
        tied_total = sum(math.prod(r.hub_shape) for r in weight_mapping(cfg))
        if cfg.tie_weights and math.isclose(share, biggest / tied_total, rel_tol=1e-6):
            raise Wrong(f"On {name}, your total counts the tied head as a tensor of its own. "
                        "Hint: the row 'tied to wte' holds no parameters.")
        if not math.isclose(share, biggest / total, rel_tol=1e-6):
            raise Wrong(f"On {name}, the share {share:.4f} is not right; expected about "
                        f"{biggest / total:.3f}. Hint: divide by the sum of every row's size.")
    return "GPT-2 small and XL and a tiny untied model where two tensors tie for the largest"


def check_9_2(fn) -> str:
    for name, cfg in [("GPT-2 small", GPTConfig.from_preset("gpt2-small")),
                      ("a tiny model, 3 blocks, context 16", dataclasses.replace(TINY,
                                                                                 n_layers=3))]:
        expected = cfg.n_layers * cfg.context_length**2 * 4
        got = fn(cfg)
        if got == expected:
            continue
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            raise Wrong(f"On {name}, your function returned {type(got).__name__}, not a number "
                        "of bytes.")
        if got * 4 == expected:
            raise Wrong(f"On {name}, you count one byte per mask entry. Hint: the hub's masks "
                        "are float32 tensors.")
        if got * cfg.n_layers == expected:
            raise Wrong(f"On {name}, you count one mask. Hint: every block has its own.")
        if got * cfg.context_length == expected:
            raise Wrong(f"On {name}, you count one row per position. Hint: a mask is "
                        "(1, 1, T, T).")
        raise Wrong(f"On {name}, {got:,} bytes is not right. Hint: count the entries of each "
                    "block's (1, 1, T, T) tensor, then 4 bytes each.")
    return "GPT-2 small (50,331,648 bytes) and a tiny model"


def check_9_3(answer) -> str:
    if not isinstance(answer, (int, float)) or isinstance(answer, bool):
        raise Wrong("The answer should be a number, the file size of bfloat16 over float32.")
    if abs(answer - 0.25) < 0.05:
        raise Wrong("bfloat16 has a 16-bit, not 8-bit, number. Hint: count the bytes of one "
                    "number in each format.")
    if abs(answer - 1.0) < 0.05:
        raise Wrong("The file holds what was saved, whatever the model it is loaded into. Hint: "
                    "how many bytes does one bfloat16 number take?")
    if abs(answer - 0.5) > 0.05:
        raise Wrong(f"{answer} is not right. Hint: the file is almost only the tensors' bytes.")
    return "the prediction (the cell below measures it)"


def check_9_4(fn) -> str:
    cases = [(256, 256), (256, 128), (256, 64), (256, 32), (8, 7), (8, 1)]
    for context, stride in cases:
        plan = window_plan(4 * context + 5, context, stride)
        expected = min(f - b for b, e, f in plan[1:])
        got = fn(context, stride)
        if got == expected:
            continue
        name = f"context {context}, stride {stride}"
        if stride == context and got == 0:
            raise Wrong(f"On {name}, you gave 0. Hint: with non-overlapping windows, a window's "
                        "first token is not scored (nothing before it); what about the second?")
        raise Wrong(f"On {name}, you gave {got}, expected {expected}. Hint: a window's scored "
                    "tokens start where the previous window's ended.")
    return "strides 256, 128, 64 and 32 of a 256-token context, and strides 7 and 1 of 8"


def check_9_5(fn) -> str:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(8)
        model = GPTModel(dataclasses.replace(TINY, qkv_bias=True)).eval()
        for block in model.trf_blocks:  # random biases, so that each one shows
            for lin in (block.att.W_query, block.att.W_key, block.att.W_value):
                torch.nn.init.normal_(lin.bias)
    written = hf_state_dict(model)
    for i, block in enumerate(model.trf_blocks):
        weight, bias = (written[f"transformer.h.{i}.attn.c_attn.{n}"] for n in ("weight", "bias"))
        got = fn(block.att)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise Wrong("Your function should return a pair (weight, bias).")
        w, b = got
        if not isinstance(w, torch.Tensor) or w.shape != weight.shape:
            shape = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
            raise Wrong(f"On block {i}, your weight is {shape}, the hub's is "
                        f"{tuple(weight.shape)}. Hint: Conv1D stores (in, out), nn.Linear "
                        "(out, in).")
        if not torch.equal(w, weight):
            if torch.equal(w.chunk(3, dim=1)[0], weight.chunk(3, dim=1)[1]):
                raise Wrong(f"On block {i}, your weight has the right shape but the parts are "
                            "in another order. Hint: query, key, value.")
            raise Wrong(f"On block {i}, your weight has the right shape but other numbers. "
                        "Hint: transpose each of the three weights, then put them side by side.")
        if not isinstance(b, torch.Tensor) or not torch.equal(b, bias):
            raise Wrong(f"On block {i}, your bias is not the hub's (3C,) bias. Hint: the three "
                        "biases one after the other, in the same order as the weights.")
    return "both blocks of a tiny model with random query, key and value biases"


CHECKS = {"9.1": check_9_1, "9.2": check_9_2, "9.3": check_9_3, "9.4": check_9_4,
          "9.5": check_9_5}
