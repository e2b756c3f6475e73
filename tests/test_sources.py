"""Audits of the write-ups the book grew from (book/references.md), kept out of the chapters.

The chapters check their running examples against the numbers those sources print (four digits);
the finer points about the sources themselves live here, so that readers never need the sources."""

import math

import torch
from torch import nn

# "Your journey starts with one step": the six 3-d vectors of Chapter 3's running example.
INPUTS = torch.tensor(
    [
        [0.43, 0.15, 0.89],
        [0.55, 0.87, 0.66],
        [0.57, 0.85, 0.64],
        [0.22, 0.58, 0.33],
        [0.77, 0.25, 0.10],
        [0.05, 0.80, 0.55],
    ]
)


def causal_weights_of_the_example():
    torch.manual_seed(123)  # the three projections, drawn in this order, as in Chapter 3
    w_query, w_key = nn.Linear(3, 2, bias=False), nn.Linear(3, 2, bias=False)
    nn.Linear(3, 2, bias=False)  # the value projection: drawn, not needed for the weights
    with torch.no_grad():
        scores = w_query(INPUTS) @ w_key(INPUTS).T / math.sqrt(2)
    mask = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    return torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)


def test_the_walkthrough_prints_the_journey_weight_to_the_last_float32_step():
    # The walk-through prints the weight of "Your" in the "journey" row with all its digits; ours
    # is within 2**-24 of it, two float32 steps near 0.48 (one step there is 2**-25): last-bit
    # differences between machines.
    weight = causal_weights_of_the_example()[1, 0].item()
    assert abs(weight - 0.48326990008354187) <= 2**-24


def test_the_published_causal_matrix_to_four_digits():
    published = torch.tensor(
        [
            [1.0000, 0, 0, 0, 0, 0],
            [0.4833, 0.5167, 0, 0, 0, 0],
            [0.3190, 0.3408, 0.3402, 0, 0, 0],
            [0.2445, 0.2545, 0.2542, 0.2468, 0, 0],
            [0.1994, 0.2060, 0.2058, 0.1935, 0.1953, 0],
            [0.1624, 0.1709, 0.1706, 0.1654, 0.1625, 0.1682],
        ]
    )
    assert torch.allclose(causal_weights_of_the_example(), published, atol=5e-5)


def test_a_shortcut_loop_without_the_shape_check_broadcasts_silently():
    # The walk-through's short version of Chapter 4's shortcut loop adds the shortcut around every
    # layer; around the last one (3 -> 1) the (1, 1) output broadcasts against the (1, 3) input.
    torch.manual_seed(123)
    sizes = [3, 3, 3, 3, 3, 1]
    layers = [nn.Sequential(nn.Linear(a, b), nn.GELU()) for a, b in zip(sizes[:-1], sizes[1:])]
    x = torch.tensor([[1.0, 0.0, -1.0]])
    for layer in layers:
        x = x + layer(x)  # no shape check
    assert x.shape == (1, 3)  # three numbers where the network should return one
