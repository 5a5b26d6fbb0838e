"""The three terms of Gatys et al.: content, style (Gram matrices) and total variation.

Each term is a pure function, and where a target helps, a small module holds it, computed once
under ``no_grad`` so that the style and content images are never re-run per step.

Normalisation (a departure from the paper, written down in the README): the paper sums squared
errors, so its losses grow with the image's area and the weights that balance them at 256 px do
not at 1024 px. Here every term is a mean: the Gram matrix is divided by C*H*W, the content and
style errors are mean squares, and TV is a mean over pixel pairs. The same weights then give a
similar balance at any size. These are also exactly the normalisations of the reference
tutorial's code (``reduce_mean`` everywhere, Gram / (H*W*C)).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from impasto.config import TVNorm


class Statistic(Protocol):
    """What StyleLoss needs of a style statistic (``impasto.statistics`` has three)."""

    def distance(
        self,
        features: torch.Tensor,
        target: dict[str, torch.Tensor],
        mask: torch.Tensor | None = None,
        *,
        relative: bool = True,
    ) -> torch.Tensor: ...


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.promote_types(t.dtype, torch.float32))


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Channel correlations, normalised by the number of elements.

    Computed in float32 whatever the input's dtype: Gram matrices sum many products, where bf16
    loses too much.

    Shape: (B, C, H, W) -> (B, C, C).
    """
    b, c, h, w = features.shape
    flat = _at_least_float32(features).reshape(b, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of feature maps (the paper's 1/2 sum, as a mean).

    Shape: (B, C, H, W), (B, C, H, W) -> scalar.
    """
    return torch.mean((_at_least_float32(features) - _at_least_float32(target)) ** 2)


def style_loss(gram: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of Gram matrices, for one layer.

    Shape: (B, C, C), (B, C, C) -> scalar.
    """
    return torch.mean((gram - target_gram) ** 2)


class _GramDistance(torch.autograd.Function):
    """mean((G - T)^2) for G = gram_matrix(features)[0], with a hand-written backward.

    Autograd's backward of ``F F^T`` takes two matrix products and an add over the whole
    feature map; for a symmetric T (every Gram target is) the gradient is one product,
    dL/dF = 4 / (C^2 * C*H*W) * (G - T) F. A forward and backward pass of VGG-19 with the five
    style layers at 512 px took 1.53 s with it against 1.71 s without (2 cores).
    The feature map may be channels-last: it is then read as (H*W, C) without a copy.
    """

    @staticmethod
    def forward(ctx: Any, features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _, c, h, w = features.shape
        rows = _pixel_rows(features)  # (H*W, C)
        diff = (rows.T @ rows) / (c * h * w) - target
        ctx.save_for_backward(features, diff)
        return diff.pow(2).mean()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        features, diff = ctx.saved_tensors
        _, c, h, w = features.shape
        sym = (diff + diff.T) * (
            grad * 2.0 / (c * c * c * h * w)
        )  # = 4 (G - T) / ... for symmetric T
        if _channels_last(features):  # the gradient in the features' own layout
            return (_pixel_rows(features) @ sym).reshape(1, h, w, c).permute(0, 3, 1, 2), None
        return (sym @ features.reshape(c, h * w)).reshape(features.shape), None


def _channels_last(features: torch.Tensor) -> bool:
    return (
        features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous()
    )


def _pixel_rows(features: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) -> (H*W, C): a view for a channels-last map, a transposed view otherwise."""
    _, c, h, w = features.shape
    if _channels_last(features):
        return features.permute(0, 2, 3, 1).reshape(h * w, c)
    return features.reshape(c, h * w).T


def gram_distance(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``style_loss(gram_matrix(features)[0], target)`` for one image, with a faster backward.

    Shape: (1, C, H, W), (C, C) -> scalar.
    """
    if features.shape[0] != 1 or target.shape != (features.shape[1],) * 2:
        raise ValueError(
            f"expected (1, C, H, W) features and a (C, C) target, not {tuple(features.shape)}, {tuple(target.shape)}"
        )
    return _GramDistance.apply(_at_least_float32(features), target)


def tv_loss(image: torch.Tensor, norm: TVNorm = "l1") -> torch.Tensor:
    """Total variation: mean absolute (``l1``, the tutorial's form) or squared (``l2``)
    difference between horizontally and vertically neighbouring pixels.

    Shape: (B, C, H, W) -> scalar.
    """
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    if norm == "l1":
        return dx.abs().mean() + dy.abs().mean()
    if norm == "l2":
        return dx.pow(2).mean() + dy.pow(2).mean()
    raise ValueError(f"tv norm must be 'l1' or 'l2', not {norm!r}")


def relative_scale(target: torch.Tensor) -> torch.Tensor:
    """1 / mean(target^2): divides a layer's squared error into a relative error.

    Activations of different layers and networks differ in scale by orders of magnitude (Caffe
    VGG-19 conv4_1 Grams are ~1e5 times VGG-16's), so plain means make every layer weight and
    every loss weight network-specific. Relative errors make them mean the same everywhere.
    """
    return 1.0 / target.detach().float().pow(2).mean().clamp_min(1e-12)


class ContentLoss(nn.Module):
    """Content loss against fixed target features (one or more layers, averaged).

    With ``relative=True`` each layer's error is divided by the mean square of its target.
    """

    def __init__(self, targets: Mapping[str, torch.Tensor], *, relative: bool = True) -> None:
        super().__init__()
        self.layers = list(targets)
        for i, t in enumerate(targets.values()):
            self.register_buffer(f"target{i}", t.detach().float(), persistent=False)
            scale = relative_scale(t) if relative else torch.ones(())
            self.register_buffer(f"scale{i}", scale.to(t.device) / len(targets), persistent=False)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = torch.zeros((), device=self.target0.device)
        for name in self.layers:
            total = total + self.layer_term(name, features[name])
        return total

    def layer_term(
        self, name: str, features: torch.Tensor, window: tuple[slice, slice] | None = None
    ) -> torch.Tensor:
        """One layer's share of ``forward`` (0 for a layer this loss does not use).

        With ``window`` (rows, columns of the layer), ``features`` are those of that window
        only, and the term is its share of the whole layer's: the windows of a partition add
        up to the layer's term (impasto.tiling).
        """
        if name not in self.layers:
            return torch.zeros((), device=self.target0.device)
        i = self.layers.index(name)
        target, scale = getattr(self, f"target{i}"), getattr(self, f"scale{i}")
        if window is None:
            return scale * content_loss(features, target)
        part = target[..., window[0], window[1]]
        squares = (_at_least_float32(features) - part).square().sum()
        return scale * squares / target.numel()


@dataclass
class StyleTarget:
    """What one style asks of one region of the output.

    ``stats`` maps each style layer to the style image's statistics there (several styles
    blended into one, or one style's); ``masks`` maps each layer to the output region at that
    layer's resolution, (1, 1, h, w) in [0, 1] (None: everywhere); ``weight`` scales the term.
    """

    stats: dict[str, dict[str, torch.Tensor]]
    masks: dict[str, torch.Tensor] | None = None
    weight: float = 1.0


class StyleLoss(nn.Module):
    """Sum over targets (regions) and layers of weight x layer weight x style distance.

    The distance is that of ``statistic`` (one of ``impasto.statistics``, e.g. Gram matrices),
    squared (the paper's mean squared Gram difference) or, with ``squared=False``, its root.
    ``layer_weights`` are used as given; the caller normalises them (impasto: to sum to 1).
    With ``relative=True`` each layer's error is divided by the size of its target's statistics.
    """

    def __init__(
        self,
        targets: Sequence[StyleTarget],
        layer_weights: Mapping[str, float],
        *,
        statistic: Statistic,
        relative: bool = True,
        squared: bool = True,
    ) -> None:
        super().__init__()
        self.statistic = statistic
        self.squared = squared
        self.targets = list(targets)
        self.layer_weights = dict(layer_weights)
        self.relative = relative
        for t in self.targets:
            if set(t.stats) != set(self.layer_weights):
                raise ValueError(
                    f"targets for layers {sorted(t.stats)} but weights for {sorted(self.layer_weights)}"
                )

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = torch.zeros((), device=next(iter(features.values())).device)
        for name in self.layer_weights:
            total = total + self.layer_term(name, features[name])
        return total

    def layer_term(self, name: str, features: torch.Tensor) -> torch.Tensor:
        """One layer's share of ``forward``, over all targets (0 for a layer not used)."""
        total = torch.zeros((), device=features.device)
        w = self.layer_weights.get(name)
        if w is None:
            return total
        for t in self.targets:
            mask = t.masks[name] if t.masks is not None else None
            d = self.statistic.distance(features, t.stats[name], mask, relative=self.relative)
            total = total + self.weigh(d, t, w)
        return total

    def weigh(
        self, distance: torch.Tensor, target: StyleTarget, layer_weight: float
    ) -> torch.Tensor:
        """One target's term at one layer from its distance (squared, or its root)."""
        if not self.squared:
            # The distance itself: its gradient has the same size however near the target
            # is, so layers already close keep pulling. (0 only at an exact match, where
            # the clamp stops the gradient instead of making it infinite.)
            distance = distance.clamp_min(1e-20).sqrt()
        return (target.weight * layer_weight) * distance


class TVLoss(nn.Module):
    def __init__(self, norm: TVNorm = "l1") -> None:
        super().__init__()
        self.norm: TVNorm = norm

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return tv_loss(image, self.norm)
