"""Resizing image tensors: to an exact size, or to a given long side keeping the aspect ratio."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["long_side_size", "resize_long_side", "resize_to"]


def resize_long_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize so that the longer side is ``size`` pixels, keeping the aspect ratio.

    The shorter side is rounded to the nearest pixel (halves up), and is at least 1 pixel.
    See :func:`resize_to` for the filtering.

    Shape:
        ``(N, C, H, W)`` -> ``(N, C, H', W')`` with ``max(H', W') == size``.

    Raises:
        ValueError: ``size`` is not a positive integer, or the tensor is not 4-D.
    """
    height, width = _spatial_size(image)
    return resize_to(image, *long_side_size(height, width, size))


def long_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """``(height, width)`` scaled so that the longer side is ``size``, as resize_long_side does."""
    if size < 1:
        raise ValueError(f"size must be at least 1 pixel, got {size}")
    if height >= width:
        return size, _scaled_side(width, size / height)
    return _scaled_side(height, size / width), size


def resize_to(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize to exactly ``height`` x ``width`` pixels (the aspect ratio may change).

    Bicubic, antialiased when either side shrinks (plain bicubic sampling of a large photo
    aliases into moiré that the style loss then happily amplifies), and clamped to ``[0, 1]``
    because bicubic overshoots at edges. Returns the input itself when it already has that size.

    Shape:
        ``(N, C, H, W)`` -> ``(N, C, height, width)``, same dtype and device.

    Raises:
        ValueError: a target side is below 1, or the tensor is not 4-D.
    """
    if height < 1 or width < 1:
        raise ValueError(f"target size must be at least 1x1 pixels, got {height}x{width}")
    old_height, old_width = _spatial_size(image)
    if (old_height, old_width) == (height, width):
        return image
    shrinking = height < old_height or width < old_width
    resized = F.interpolate(
        image,
        size=(height, width),
        mode="bicubic",
        align_corners=False,
        antialias=shrinking,
    )
    return resized.clamp(0.0, 1.0)


def _spatial_size(image: torch.Tensor) -> tuple[int, int]:
    """(H, W) of a 4-D image tensor. Shape: ``(N, C, H, W)``."""
    if image.dim() != 4:
        raise ValueError(f"expected an image tensor (N, C, H, W), got {tuple(image.shape)}")
    return int(image.shape[-2]), int(image.shape[-1])


def _scaled_side(side: int, scale: float) -> int:
    """``side * scale`` rounded half up (not to even, so results do not flip between sizes)."""
    return max(1, math.floor(side * scale + 0.5))
