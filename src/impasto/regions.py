"""Regions: which style goes where (guided Gram matrices, Gatys et al. 2017, section 4).

A content mask says where in the output a style applies (white = here); a style mask says which
part of a style image its statistics come from. Masks are grey images; every layer sees them
resized to its own resolution by area averaging, so a soft edge stays soft.

With one style and one content mask the style paints the white region only, and the rest keeps
the photo. With two styles and one content mask the first style paints the white region, the
second the black. Otherwise there is one content mask per style.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from impasto.errors import InputError

# A region smaller than this share of a layer's pixels has no statistics worth matching there.
MIN_LAYER_PIXELS = 1.0


def to_mask(image: torch.Tensor) -> torch.Tensor:
    """A grey mask from an image: the mean of its channels.

    Shape: (1, C, H, W) in [0, 1] -> (1, 1, H, W) in [0, 1].
    """
    return image.float().mean(dim=1, keepdim=True).clamp(0, 1)


def fit_mask(
    mask: torch.Tensor, size: tuple[int, int], what: str, image_what: str, native: tuple[int, int]
) -> torch.Tensor:
    """Resize ``mask`` to ``size`` (H, W) after checking it has the shape of the image it masks.

    ``native`` is that image's (H, W) as read: a mask must have its aspect ratio (within 2%, so a
    mask saved at half size by an editor is fine), and must not be empty.

    Shape: (1, 1, h, w) -> (1, 1, H, W).
    """
    mh, mw = mask.shape[-2:]
    ih, iw = native
    if abs((mw / mh) / (iw / ih) - 1) > 0.02:
        raise InputError(
            f"{what} is {mw}x{mh} px but the {image_what} is {iw}x{ih} px; a mask must have the "
            f"shape of the image it masks (the same size, or scaled)"
        )
    fitted = F.interpolate(mask, size=size, mode="area") if (mh, mw) != size else mask
    if float(fitted.max()) <= 0.5:
        raise InputError(
            f"{what} has no white pixels: its region is empty (white = the region, black = not)"
        )
    return fitted


def assign(content_masks: Sequence[torch.Tensor], n_styles: int) -> list[torch.Tensor | None]:
    """One output region per style, from the content masks given (see the module's docstring).

    Returns ``[None] * n_styles`` when no mask is given (every style everywhere).
    """
    if not content_masks:
        return [None] * n_styles
    if len(content_masks) == n_styles:
        return list(content_masks)
    if len(content_masks) == 1 and n_styles == 2:
        return [content_masks[0], 1 - content_masks[0]]
    raise InputError(
        f"{len(content_masks)} content masks for {n_styles} style images: give one mask per style "
        f"(or, with two styles, one mask: white for the first style, black for the second)"
    )


def at_layer(mask: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """The mask at a layer's resolution (area average).

    Shape: (1, 1, H, W), (1, C, h, w) -> (1, 1, h, w).
    """
    h, w = features.shape[-2:]
    return at_size(mask, (h, w))


def at_size(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The mask at a layer of ``size`` (h, w), known without its features (area average).

    Shape: (1, 1, H, W) -> (1, 1, h, w).
    """
    return F.interpolate(mask, size=size, mode="area") if tuple(mask.shape[-2:]) != size else mask


def check_at_layer(mask: torch.Tensor, layer: str, what: str) -> None:
    """Refuse a region that vanishes at a layer (fewer than one pixel's worth of weight)."""
    if float(mask.sum()) < MIN_LAYER_PIXELS:
        raise InputError(
            f"{what} is too small for {layer}: at that layer's resolution ({mask.shape[-1]}x{mask.shape[-2]}) "
            f"it covers less than one pixel; enlarge the region or use shallower --style-layers"
        )
