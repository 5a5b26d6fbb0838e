"""A frozen VGG that turns an image into named feature maps: ``{"conv4_2": tensor, ...}``.

Layer names are the paper's: ``conv1_1``, ``relu1_1``, ..., ``pool5``. As in the reference
tutorial (whose code applies the ReLU inside each convolution) and in Gatys et al.'s own code, a
``convB_L`` name means the activation *after* its ReLU, so ``conv4_2`` and ``relu4_2`` are the
same layer. The network is cut after the deepest layer asked for, never trained, and owns its
input normalisation: callers always pass sRGB in [0, 1].
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

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


def activations_per_pixel(layers: Iterable[str], network: str) -> float:
    """Activation values one input pixel costs in a forward pass up to the deepest of ``layers``
    (each convolution keeps its output and its ReLU's; pools shrink everything after them)."""
    channels = {"relu" + name[4:]: cout for name, _, cout in get_source(network).convs}
    total, area, last = 0.0, 1.0, 3
    for name in plan(layers, network):
        if name.startswith("pool"):
            area /= 4
            total += last * area
        else:
            last = channels[name]
            total += 2 * last * area
    return total


def min_input_size(layers: Iterable[str], network: str) -> int:
    """The smallest image side (px) for which every layer still has at least one pixel."""
    return 2 ** max((pools_before(n, network) for n in layers), default=0)


class VGGFeatures(nn.Module):
    """VGG-19 / VGG-16 feature extractor, truncated after the deepest of ``layers``.

    ``forward(image)`` returns ``{name: activation}`` for exactly the names it was built with
    (an alias such as ``conv4_2`` keys the same tensor as ``relu4_2`` would).

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
        self.plan = plan(layers, network)  # forward order, truncated after the deepest layer
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
        self.requires_grad_(False)
        self.eval()

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """sRGB [0, 1] -> what the weights were trained on (Caffe: BGR 0-255 minus the mean pixel)."""
        if self.input_convention == "caffe":
            image = image.flip(1)  # RGB -> BGR
        return (image - self.mean) * self.scale

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        wanted = set(self.requested.values())
        found: dict[str, torch.Tensor] = {}
        x = self.normalize(image)
        for name in self.plan:
            if name.startswith("relu"):
                x = F.relu(self.convs["conv" + name[4:]](x))
            elif self.pooling == "max":
                x = F.max_pool2d(x, 2)
            else:
                x = F.avg_pool2d(x, 2)
            if name in wanted:
                found[name] = x
        return {name: found[canon] for name, canon in self.requested.items()}
