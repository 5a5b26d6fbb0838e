"""``stylize()``: the whole method, top to bottom.

image -> features -> losses -> optimize -> image
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from impasto import color, regions
from impasto.allocator import reuse_freed_memory
from impasto.checkpoint import load_checkpoint, save_checkpoint, to_device
from impasto.config import StyleConfig
from impasto.errors import InputError, UsageError
from impasto.features import VGGFeatures, activations_per_pixel, min_input_size, plan
from impasto.image import load_image, long_side_size, resize_to, to_tensor
from impasto.losses import ContentLoss, StyleLoss, StyleTarget, TVLoss
from impasto.optimize import Progress, ProgressFn, optimize
from impasto.statistics import StyleStatistic, get_statistic

ImageLike = str | os.PathLike[str] | Image.Image | torch.Tensor

# A checkpoint every this many steps by default: at 512 px the L-BFGS history makes it ~300 MB,
# written in well under a second, against ~50 s of work between two of them.
CHECKPOINT_EVERY = 25


@dataclass
class Inputs:
    """The images of a run as the run uses them: resized to their working sizes, on the CPU.

    ``content_masks`` are the output regions as given (0, 1 or one per style); ``style_masks``
    has one entry per style (None: the whole style image).
    """

    content: torch.Tensor
    styles: list[torch.Tensor]
    content_masks: list[torch.Tensor] = field(default_factory=list)
    style_masks: list[torch.Tensor | None] = field(default_factory=list)


def stylize(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    config: StyleConfig | None = None,
    *,
    content_masks: Sequence[ImageLike] = (),
    style_masks: Sequence[ImageLike | None] = (),
    on_progress: ProgressFn | None = None,
    cache: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY,
    checkpoint_extra: dict[str, Any] | None = None,
) -> torch.Tensor:
    """Paint ``content`` in the manner of ``style``; return the image, (1, 3, H, W) in [0, 1] on the CPU.

    ``content`` and ``style`` are paths, PIL images or tensors (1, 3, H, W) in [0, 1]; ``style``
    may be a list of them, blended by ``config.style_blend``. ``content_masks`` (grey images,
    white = the region) send each style to a region of the output; ``style_masks`` take each
    style's statistics from a region of its image (see ``impasto.regions``).
    ``on_progress`` receives a ``Progress`` after every step. With ``checkpoint``, the run's
    state is written there every ``checkpoint_every`` steps and on Ctrl-C, for ``resume``
    (``checkpoint_extra``: anything JSON-like the caller wants back then). Save the result with
    ``impasto.save_image(image, "out.png")``.
    """
    config = config or StyleConfig()
    inputs = prepare_inputs(config, content, style, content_masks, style_masks)
    return run(
        inputs, config, on_progress=on_progress, cache=cache,
        checkpoint=checkpoint, checkpoint_every=checkpoint_every, checkpoint_extra=checkpoint_extra,
    )  # fmt: skip


def resume(
    checkpoint: str | os.PathLike[str] | dict[str, Any],
    *,
    on_progress: ProgressFn | None = None,
    cache: str | os.PathLike[str] | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY,
    save_to: str | os.PathLike[str] | None = None,
) -> torch.Tensor:
    """Continue an interrupted run from its checkpoint (a path, or the dict ``load_checkpoint``
    read); the result equals that of the run uninterrupted. Further checkpoints go to
    ``save_to`` (default: the same path)."""
    payload = load_checkpoint(checkpoint) if not isinstance(checkpoint, dict) else checkpoint
    if save_to is None and not isinstance(checkpoint, dict):
        save_to = checkpoint
    config = StyleConfig(**StyleConfig.stored(payload["config"]))
    inputs = Inputs(**payload["inputs"])
    return run(
        inputs, config, on_progress=on_progress, cache=cache, checkpoint=save_to,
        checkpoint_every=checkpoint_every, checkpoint_extra=payload.get("extra"), state=payload["state"],
    )  # fmt: skip


def run(
    inputs: Inputs,
    config: StyleConfig,
    *,
    on_progress: ProgressFn | None = None,
    cache: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY,
    checkpoint_extra: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
) -> torch.Tensor:
    """The optimisation itself, on prepared inputs (``stylize`` and ``resume`` end here).

    Coarse to fine: each scale of ``config.schedule()`` is a full optimisation at that size,
    with content and style targets computed there, started from the previous scale's result
    upsampled (the first from ``config.init``). The last scale is the requested size.
    """
    device = resolve_device(config.device)
    schedule = config.schedule()
    # The schedule written out step for step, so that a checkpoint resumes on the steps it was
    # started with even if a later version changes the default schedule.
    config = config.replace(iterations=tuple(steps for _, steps in schedule))
    if state is None:  # the starting image first: a bad --init costs nothing
        content, styles = colored_inputs(config, inputs_at(inputs, config, schedule[0][0]))
        start = initial_image(config, content, styles[0])
        start = color.luminance(start) if config.colors == "luminance" else start
    net = VGGFeatures(
        config.network, config.content_layers + config.style_layers, pooling=config.pooling, cache=cache
    ).to(device)
    dtype = compute_dtype(config.precision, device)

    def extractor(x: torch.Tensor, tap: Callable[[str, torch.Tensor], None] | None = None) -> dict[str, torch.Tensor]:
        def full_precision_tap(name: str, f: torch.Tensor) -> None:
            assert tap is not None
            with torch.autocast(device.type, enabled=False):  # losses and Grams in float32
                tap(name, f)

        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            return net(x, full_precision_tap if tap is not None else None)

    total = sum(steps for _, steps in schedule)
    first = state.get("scale", 0) if state is not None else 0
    before = state.get("before", 0.0) if state is not None else 0.0
    image: torch.Tensor | None = None
    # Freed blocks stay in the process for the next step to reuse, and go back to the system
    # when the run ends (see impasto.allocator). On a CPU, and only for runs that stay under
    # RECOMPUTE_PIXELS: above, the heap's fragmentation costs more memory than it is worth
    # (a 2048 px run peaked at 10.0 GiB keeping them at every scale, and 5.89 GiB instead of
    # 5.43 when only its scales up to 1024 px kept them).
    keep = device.type == "cpu" and not recomputes(*inputs.content.shape[-2:])  # the largest scale
    with reuse_freed_memory(enabled=keep):
        for index in range(first, len(schedule)):
            long_side, steps = schedule[index]
            scaled = inputs_at(inputs, config, long_side)
            resuming = state if index == first else None
            if resuming is not None:
                init = scaled.content  # replaced by the checkpoint's image
            elif image is None:
                init = start
            else:
                init = resize_to(image, *scaled.content.shape[-2:])
                init = color.luminance(init) if config.colors == "luminance" else init
            offset = sum(n for _, n in schedule[:index])
            net.recompute = recomputes(*scaled.content.shape[-2:])
            image, elapsed = _run_scale(
                scaled, config, extractor, device, init, steps,
                on_progress=on_progress, position=(index, len(schedule), offset, total, before),
                checkpoint=checkpoint, checkpoint_every=checkpoint_every, checkpoint_extra=checkpoint_extra,
                full_inputs=inputs, state=resuming,
            )  # fmt: skip
            before += elapsed
    assert image is not None
    return image.cpu()


def _run_scale(
    scaled: Inputs,
    config: StyleConfig,
    extractor: Callable[..., dict[str, torch.Tensor]],
    device: torch.device,
    init: torch.Tensor,
    steps: int,
    *,
    on_progress: ProgressFn | None,
    position: tuple[int, int, int, int, float],
    checkpoint: str | os.PathLike[str] | None,
    checkpoint_every: int,
    checkpoint_extra: dict[str, Any] | None,
    full_inputs: Inputs,
    state: dict[str, Any] | None,
) -> tuple[torch.Tensor, float]:
    """One scale of a run: targets at this size, then the optimiser. Returns the image as the
    user sees it (colours put back) and the seconds this scale took."""
    index, n_scales, offset, total, before = position
    content, styles = colored_inputs(config, scaled)
    # Targets are computed once per scale, here, and never again per step.
    relative = config.loss_normalization == "relative"
    with torch.no_grad():
        content_features = extractor(content.to(device))
        content_target = ContentLoss(pick(content_features, config.content_layers), relative=relative)
        style_target = StyleLoss(
            style_targets(config, extractor, styles, scaled, content_features, device),
            dict(zip(config.style_layers, config.normalized_style_layer_weights)),
            statistic=config.style_loss,
            relative=relative,
            squared=config.style_distance == "squared",
        )
        del content_features
    tv = TVLoss(config.tv_norm)
    style_weight = config.style_weight * (config.coarse_style if index == 0 and n_scales > 1 else 1.0)

    def loss_fn(x: torch.Tensor) -> dict[str, torch.Tensor]:
        # Each layer's terms are taken as soon as the network reaches it (see VGGFeatures.forward):
        # same loss, less memory in the backward pass.
        terms: dict[str, list[torch.Tensor]] = {"content": [], "style": []}

        def tap(name: str, f: torch.Tensor) -> None:
            if name in config.content_layers:
                terms["content"].append(content_target.layer_term(name, f))
            if name in config.style_layers:
                terms["style"].append(style_target.layer_term(name, f))

        extractor(x, tap)
        return {
            "content": config.content_weight * sum(terms["content"], torch.zeros((), device=x.device)),
            "style": style_weight * sum(terms["style"], torch.zeros((), device=x.device)),
            "tv": config.tv_weight * tv(x),
        }

    def finish(x: torch.Tensor) -> torch.Tensor:
        """The optimised image as the user sees it (with the photo's colours put back)."""
        return color.with_chroma_of(x, scaled.content.to(x.device)) if config.colors == "luminance" else x

    def report(p: Progress) -> None:
        if on_progress is None:
            return
        image = p.image if p.image is None or config.colors != "luminance" else finish(p.image)
        on_progress(p.replace(step=offset + p.step, total_steps=total, elapsed=before + p.elapsed,
                              image=image, scale=index + 1, scales=n_scales))  # fmt: skip

    def save(st: dict[str, Any]) -> None:
        assert checkpoint is not None
        st = st | {"scale": index, "before": before}
        payload = {"config": config.to_dict(), "inputs": asdict(full_inputs), "state": st, "extra": checkpoint_extra}
        save_checkpoint(checkpoint, payload)

    h, w = content.shape[-2:]
    started = time.perf_counter() - (state["elapsed"] if state is not None else 0.0)
    result = optimize(
        init.to(device),
        loss_fn,
        optimizer=config.optimizer,
        iterations=steps,
        lr=config.lr,
        tolerance=config.tolerance,
        history_size=lbfgs_history(h, w),
        on_progress=report,
        on_checkpoint=save if checkpoint is not None else None,
        checkpoint_every=checkpoint_every,
        resume=to_device(state, device) if state is not None else None,
    )
    return finish(result), time.perf_counter() - started


# ----------------------------------------------------------------------------------------------
# The steps of a run.


def prepare_inputs(
    config: StyleConfig,
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    content_masks: Sequence[ImageLike] = (),
    style_masks: Sequence[ImageLike | None] = (),
) -> Inputs:
    """Read and resize the images and masks, after checking sizes and memory (before any
    weights load, so that a bad size costs nothing)."""
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise UsageError("no style image given: give at least one")
    n = len(styles)
    names = ["style image"] if n == 1 else [f"style image {i}" for i in range(1, n + 1)]
    config.style_weights_for(n)  # raise now if --style-blend does not fit
    scales = config.style_scales_for(n)
    images = {"content image": as_image(content, "content image")}
    images |= {name: as_image(s, name) for name, s in zip(names, styles)}
    long_sides = [config.size] + [max(1, round(config.size * k)) for k in scales]
    sizes = {what: long_side_size(*img.shape[-2:], side) for (what, img), side in zip(images.items(), long_sides)}
    native = {what: tuple(img.shape[-2:]) for what, img in images.items()}
    check_sizes(config, sizes, resolve_device(config.device), native=native)
    check_smallest_scale(config, sizes)
    resized = {what: resize_to(img, *sizes[what]) for what, img in images.items()}

    if style_masks and len(style_masks) != n:
        raise InputError(f"{len(style_masks)} style masks for {n} style images: give one per style image, or none")
    c_masks = [
        regions.fit_mask(regions.to_mask(as_image(m, "content mask")), sizes["content image"],
                         f"content mask {i}", "content image", native["content image"])
        for i, m in enumerate(content_masks, 1)
    ]  # fmt: skip
    regions.assign(c_masks, n)  # raise now if the count does not fit
    s_masks = [
        None if m is None else regions.fit_mask(regions.to_mask(as_image(m, "style mask")), sizes[name],
                                                f"style mask {i}", name, native[name])
        for i, (m, name) in enumerate(zip(style_masks, names), 1)
    ]  # fmt: skip
    return Inputs(resized["content image"], [resized[name] for name in names], c_masks, s_masks or [None] * n)


def colored_inputs(config: StyleConfig, inputs: Inputs) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The content and styles as the network sees them under --colors."""
    if config.colors == "match":
        return inputs.content, [color.match_colors(s, inputs.content) for s in inputs.styles]
    if config.colors == "luminance":
        grey = color.luminance(inputs.content)
        return grey, [color.match_luminance(color.luminance(s), grey) for s in inputs.styles]
    return inputs.content, inputs.styles


def style_targets(
    config: StyleConfig,
    extractor: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    styles: list[torch.Tensor],
    inputs: Inputs,
    content_features: dict[str, torch.Tensor],
    device: torch.device,
) -> list[StyleTarget]:
    """The style statistics to match, per output region.

    Without content masks the styles' statistics are blended into one target (as
    jcjohnson/neural-style blends Gram matrices). With them each style has its own region,
    weighted by the region's share of the image, so that every painted pixel feels the same
    pull whatever its region's size (and by its --style-blend weight relative to the mean).
    """
    stat = get_statistic(config.style_loss)
    weights = config.style_weights_for(len(styles))
    layers = config.style_layers
    per_style = [
        style_statistics(stat, pick(extractor(s.to(device)), layers), m, f"style mask {i}")
        for i, (s, m) in enumerate(zip(styles, inputs.style_masks), 1)
    ]
    areas = regions.assign(inputs.content_masks, len(styles))
    if all(a is None for a in areas):
        if len(per_style) == 1:
            return [StyleTarget(per_style[0])]
        return [StyleTarget({layer: stat.blend([s[layer] for s in per_style], weights) for layer in layers})]
    targets = []
    mean_weight = sum(weights) / len(weights)
    for i, (stats, area, w) in enumerate(zip(per_style, areas, weights), 1):
        if area is None:
            targets.append(StyleTarget(stats, None, w / mean_weight))
            continue
        area = area.to(device)
        masks = {layer: regions.at_layer(area, content_features[layer]) for layer in layers}
        for layer, m in masks.items():
            regions.check_at_layer(m, layer, f"the region of style {i}")
        targets.append(StyleTarget(stats, masks, w / mean_weight * float(area.mean())))
    return targets


def style_statistics(
    stat: StyleStatistic, features: dict[str, torch.Tensor], mask: torch.Tensor | None, what: str
) -> dict[str, dict[str, torch.Tensor]]:
    out = {}
    for layer, f in features.items():
        m = None
        if mask is not None:
            m = regions.at_layer(mask.to(f.device), f)
            regions.check_at_layer(m, layer, what)
        out[layer] = stat.of(f, m)
    return out


def inputs_at(inputs: Inputs, config: StyleConfig, long_side: int) -> Inputs:
    """The inputs at one scale of the run: the content at ``long_side``, each style and mask
    shrunk by the same factor (so --style-scale keeps its meaning at every scale)."""
    if long_side == config.size:
        return inputs
    factor = long_side / config.size

    def shrink(image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        return resize_to(image, max(1, round(h * factor)), max(1, round(w * factor)))

    def fit(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(mask, size=like.shape[-2:], mode="area")

    content = resize_to(inputs.content, *long_side_size(*inputs.content.shape[-2:], long_side))
    styles = [shrink(s) for s in inputs.styles]
    return Inputs(
        content,
        styles,
        [fit(m, content) for m in inputs.content_masks],
        [None if m is None else fit(m, s) for m, s in zip(inputs.style_masks, styles)],
    )


def lbfgs_history(height: int, width: int) -> int:
    """L-BFGS memory: 50 pairs as usual, fewer for large images, so that the history (two
    image-sized float32 vectors per pair) stays under about 0.5 GB (5 pairs at 2048 x 2048)."""
    per_pair = 2 * 3 * height * width * 4
    return max(5, min(50, 2**29 // per_pair))


# Above this many pixels the network recomputes its first blocks in the backward pass instead
# of keeping them (features.VGGFeatures.recompute): at 2048 x 2048 that keeps 2.6 GiB less
# (168 of 383 values per pixel).
RECOMPUTE_PIXELS = 1024 * 1024
# Values per pixel that freed but kept memory adds to a run's peak (see memory_needed).
REUSE_ALLOWANCE = 64
# The program itself, its weights and its inputs: about what a small run's process holds.
BASE_MEMORY = 2**30


def recomputes(height: int, width: int) -> bool:
    """Whether an image of this size is optimised with recomputed activations."""
    return height * width > RECOMPUTE_PIXELS


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


def compute_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the network under --precision, or None for plain float32.

    ``auto`` keeps float32 on CPUs: on the 2-core AVX-512-BF16 machine impasto is developed on,
    VGG-19 forward + backward at 512 px took 2.57 s under bf16 autocast against 1.82 s in fp32
    (oneDNN's bf16 convolutions there are slower than its fp32 ones); CPUs with AMX may differ,
    and ``--precision bf16`` is there for them.
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
    h, w = sizes["content image"]
    need_bytes = memory_needed(config, h, w)
    have = available_memory(device)
    if have is not None and need_bytes > have:
        raise UsageError(
            f"--size {config.size} would need about {_gb(need_bytes)} of memory and this machine has "
            f"{_gb(have)} available; use a smaller --size"
        )


def memory_needed(config: StyleConfig, height: int, width: int) -> int:
    """Bytes a run at this output size needs at its peak, on a CPU: the activations the backward
    pass keeps, one gradient of a 64-channel layer at full size (the widest buffer alive in the
    backward pass, as the losses are taken layer by layer), the L-BFGS history and the program
    itself. The style image goes through once, without gradients, before the steps, and needs
    less.

    Where freed memory is kept for reuse (up to RECOMPUTE_PIXELS), blocks that the heap cannot
    fit back together add to the peak: a 1024 x 1024 run (25 steps) peaked at 3.39 GiB with it,
    2.83 GiB without, where this gives 3.49 GiB.

    Measured: a 2048 x 2048 run (astronaut x Starry Night, 6 steps at 2048, so a full 5-pair
    history) peaked at 5.43 GiB of resident memory, where this gives 5.8 GiB. Before activation
    recomputation, layer-by-layer losses and the smaller history it peaked at 10.1 GiB.
    """
    pixels = height * width
    layers = config.content_layers + config.style_layers
    kept = activations_per_pixel(layers, config.network, pooling=config.pooling, recompute=recomputes(height, width))
    transient = 64
    history = lbfgs_history(height, width) * 2 * 3
    kept_freed = 0 if recomputes(height, width) else REUSE_ALLOWANCE
    return int((kept + transient + history + kept_freed) * 4 * pixels + BASE_MEMORY)


def check_smallest_scale(config: StyleConfig, sizes: dict[str, tuple[int, int]]) -> None:
    """Refuse a --min-size at which an image would be too small for the deepest layer."""
    smallest = config.scale_sizes()[0]
    if smallest == config.size:
        return
    layers = config.content_layers + config.style_layers
    need = min_input_size(layers, config.network)
    deepest = plan(layers, config.network)[-1].replace("relu", "conv")
    factor = smallest / config.size
    for what, (h, w) in sizes.items():
        sh, sw = max(1, round(h * factor)), max(1, round(w * factor))
        if min(sh, sw) < need:
            raise InputError(
                f"{what} is {sw}x{sh} px at the smallest scale (--min-size {config.min_size}); {deepest} needs "
                f"at least {need}x{need} px (use a larger --min-size, or --single-scale)"
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
