"""Where a run goes and what it needs: the device, the network's precision, and memory.

Every check here happens before any weights load or any large tensor exists, so a size that
cannot fit costs nothing but the message.
"""

from __future__ import annotations

import torch

from impasto.config import StyleConfig
from impasto.errors import InputError, UsageError
from impasto.layers import (
    activations_per_pixel,
    canonical,
    convs,
    display_name,
    min_input_size,
    plan,
    pools_before,
    reach,
)
from impasto.statistics import get_statistic
from impasto.tiles import TileGrid

# Above this many pixels the network recomputes its first blocks in the backward pass instead
# of keeping them (features.VGGFeatures.recompute): at 2048 x 2048 that keeps 2.6 GiB less.
RECOMPUTE_PIXELS = 1024 * 1024
# Values per pixel that freed but kept memory adds to a run's peak (impasto.allocator).
REUSE_ALLOWANCE = 64
# The program itself, its weights and its inputs: about what a small run's process holds.
BASE_MEMORY = 2**30
# The widest activation of a forward pass (64 channels at full size), live with its input.
WIDEST_PASS = 2 * 64
# The tile sides --tile auto chooses from, largest first (the halo costs less on a larger tile).
TILE_SIDES = (4096, 3072, 2048, 1536, 1024, 768, 512, 384, 256)
# L-BFGS pairs kept however large the image (each is two image-sized float32 vectors).
MIN_HISTORY = 2


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda, then mps, then cpu; a device asked for by name must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            "--device cuda was asked for, but this machine has no CUDA device that torch can use"
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise UsageError(
            "--device mps was asked for, but this machine has no Apple GPU that torch can use"
        )
    return torch.device(name)


def compute_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the network under --precision, or None for plain float32.

    ``auto`` keeps float32 on CPUs, where oneDNN's bf16 and fp16 convolutions were slower than
    its float32 ones on the CPUs measured (docs/benchmarks.md), and uses bf16 (else fp16) on CUDA.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def recomputes(height: int, width: int) -> bool:
    """Whether an image of this size is optimised with recomputed activations."""
    return height * width > RECOMPUTE_PIXELS


