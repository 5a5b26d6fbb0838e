"""The images of a run as the run uses them: read, checked, resized, coloured, and the start.

Everything here happens before any weights load, so that a bad file, a size that cannot work
or a missing mask costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from impasto import color, regions
from impasto.budget import check_sizes
from impasto.config import INITS, StyleConfig
from impasto.errors import InputError, UsageError
from impasto.image import load_image, long_side_size, resize_to, to_tensor

ImageLike = str | os.PathLike[str] | Image.Image | torch.Tensor


@dataclass
class Inputs:
    """The images of a run, resized to the size of its last scale, on the CPU.

    ``content_masks`` are the output regions as given (0, 1 or one per style); ``style_masks``
    has one entry per style (None: the whole style image).

    Shape: every image (1, 3, H, W) in [0, 1]; every mask (1, 1, H, W) in [0, 1].
    """

    content: torch.Tensor
    styles: list[torch.Tensor]
    content_masks: list[torch.Tensor] = field(default_factory=list)
    style_masks: list[torch.Tensor | None] = field(default_factory=list)

    def at(self, config: StyleConfig, long_side: int) -> Inputs:
        """The inputs at one scale of the run: the content at ``long_side``, each style and mask
        shrunk by the same factor (so --style-scale keeps its meaning at every scale)."""
        if long_side == config.size:
            return self
        factor = long_side / config.size

        def shrink(image: torch.Tensor) -> torch.Tensor:
            h, w = image.shape[-2:]
            return resize_to(image, max(1, round(h * factor)), max(1, round(w * factor)))

        def fit(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
            return F.interpolate(mask, size=like.shape[-2:], mode="area")

        content = resize_to(self.content, *long_side_size(*self.content.shape[-2:], long_side))
        styles = [shrink(s) for s in self.styles]
        return Inputs(
            content,
            styles,
            [fit(m, content) for m in self.content_masks],
            [None if m is None else fit(m, s) for m, s in zip(self.style_masks, styles)],
        )

    def colored(self, config: StyleConfig) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The content and styles as the network sees them under --colors."""
        if config.colors == "match":
            return self.content, [color.match_colors(s, self.content) for s in self.styles]
        if config.colors == "luminance":
            grey = color.luminance(self.content)
            return grey, [color.match_luminance(color.luminance(s), grey) for s in self.styles]
        return self.content, self.styles


def prepare_inputs(
    config: StyleConfig,
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    content_masks: Sequence[ImageLike] = (),
    style_masks: Sequence[ImageLike | None] = (),
    *,
    device: torch.device,
) -> Inputs:
    """Read and resize the images and masks, after checking their sizes and the memory the run
    needs on ``device``."""
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise UsageError("no style image given: give at least one")
    n = len(styles)
    names = ["style image"] if n == 1 else [f"style image {i}" for i in range(1, n + 1)]
    config.style_weights_for(n)  # raise now if --style-blend does not fit
    scales = config.style_scales_for(n)
    long_sides = [config.size] + [max(1, round(config.size * k)) for k in scales]
    fits = dict(zip(["content image", *names], long_sides))
    # Each file is decoded no larger than its use needs (a 100-megapixel photo for a 512 px run).
    images = {"content image": as_image(content, "content image", config.size)}
    images |= {name: as_image(s, name, fits[name]) for name, s in zip(names, styles)}
    sizes = {
        what: long_side_size(*img.shape[-2:], side)
        for (what, img), side in zip(images.items(), long_sides)
    }
    native = {what: (int(img.shape[-2]), int(img.shape[-1])) for what, img in images.items()}
    check_sizes(config, sizes, device, native=native)
    resized = {what: resize_to(img, *sizes[what]) for what, img in images.items()}

    if style_masks and len(style_masks) != n:
        raise InputError(
            f"{len(style_masks)} style masks for {n} style images: give one per style image, or none"
        )
    c_masks = [
        regions.fit_mask(
            regions.to_mask(as_image(m, "content mask", config.size)),
            sizes["content image"],
            f"content mask {i}",
            "content image",
            native["content image"],
        )
        for i, m in enumerate(content_masks, 1)
    ]
    regions.assign(c_masks, n)  # raise now if the count does not fit
    s_masks = [
        None
        if m is None
        else regions.fit_mask(
            regions.to_mask(as_image(m, "style mask", fits[name])),
            sizes[name],
            f"style mask {i}",
            name,
            native[name],
        )
        for i, (m, name) in enumerate(zip(style_masks, names), 1)
    ]
    return Inputs(
        resized["content image"], [resized[name] for name in names], c_masks, s_masks or [None] * n
    )


def as_image(source: ImageLike, what: str, fit: int | None = None) -> torch.Tensor:
    """A path, PIL image or tensor -> (1, 3, H, W) float32 in [0, 1]; a file much larger than
    ``fit`` (the long side it will be used at) is decoded reduced (see load_image)."""
    if isinstance(source, torch.Tensor):
        t = source.detach().float()
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4 or t.shape[:2] != (1, 3):
            raise UsageError(
                f"{what} tensor must have shape (1, 3, H, W), found {tuple(source.shape)}"
            )
        return t.clamp(0, 1).cpu()
    if isinstance(source, Image.Image):
        return to_tensor(source, fit=fit)
    return load_image(source, what=what, fit=fit)


def initial_image(config: StyleConfig, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The starting point: the content photo, uniform noise, the style image, or an image file."""
    _, _, h, w = content.shape
    if config.init == "content":
        return content.clone()
    if config.init == "noise":
        generator = torch.Generator().manual_seed(config.seed)
        return torch.rand(content.shape, generator=generator)
    if config.init == "style":
        return resize_to(style, h, w)
    path = Path(config.init)
    if not path.exists():
        raise InputError(
            f"--init must be {', '.join(repr(i) for i in INITS)} or the path of an image; "
            f"'{config.init}' is none of these"
        )
    return resize_to(load_image(path, what="init image", fit=max(h, w)), h, w)
