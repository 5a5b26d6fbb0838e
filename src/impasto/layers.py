"""VGG's layers by name: the tables every other module reads, and no torch.

Layer names are the paper's: ``conv1_1``, ``relu1_1``, ..., ``pool5``. As in the reference
tutorial (whose code applies the ReLU inside each convolution) and in Gatys et al.'s own code, a
``convB_L`` name means the activation *after* its ReLU, so ``conv4_2`` and ``relu4_2`` are the
same layer. This module only knows shapes and names, so the options can be checked (and the
command line can start) without importing torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from impasto.errors import UsageError, did_you_mean

Network = Literal["vgg19", "vgg16"]
Pooling = Literal["max", "avg"]

# (name, in_channels, out_channels) of every 3x3 convolution, in order; a 2x2 pool follows the
# last convolution of each block.
VGG19_CONVS: tuple[tuple[str, int, int], ...] = (
    ("conv1_1", 3, 64),
    ("conv1_2", 64, 64),
    ("conv2_1", 64, 128),
    ("conv2_2", 128, 128),
    ("conv3_1", 128, 256),
    ("conv3_2", 256, 256),
    ("conv3_3", 256, 256),
    ("conv3_4", 256, 256),
    ("conv4_1", 256, 512),
    ("conv4_2", 512, 512),
    ("conv4_3", 512, 512),
    ("conv4_4", 512, 512),
    ("conv5_1", 512, 512),
    ("conv5_2", 512, 512),
    ("conv5_3", 512, 512),
    ("conv5_4", 512, 512),
)
VGG16_CONVS: tuple[tuple[str, int, int], ...] = tuple(
    c for c in VGG19_CONVS if c[0] not in ("conv3_4", "conv4_4", "conv5_4")
)
CONVS: dict[str, tuple[tuple[str, int, int], ...]] = {"vgg19": VGG19_CONVS, "vgg16": VGG16_CONVS}

# Recomputation is worth it where activations are largest: the full- and half-resolution
# blocks hold about two thirds of what a forward pass keeps (264 of 383 values per pixel for
# the default layers) and a quarter of its arithmetic.
RECOMPUTE_BLOCKS = 2


def convs(network: str) -> tuple[tuple[str, int, int], ...]:
    """The convolutions of ``network``; an unknown name is the user's error."""
    try:
        return CONVS[network]
    except KeyError:
        raise UsageError(
            f"unknown network '{network}'{did_you_mean(network, CONVS)}; "
            f"choose one of {', '.join(CONVS)}"
        ) from None


def layer_names(network: str) -> list[str]:
    """Every selectable layer of ``network`` in forward order (canonical names: reluB_L, poolB)."""
    table = convs(network)
    names: list[str] = []
    for i, (name, _, _) in enumerate(table):
        names.append("relu" + name[4:])
        if i + 1 == len(table) or table[i + 1][0][4] != name[4]:
            names.append(f"pool{name[4]}")
    return names


def canonical(name: str, network: str) -> str:
    """``conv4_2`` -> ``relu4_2`` (post-ReLU, as in the tutorial); raise UsageError if unknown."""
    all_names = layer_names(network)
    canon = "relu" + name[4:] if name.startswith("conv") else name
    if canon not in all_names:
        spellings = all_names + ["conv" + n[4:] for n in all_names if n.startswith("relu")]
        raise UsageError(
            f"unknown layer '{name}' for {network}{did_you_mean(name, spellings)}; "
            f"run 'impasto layers --network {network}' to list them"
        )
    return canon


def display_name(canon: str) -> str:
    """The name users know a canonical layer by: ``relu4_1`` -> ``conv4_1``."""
    return canon.replace("relu", "conv")


def pools_before(layer: str, network: str) -> int:
    """How many 2x2 poolings the input has gone through when it reaches ``layer``."""
    canon = canonical(layer, network)
    block = int(canon[4])  # relu4_2 -> 4, pool5 -> 5
    return block if canon.startswith("pool") else block - 1


def plan(layers: Iterable[str], network: str) -> list[str]:
    """The layers a forward pass goes through to reach every one of ``layers``, in order."""
    order = layer_names(network)
    deepest = max(order.index(canonical(n, network)) for n in layers)
    return order[: deepest + 1]


