"""``stylize()``: the whole method, top to bottom.

image -> features -> losses -> optimize -> image
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from impasto.config import StyleConfig
from impasto.errors import InputError, UsageError
from impasto.features import VGGFeatures, activations_per_pixel, min_input_size, plan
from impasto.image import load_image, long_side_size, resize_to, to_tensor
from impasto.losses import ContentLoss, StyleLoss, TVLoss
from impasto.optimize import ProgressFn, optimize

ImageLike = str | os.PathLike[str] | Image.Image | torch.Tensor


def stylize(
    content: ImageLike,
    style: ImageLike,
    config: StyleConfig | None = None,
    *,
    on_progress: ProgressFn | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> torch.Tensor:
    """Paint ``content`` in the manner of ``style``; return the image, (1, 3, H, W) in [0, 1] on the CPU.

    ``content`` and ``style`` are paths, PIL images or tensors (1, 3, H, W) in [0, 1].
    ``on_progress`` receives a ``Progress`` after every step. Save the result with
    ``impasto.save_image(image, "out.png")``.
    """
    config = config or StyleConfig()
    device = resolve_device(config.device)

    images = {"content image": as_image(content, "content image"), "style image": as_image(style, "style image")}
    sizes = {
        what: long_side_size(*img.shape[-2:], config.size if what == "content image" else style_size(config))
        for what, img in images.items()
    }
    native = {what: tuple(img.shape[-2:]) for what, img in images.items()}
    check_sizes(config, sizes, device, native=native)  # before anything large is allocated
    content_img, style_img = (resize_to(images[what], *sizes[what]) for what in ("content image", "style image"))
    init = initial_image(config, content_img, style_img).to(device)

    extractor = VGGFeatures(
        config.network, config.content_layers + config.style_layers, pooling=config.pooling, cache=cache
    ).to(device)
    content_img, style_img = content_img.to(device), style_img.to(device)

    # Targets are computed once, here, and never again per step.
    relative = config.loss_normalization == "relative"
    with torch.no_grad():
        content_target = ContentLoss(pick(extractor(content_img), config.content_layers), relative=relative)
        style_target = StyleLoss.from_features(
            pick(extractor(style_img), config.style_layers), config.normalized_style_layer_weights, relative=relative
        )
    tv = TVLoss(config.tv_norm)

    def loss_fn(x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = extractor(x)
        return {
            "content": config.content_weight * content_target(features),
            "style": config.style_weight * style_target(features),
            "tv": config.tv_weight * tv(x),
        }

    result = optimize(
        init,
        loss_fn,
        optimizer=config.optimizer,
        iterations=config.iterations,
        lr=config.lr,
        tolerance=config.tolerance,
        on_progress=on_progress,
    )
    return result.cpu()


def pick(features: dict[str, torch.Tensor], names: Sequence[str]) -> dict[str, torch.Tensor]:
    return {name: features[name] for name in names}


def as_image(source: ImageLike, what: str) -> torch.Tensor:
    """A path, PIL image or tensor -> (1, 3, H, W) float32 in [0, 1]."""
    if isinstance(source, torch.Tensor):
        t = source.detach().float()
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4 or t.shape[:2] != (1, 3):
            raise UsageError(f"{what} tensor must have shape (1, 3, H, W), found {tuple(source.shape)}")
        return t.clamp(0, 1).cpu()
    if isinstance(source, Image.Image):
        return to_tensor(source)
    return load_image(source, what=what)


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
            f"--init must be 'content', 'noise', 'style' or the path of an image; '{config.init}' is none of these"
        )
    return resize_to(load_image(path, what="init image"), h, w)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but this machine has no CUDA device that torch can use")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps was asked for, but this machine has no Apple GPU that torch can use")
    return torch.device(name)


# ----------------------------------------------------------------------------------------------
# Checks made before any weights load, so that a bad size costs nothing.


def style_size(config: StyleConfig) -> int:
    """Long side of the style image: --style-scale times the output's."""
    return max(1, round(config.size * config.style_scale))


def check_sizes(
    config: StyleConfig,
    sizes: dict[str, tuple[int, int]],
    device: torch.device,
    native: dict[str, tuple[int, ...]] | None = None,
) -> None:
    """Refuse images too small for the deepest layer, and sizes that cannot fit in memory.

    ``sizes`` maps "content image" / "style image" to the (height, width) they will be used at,
    ``native`` to their size as read (an image too small to hold the style is refused even if
    --size would blow it up).
    """
    layers = config.content_layers + config.style_layers
    need = min_input_size(layers, config.network)
    deepest = plan(layers, config.network)[-1].replace("relu", "conv")  # the name users know
    for what, (h, w) in (native or {}).items():
        if min(h, w) < need:
            raise InputError(f"{what} is {w}x{h} px; {deepest} needs at least {need}x{need} px")
    for what, (h, w) in sizes.items():
        if min(h, w) < need:
            raise InputError(
                f"{what} is {w}x{h} px at --size {config.size}; {deepest} needs at least {need}x{need} px "
                f"(use a larger --size, or shallower layers)"
            )
    # Activations kept for the backward pass, x3 for gradients and allocator slack, plus the
    # L-BFGS history (50 pairs of image-sized vectors); the style image goes through once.
    h, w = sizes["content image"]
    per_pixel = activations_per_pixel(layers, config.network) * 4 * 3
    pixels = sum(a * b for a, b in sizes.values())
    need_bytes = int(per_pixel * pixels + 2 * 50 * 3 * h * w * 4)
    have = available_memory(device)
    if have is not None and need_bytes > have:
        raise UsageError(
            f"--size {config.size} would need about {_gb(need_bytes)} of memory and this machine has "
            f"{_gb(have)} available; use a smaller --size"
        )


def available_memory(device: torch.device) -> int | None:
    """Free memory that a run could use on ``device``, or None where it cannot be told."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n < 2**40 else f"{n / 2**40:.1f} TB"
