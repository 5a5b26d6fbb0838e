"""Where a run goes and what it needs: the device, the network's precision, and memory.

Every check here happens before any weights load or any large tensor exists, so a size that
cannot fit costs nothing but the message.
"""

from __future__ import annotations

import torch

from impasto.config import StyleConfig
from impasto.errors import InputError, UsageError
from impasto.layers import activations_per_pixel, display_name, min_input_size, plan

# Above this many pixels the network recomputes its first blocks in the backward pass instead
# of keeping them (features.VGGFeatures.recompute): at 2048 x 2048 that keeps 2.6 GiB less.
RECOMPUTE_PIXELS = 1024 * 1024
# Values per pixel that freed but kept memory adds to a run's peak (impasto.allocator).
REUSE_ALLOWANCE = 64
# The program itself, its weights and its inputs: about what a small run's process holds.
BASE_MEMORY = 2**30
# The widest activation of a forward pass (64 channels at full size), live with its input.
WIDEST_PASS = 2 * 64


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
    image-sized float32 vectors per pair) stays under about 0.5 GB (5 pairs at 2048 x 2048)."""
    per_pair = 2 * 3 * height * width * 4
    return max(5, min(50, 2**29 // per_pair))


def memory_needed(config: StyleConfig, height: int, width: int, style_pixels: int = 0) -> int:
    """Bytes a CPU run at this output size needs at its peak.

    The steps keep the activations the backward pass needs, one gradient of a 64-channel layer
    at full size (the losses are taken layer by layer, so that is the widest buffer alive), the
    L-BFGS history, blocks freed but kept for reuse (up to RECOMPUTE_PIXELS), and the program
    itself. Before the steps, each style image goes through the network once without
    gradients: ``style_pixels`` is the largest of them, and that pass needs its widest layer
    and that layer's input at once.
    """
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
    need_bytes = memory_needed(config, h, w, style_pixels)
    have = available_memory(device)
    if have is not None and need_bytes > have:
        scaled = any(s > 1 for s in config.style_scale)
        styles = (
            f" with --style-scale {','.join(f'{s:g}' for s in config.style_scale)}"
            if scaled
            else ""
        )
        raise UsageError(
            f"--size {config.size}{styles} would need about {gigabytes(need_bytes)} of memory and "
            f"this machine has {gigabytes(have)} available; use a smaller --size"
            + (" or --style-scale" if scaled else "")
        )


def gigabytes(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n < 2**40 else f"{n / 2**40:.1f} TB"