def lbfgs_history(height: int, width: int) -> int:
    """L-BFGS memory: 50 pairs as usual, fewer for large images, so that the history (two
    image-sized float32 vectors per pair) stays under about 0.5 GB (5 pairs at 2048 x 2048),
    and past 2048 x 2048 (where images are taken in tiles) MIN_HISTORY pairs whatever that costs:
    with fewer, L-BFGS is little more than a gradient descent."""
    per_pair = 2 * 3 * height * width * 4
    floor = 5 if height * width <= 2048 * 2048 else MIN_HISTORY
    return max(floor, min(50, 2**29 // per_pair))


def memory_needed(
    config: StyleConfig, height: int, width: int, style_pixels: int = 0, tile: int = 0
) -> int:
    """Bytes a CPU run at this output size needs at its peak, in one piece or (``tile``) in
    tiles of that side.

    In one piece, the steps keep the activations the backward pass needs, one gradient of a
    64-channel layer at full size (the losses are taken layer by layer, so that is the widest
    buffer alive), the L-BFGS history, blocks freed but kept for reuse (up to
    RECOMPUTE_PIXELS), and the program itself. Before the steps, each style image goes through
    the network once without gradients: ``style_pixels`` is the largest of them, and that pass
    needs its widest layer and that layer's input at once.

    In tiles, those passes hold one crop at a time (a tile and its halo), and what is as large
    as the image stays: see ``image_memory``.
    """
    if tile:
        return tiled_memory(config, height, width, style_pixels, tile)
    pixels = height * width
    layers = config.content_layers + config.style_layers
    recompute = recomputes(height, width)
    kept = activations_per_pixel(
        layers, config.network, pooling=config.pooling, recompute=recompute
    )
    history = lbfgs_history(height, width) * 2 * 3
    kept_freed = 0 if recompute else REUSE_ALLOWANCE
    steps = (kept + 64 + history + kept_freed) * 4 * pixels
    style_pass = WIDEST_PASS * 4 * style_pixels
    return int(max(steps, style_pass) + BASE_MEMORY)


def image_memory(config: StyleConfig, height: int, width: int, style_pixels: int = 0) -> int:
    """Bytes of a tiled run that no tile size changes: the image, its gradient and the
    optimiser's state (for L-BFGS the last image, the last gradient, the history and which
    pixels were held), the content's features at the content layers, a mask per layer (for
    regions), and the inputs themselves (the photo and the styles)."""
    pixels = height * width
    layers = config.content_layers + config.style_layers
    if config.optimizer == "lbfgs":  # see optimize.BoxLBFGS; its masks take a byte a value
        state = (2 + 2 * lbfgs_history(height, width)) * 3 * 4 + 3 * 3
    else:  # Adam's two moments, and as much again inside its step
        state = 4 * 3 * 4
    targets = sum(_values_per_pixel(layer, config) for layer in config.content_layers) * 4
    masks = sum(4 / 4 ** pools_before(layer, config.network) for layer in layers)
    inputs = 3 * 4
    per_pixel = 2 * 3 * 4 + state + targets + masks + inputs
    return int(per_pixel * pixels + 3 * 4 * style_pixels)


def tile_memory(config: StyleConfig, crop_pixels: int) -> int:
    """Bytes one crop of ``crop_pixels`` holds in a pass with gradients (its activations, the
    widest gradient, its image and gradient)."""
    layers = config.content_layers + config.style_layers
    kept = activations_per_pixel(
        layers, config.network, pooling=config.pooling, recompute=crop_pixels > RECOMPUTE_PIXELS
    )
    return int((kept + 64 + 6) * 4 * crop_pixels)


def tiled_memory(config: StyleConfig, height: int, width: int, style_pixels: int, tile: int) -> int:
    """``memory_needed`` in tiles of ``tile`` px: the image-sized buffers, plus the largest
    of one crop's pass with gradients and the passes without (which take larger tiles)."""
    grid = tile_grid(config, height, width, tile)
    crop = tile_memory(config, grid.largest_crop)
    stats = (
        WIDEST_PASS * 4 * tile_grid(config, height, width, stats_tile(config, tile)).largest_crop
    )
    return int(image_memory(config, height, width, style_pixels) + max(crop, stats) + BASE_MEMORY)


def tile_grid(config: StyleConfig, height: int, width: int, tile: int) -> TileGrid:
    """The tiles of an image of this size for ``config``'s network and layers."""
    return TileGrid.of(
        height, width, tile, config.content_layers + config.style_layers, config.network
    )


def stats_tile(config: StyleConfig, tile: int) -> int:
    """The tile side for passes without gradients when those with take ``tile``: as large as
    fits in what one of those crops holds (a pass without gradients holds its widest layer and
    that layer's input, not every activation)."""
    layers = config.content_layers + config.style_layers
    halo = sum(reach(layers, config.network))
    budget = tile_memory(config, (tile + halo) ** 2) / (WIDEST_PASS * 4)
    return max(tile, int(budget**0.5) - halo)


def plan_grids(
    config: StyleConfig,
    height: int,
    width: int,
    style_pixels: int = 0,
    available: int | None = None,
) -> tuple[TileGrid, TileGrid] | None:
    """The tiles of a scale of this size (see ``plan_tile``) for the passes with gradients and
    for those without (larger); None: in one piece."""
    tile = plan_tile(config, height, width, style_pixels, available)
    if not tile:
        return None
    return tile_grid(config, height, width, tile), tile_grid(
        config, height, width, stats_tile(config, tile)
    )


def plan_tile(
    config: StyleConfig,
    height: int,
    width: int,
    style_pixels: int = 0,
    available: int | None = None,
) -> int:
    """The side of the tiles an image of this size is optimised in; 0: in one piece.

    ``--tile 0``: never; ``--tile N``: N. Auto: 0 if the whole image fits in ``available``
    bytes, else the largest of TILE_SIDES that fits (the smallest if none does:
    ``check_sizes`` then refuses the run). Where the image is one tile, only the passes
    without gradients over a larger style image are tiled. Statistics that cannot be taken in
    tiles (histogram) are refused where the image would need more than one.
    """
    if config.tile == 0:
        return 0
    if config.tile is not None:
        tile = config.tile
    elif available is None or memory_needed(config, height, width, style_pixels) <= available:
        return 0
    else:
        fits = [
            t
            for t in TILE_SIDES
            if memory_needed(config, height, width, style_pixels, tile=t) <= available
        ]
        tile = max(fits, default=min(TILE_SIDES))
    if not get_statistic(config.style_loss).tileable:
        if len(tile_grid(config, height, width, tile)) == 1:
            return 0
        whole = memory_needed(config, height, width, style_pixels)
        have = "" if available is None else f" and this machine has {gigabytes(available)}"
        advice = "--tile 0" if config.tile else "a smaller --size"
        raise UsageError(
            f"--style-loss {config.style_loss} cannot be optimised in tiles (its sorting needs "
            f"every value of a layer at once); in one piece --size {config.size} needs about "
            f"{gigabytes(whole)} of memory{have}: use --style-loss gram or meancov, or {advice}"
        )
    return tile


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


def check_sizes(
    config: StyleConfig,
    sizes: dict[str, tuple[int, int]],
    device: torch.device,
    native: dict[str, tuple[int, int]] | None = None,
) -> None:
    """Refuse images too small for the deepest layer, at their size as read (``native``), as
    used (``sizes``: "content image" and each style's (height, width)) and at the smallest
    scale; and sizes that cannot fit in memory."""
    layers = config.content_layers + config.style_layers
    need = min_input_size(layers, config.network)
    deepest = display_name(plan(layers, config.network)[-1])
    for what, (h, w) in (native or {}).items():
        if min(h, w) < need:
            raise InputError(f"{what} is {w}x{h} px; {deepest} needs at least {need}x{need} px")
    for what, (h, w) in sizes.items():
        if min(h, w) < need:
            raise InputError(
                f"{what} is {w}x{h} px at --size {config.size}; {deepest} needs at least "
                f"{need}x{need} px (use a larger --size, or shallower layers)"
            )
    smallest = config.scale_sizes()[0]
    if smallest != config.size:
        factor = smallest / config.size
        for what, (h, w) in sizes.items():
            sh, sw = max(1, round(h * factor)), max(1, round(w * factor))
            if min(sh, sw) < need:
                raise InputError(
                    f"{what} is {sw}x{sh} px at the smallest scale (--min-size {config.min_size}); "
                    f"{deepest} needs at least {need}x{need} px (use a larger --min-size, or "
                    "--single-scale)"
                )
    h, w = sizes["content image"]
    style_pixels = max(
        (a * b for what, (a, b) in sizes.items() if what != "content image"), default=0
    )
    have = available_memory(device)
    tile = plan_tile(config, h, w, style_pixels, have)
    need_bytes = memory_needed(config, h, w, style_pixels, tile=tile)
    if have is not None and need_bytes > have:
        scaled = any(s > 1 for s in config.style_scale)
        styles = (
            f" with --style-scale {','.join(f'{s:g}' for s in config.style_scale)}"
            if scaled
            else ""
        )
        if tile:
            fixed = gigabytes(image_memory(config, h, w, style_pixels) + BASE_MEMORY)
            how = (
                f" even in tiles of {tile_grid(config, h, w, tile).tile} px (the image, the "
                f"optimiser's state and the content's features alone take {fixed})"
            )
            advice = "a smaller --size" if config.tile is None else "a smaller --tile or --size"
        else:
            how = " in one piece (--tile 0)" if config.tile == 0 else ""
            advice = "--tile auto or a smaller --size" if config.tile == 0 else "a smaller --size"
        raise UsageError(
            f"--size {config.size}{styles} would need about {gigabytes(need_bytes)} of memory"
            f"{how} and this machine has {gigabytes(have)} available; use {advice}"
            + (" or --style-scale" if scaled else "")
        )


def _values_per_pixel(layer: str, config: StyleConfig) -> float:
    """Values per input pixel of one layer's feature map (its channels over its area)."""
    canon = canonical(layer, config.network)
    block = int(canon[4])
    channels = [c for name, _, c in convs(config.network) if int(name[4]) == block][-1]
    return channels / 4 ** pools_before(layer, config.network)


def gigabytes(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n < 2**40 else f"{n / 2**40:.1f} TB"
