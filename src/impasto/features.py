"""A frozen VGG that turns an image into named feature maps: ``{"conv4_2": tensor, ...}``.

Layer names are the paper's: ``conv1_1``, ``relu1_1``, ..., ``pool5``. As in the reference
tutorial (whose code applies the ReLU inside each convolution) and in Gatys et al.'s own code, a
``convB_L`` name means the activation *after* its ReLU, so ``conv4_2`` and ``relu4_2`` are the
same layer. The network is cut after the deepest layer asked for, never trained, and owns its
input normalisation: callers always pass sRGB in [0, 1].
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from impasto.errors import UsageError, did_you_mean
from impasto.weights import CAFFE_MEAN_BGR, IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, get_source, load_weights

Pooling = Literal["max", "avg"]


def layer_names(network: str) -> list[str]:
    """Every selectable layer of ``network`` in forward order (canonical names: reluB_L, poolB)."""
    names: list[str] = []
    convs = get_source(network).convs
    for i, (name, _, _) in enumerate(convs):
        names.append("relu" + name[4:])
        block = name[4]
        if i + 1 == len(convs) or convs[i + 1][0][4] != block:
            names.append(f"pool{block}")
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


def activations_per_pixel(
    layers: Iterable[str], network: str, *, pooling: Pooling = "max", recompute: bool = False
) -> float:
    """Values (4 bytes each) that a forward pass up to the deepest of ``layers`` keeps for the
    backward pass, per input pixel: the input, each ReLU's output, each pool's output and, for
    max pooling, its int64 indices (two values' worth). Exact for float32.

    With ``recompute``, what :class:`VGGFeatures` then keeps: nothing inside the segments it
    recomputes (see ``recomputed_segments``).
    """
    channels = {"relu" + name[4:]: cout for name, _, cout in get_source(network).convs}
    inside = {op for seg in recomputed_segments(layers, network) for op in seg[:-1]} if recompute else set()
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


# Recomputation is worth it where activations are largest: the full- and half-resolution
# blocks hold about two thirds of what a forward pass keeps (264 of 383 values per pixel for
# the default layers) and a quarter of its arithmetic (49 of 190 GFLOP at 512 px).
RECOMPUTE_BLOCKS = 2


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
    """The segments whose insides ``VGGFeatures(recompute=True)`` does not keep for the backward
    pass but runs again: those of more than one operation starting in the first
    ``RECOMPUTE_BLOCKS`` blocks. Only their outputs (layers the caller asked for, which the losses
    keep anyway) stay in memory."""
    return [
        seg for seg in segments(layers, network)
        if len(seg) > 1 and pools_before(seg[0], network) < RECOMPUTE_BLOCKS
    ]  # fmt: skip


def min_input_size(layers: Iterable[str], network: str) -> int:
    """The smallest image side (px) for which every layer still has at least one pixel."""
    return 2 ** max((pools_before(n, network) for n in layers), default=0)


# Where activations are kept channels-last (NHWC): oneDNN's native layout on CPUs, and what
# cuDNN's tensor cores want. On 2 AVX-512 cores the widest convolution (64 channels at 512 px)
# took 71 ms instead of 105 forward, 87 instead of 124 backward, and a forward and backward pass
# of VGG-19 with the style layers at 512 px 1.71 s instead of 1.86. The features a caller gets
# are then channels-last tensors, equal to NCHW ones up to float rounding.
CHANNELS_LAST_DEVICES = ("cpu", "cuda")


class VGGFeatures(nn.Module):
    """VGG-19 / VGG-16 feature extractor, truncated after the deepest of ``layers``.

    ``forward(image)`` returns ``{name: activation}`` for exactly the names it was built with
    (an alias such as ``conv4_2`` keys the same tensor as ``relu4_2`` would).

    With ``recompute`` set, a forward pass that builds a graph keeps only the asked-for layers
    of the first blocks and runs the operations between them again during the backward pass
    (activation checkpointing): the same gradient, for a large image several GB less memory
    and 15% more arithmetic per step.

    Shape: image (B, 3, H, W) sRGB in [0, 1] -> each activation (B, C_l, H / 2^k, W / 2^k).
    """

    def __init__(
        self,
        network: str,
        layers: Sequence[str],
        *,
        pooling: Pooling = "max",
        weights: dict[str, torch.Tensor] | None = None,
        cache: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise UsageError(f"pooling must be 'max' or 'avg', not '{pooling}'")
        if not layers:
            raise UsageError("at least one layer is needed")
        source = get_source(network)
        self.network = network
        self.pooling = pooling
        self.input_convention = source.input_convention
        self.requested = {name: canonical(name, network) for name in layers}
        self.aliases: dict[str, list[str]] = {}  # canonical layer -> the names asked for it
        for name, canon in self.requested.items():
            self.aliases.setdefault(canon, []).append(name)
        self.plan = plan(layers, network)  # forward order, truncated after the deepest layer
        self.segments = segments(layers, network)
        self.recomputed = {tuple(seg) for seg in recomputed_segments(layers, network)}
        self.recompute = False
        if weights is None:
            weights = load_weights(network, cache=cache)
        self.convs = nn.ModuleDict()
        for name, cin, cout in source.convs:
            if "relu" + name[4:] not in self.plan:
                break
            conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1)
            conv.weight.data.copy_(weights[f"{name}.weight"])
            conv.bias.data.copy_(weights[f"{name}.bias"])
            self.convs[name] = conv
        if source.input_convention == "caffe":
            mean, scale = torch.tensor(CAFFE_MEAN_BGR) / 255.0, torch.full((3,), 255.0)
        else:
            mean, scale = torch.tensor(IMAGENET_MEAN_RGB), 1.0 / torch.tensor(IMAGENET_STD_RGB)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.to(memory_format=torch.channels_last)
        self.requires_grad_(False)
        self.eval()

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """sRGB [0, 1] -> what the weights were trained on (Caffe: BGR 0-255 minus the mean pixel)."""
        if self.input_convention == "caffe":
            image = image.flip(1)  # RGB -> BGR
        return (image - self.mean) * self.scale

    def _run(self, x: torch.Tensor, ops: Sequence[str]) -> torch.Tensor:
        for name in ops:
            if name.startswith("relu"):
                # In place: a convolution's backward needs its input, never its output, so the
                # ReLU can reuse that buffer: one full-size write fewer per layer (at 512 px, a
                # forward and backward pass went from 1.53 to 1.47 s).
                x = F.relu(self.convs["conv" + name[4:]](x), inplace=True)
            elif self.pooling == "max":
                x = F.max_pool2d(x, 2)
            else:
                x = F.avg_pool2d(x, 2)
        return x

    def forward(
        self, image: torch.Tensor, tap: Callable[[str, torch.Tensor], None] | None = None
    ) -> dict[str, torch.Tensor]:
        """``tap(name, activation)``, if given, is called for each asked-for name as soon as its
        layer is computed. A loss computed there has its backward run right after the layers
        above it, not first: the gradients of the wide, shallow layers then do not wait in
        memory through the whole backward pass (at 1536 px: 2.9 GiB peak instead of 4.1).
        """
        found: dict[str, torch.Tensor] = {}
        x = self.normalize(image)
        if x.device.type in CHANNELS_LAST_DEVICES:
            x = x.contiguous(memory_format=torch.channels_last)
        recompute = self.recompute and torch.is_grad_enabled() and x.requires_grad
        for seg in self.segments:
            if recompute and tuple(seg) in self.recomputed:
                x = checkpoint(self._run, x, seg, use_reentrant=False)
            else:
                x = self._run(x, seg)
            found[seg[-1]] = x
            if tap is not None:
                for name in self.aliases[seg[-1]]:
                    tap(name, x)
        return {name: found[canon] for name, canon in self.requested.items()}