def min_input_size(layers: Iterable[str], network: str) -> int:
    """The smallest image side (px) for which every layer still has at least one pixel."""
    return 2 ** max((pools_before(n, network) for n in layers), default=0)


def receptive_radius(layers: Iterable[str], network: str) -> int:
    """How far (px) an input pixel can be from a position of the deepest of ``layers`` and still
    change it: half the receptive field, from the 3x3 convolutions and 2x2 pools on the way."""
    radius, stride = 0, 1
    for name in plan(layers, network):
        if name.startswith("pool"):
            radius += stride  # a 2x2 window reaches one more input cell at this stride
            stride *= 2
        else:
            radius += stride  # a 3x3 convolution reaches one cell further on each side
    return radius


def reach(layers: Iterable[str], network: str) -> tuple[int, int]:
    """How far (px) before and after a span of input pixels the pixels that can change the
    features of that span reach, at every one of ``layers``: the halo a tile needs.

    A span [a, b) of the input, with a and b on the pooling grid (multiples of
    ``pooling_grid``), is the span [a / s, b / s) of a layer at stride s; its features there
    depend on the input pixels [a - before, b + after) and no others. Traced back through the
    plan: a 3x3 convolution (padding 1) widens a span by one cell on each side, a 2x2 pool
    doubles its ends. (``receptive_radius`` is the reach of one position, measured from its
    first pixel: 85 px to conv5_1 on VGG-19, where a span's is 70 on each side.)
    """
    order = plan(layers, network)
    wanted = {canonical(n, network) for n in layers}
    before = after = 0
    for i, name in enumerate(order):
        if name not in wanted:
            continue
        lo, hi = 0, 0  # the span [a, b) at this layer, with a = b = 0, traced back to the input
        for op in reversed(order[: i + 1]):
            lo, hi = (2 * lo, 2 * hi) if op.startswith("pool") else (lo - 1, hi + 1)
        before, after = max(before, -lo), max(after, hi)
    return before, after


def pooling_grid(layers: Iterable[str], network: str) -> int:
    """The stride (px) of the deepest of ``layers``: tiles cut on multiples of it see the same
    2x2 pooling windows as the whole image."""
    return 2 ** pools_before(plan(layers, network)[-1], network)


def segments(layers: Iterable[str], network: str) -> list[list[str]]:
    """The forward pass cut after each of ``layers``: lists of operations (reluB_L, poolB)."""
    wanted = {canonical(n, network) for n in layers}
    out: list[list[str]] = [[]]
    for name in plan(layers, network):
        out[-1].append(name)
        if name in wanted:
            out.append([])
    return [seg for seg in out if seg]


def recomputed_segments(layers: Iterable[str], network: str) -> list[list[str]]:
    """The segments a network that recomputes activations does not keep for the backward pass
    but runs again: those of more than one operation starting in the first ``RECOMPUTE_BLOCKS``
    blocks. Only their outputs (layers the caller asked for, which the losses keep anyway) stay
    in memory."""
    return [
        seg
        for seg in segments(layers, network)
        if len(seg) > 1 and pools_before(seg[0], network) < RECOMPUTE_BLOCKS
    ]


def activations_per_pixel(
    layers: Iterable[str], network: str, *, pooling: Pooling = "max", recompute: bool = False
) -> float:
    """Values (4 bytes each) that a forward pass up to the deepest of ``layers`` keeps for the
    backward pass, per input pixel: the input, each ReLU's output, each pool's output and, for
    max pooling, its int64 indices (two values' worth). Exact for float32.

    With ``recompute``, nothing inside the segments that are recomputed is kept.
    """
    layers = list(layers)
    channels = {"relu" + name[4:]: cout for name, _, cout in convs(network)}
    inside = set()
    if recompute:
        inside = {op for seg in recomputed_segments(layers, network) for op in seg[:-1]}
    total, area, last = 3.0, 1.0, 3
    for name in plan(layers, network):
        if name.startswith("pool"):
            area /= 4
            cost = last * area * (3 if pooling == "max" else 1)
        else:
            last = channels[name]
            cost = last * area
        if name not in inside:
            total += cost
    return total
