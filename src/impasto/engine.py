"""The engine: a :class:`Stylizer` loads its network once and runs many images through it.

One run, top to bottom (``Stylizer.run``), coarse to fine:

    inputs.prepare_inputs   read, check and resize the images (before any weights load)
    balance.balanced        --balance auto: the style weight this pair gets, measured once
    for each scale:
        Objective.build     content and style targets at this size (style statistics kept
                            across runs: a batch in one style computes them once per size)
        optimize            L-BFGS or Adam over the pixels, reporting every step
    -> the image, (1, 3, H, W) in [0, 1]

Every front (the command line, the web page, batches, video) runs through one engine object,
so what is expensive to build (the verified weights, the network on its device, style targets)
is built once per process.

This module is longer than 400 lines because a run's scales (``_Run``: progress, checkpoints,
tiles) stay beside the engine whose caches they use; each method (balance, tiles, colours) keeps
its own logic in its own module and adds only its call here.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch

from impasto import balance, budget, color
from impasto.allocator import reuse_freed_memory
from impasto.checkpoint import CHECKPOINT_EVERY, load_checkpoint, save_checkpoint, to_device
from impasto.config import StyleConfig
from impasto.features import VGGFeatures
from impasto.image import resize_to, to_pil
from impasto.inputs import ImageLike, Inputs, initial_image, prepare_inputs
from impasto.layers import Network, convs
from impasto.objective import ExtraTerms, Objective, StyleStats, style_statistics_of
from impasto.optimize import Progress, ProgressFn, optimize
from impasto.statistics import get_statistic
from impasto.weights import load_weights

Output = Literal["tensor", "pil"]
# Style statistics remembered per engine: each entry is a few MB (a Gram matrix per layer).
STYLE_CACHE_SIZE = 32


class Stylizer:
    """Neural style transfer with the network loaded once, for many runs.

    Each network's weights are read and verified on first use, then kept, as is the network on
    the engine's ``device`` ("auto": cuda, then mps, then cpu; every run of this engine goes
    there, whatever a config's own ``device`` says), so that bad input is refused before
    anything loads. ``network`` is the one expected (checked now; ``engine.network(config)``
    builds it ahead of the first run). ``cache`` is the folder of decoded weights; ``weights``
    maps a network's name to weights to use instead of the packaged ones.

        engine = Stylizer()
        for photo in photos:
            image = engine.stylize(photo, "painting.jpg", StyleConfig(size=768))

    An engine may serve several threads at once (the web page's workers do).
    """

    def __init__(
        self,
        network: Network = "vgg19",
        device: str = "auto",
        *,
        cache: str | os.PathLike[str] | None = None,
        weights: dict[str, dict[str, torch.Tensor]] | None = None,
    ) -> None:
        self.device = budget.resolve_device(device)
        self.cache = cache
        self._weights = dict(weights or {})
        self._nets: dict[tuple[Any, ...], VGGFeatures] = {}
        self._stats: OrderedDict[tuple[Any, ...], StyleStats] = OrderedDict()
        self._lock = threading.Lock()
        convs(network)  # an unknown name is refused now

    def __repr__(self) -> str:
        return f"Stylizer(device={self.device.type!r}, networks={sorted(self._weights)})"

    # -- what is built once ------------------------------------------------------------------

    def weights(self, network: str) -> dict[str, torch.Tensor]:
        """The decoded weights of ``network``, read and verified on first use only."""
        with self._lock:
            if network not in self._weights:
                self._weights[network] = load_weights(network, cache=self.cache)
            return self._weights[network]

    def network(self, config: StyleConfig) -> VGGFeatures:
        """The feature extractor ``config`` asks for, on this engine's device, built once."""
        layers = tuple(config.content_layers + config.style_layers)
        key = (config.network, config.pooling, layers)
        weights = self.weights(config.network)
        with self._lock:
            if key not in self._nets:
                net = VGGFeatures(config.network, layers, weights=weights, pooling=config.pooling)
                self._nets[key] = net.to(self.device)
            return self._nets[key]

    def _stats_of(
        self, net: VGGFeatures, config: StyleConfig, dtype: torch.dtype | None, tile: int = 0
    ) -> Any:
        """A ``stats_of`` for Objective.build (tiles of ``tile`` px) that remembers each style's
        statistics by the pixels the network sees: the same style and size are computed once."""
        stat = get_statistic(config.style_loss)
        compute = style_statistics_of(net, stat, config.style_layers, self.device, dtype, tile=tile)
        base = (
            config.network,
            config.pooling,
            tuple(config.style_layers),
            config.style_loss,
            dtype,
        )

        def stats_of(style: torch.Tensor, mask: torch.Tensor | None, what: str) -> StyleStats:
            key = (*base, _digest(style), None if mask is None else _digest(mask))
            with self._lock:
                if key in self._stats:
                    self._stats.move_to_end(key)
                    return self._stats[key]
            stats = compute(style, mask, what)
            with self._lock:
                self._stats[key] = stats
                while len(self._stats) > STYLE_CACHE_SIZE:
                    self._stats.popitem(last=False)
            return stats

        return stats_of

    def _settle(
        self, net: VGGFeatures, config: StyleConfig, inputs: Inputs, measure: Inputs | None
    ) -> StyleConfig:
        dtype = budget.compute_dtype(config.precision, self.device)
        stats_of = self._stats_of(net, config, dtype)
        return balance.balanced(
            net, config, inputs, measure=measure, device=self.device, stats_of=stats_of, dtype=dtype
        )

    def balanced(
        self,
        content: ImageLike,
        style: ImageLike | Sequence[ImageLike],
        config: StyleConfig | None = None,
        *,
        content_masks: Sequence[ImageLike] = (),
        style_masks: Sequence[ImageLike | None] = (),
    ) -> StyleConfig:
        """The settings a run of this pair uses: under ``balance="auto"`` (the default), the
        style weight this photo and painting get (impasto.balance), with ``balance="fixed"``;
        ``config`` unchanged otherwise. A clip's frames share the first frame's."""
        config = config or StyleConfig()
        measure = balance.read(config, content, style, content_masks, style_masks, self.device)
        if measure is None:
            return config
        return self._settle(self.network(config), config, measure, measure)

    # -- runs ----------------------------------------------------------------------------------

    def stylize(
        self,
        content: ImageLike,
        style: ImageLike | Sequence[ImageLike],
        config: StyleConfig | None = None,
        *,
        content_masks: Sequence[ImageLike] = (),
        style_masks: Sequence[ImageLike | None] = (),
        on_progress: ProgressFn | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = CHECKPOINT_EVERY,
        checkpoint_extra: dict[str, Any] | None = None,
        init: torch.Tensor | None = None,
        extra: ExtraTerms | None = None,
        output: Output = "tensor",
    ) -> Any:
        """Paint ``content`` in the manner of ``style``; return the image, (1, 3, H, W) in [0, 1]
        on the CPU (``output="pil"``: a PIL image).

        ``content`` and ``style`` are paths, PIL images or tensors (1, 3, H, W) in [0, 1];
        ``style`` may be a list, blended by ``config.style_blend``. ``content_masks`` (grey
        images, white = the region) send each style to a region of the output; ``style_masks``
        take each style's statistics from a region of its image (see ``impasto.regions``).
        ``on_progress`` receives a :class:`~impasto.Progress` after every step. With
        ``checkpoint``, the run's state is written there every ``checkpoint_every`` steps and on
        Ctrl-C, for :meth:`resume` (``checkpoint_extra``: anything JSON-like wanted back then).
        ``init`` replaces the starting image; ``extra`` adds loss terms (e.g. video's temporal
        term) at every scale.
        """
        config = config or StyleConfig()
        inputs = prepare_inputs(
            config, content, style, content_masks, style_masks, device=self.device
        )
        measure = balance.read(config, content, style, content_masks, style_masks, self.device)
        image = self.run(
            inputs,
            config,
            on_progress=on_progress,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            checkpoint_extra=checkpoint_extra,
            init=init,
            extra=extra,
            measure=measure,
        )
        return _as_output(image, output)

    def resume(
        self,
        checkpoint: str | os.PathLike[str] | dict[str, Any],
        *,
        on_progress: ProgressFn | None = None,
        checkpoint_every: int = CHECKPOINT_EVERY,
        save_to: str | os.PathLike[str] | None = None,
        output: Output = "tensor",
    ) -> Any:
        """Continue an interrupted run from its checkpoint (a path, or the dict
        ``load_checkpoint`` read); the result equals that of the run uninterrupted. Further
        checkpoints go to ``save_to`` (default: the same path)."""
        payload = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
        if save_to is None and not isinstance(checkpoint, dict):
            save_to = checkpoint
        image = self.run(
            Inputs(**payload["inputs"]),
            StyleConfig(**StyleConfig.stored(payload["config"])),
            on_progress=on_progress,
            checkpoint=save_to,
            checkpoint_every=checkpoint_every,
            checkpoint_extra=payload.get("extra"),
            state=payload["state"],
        )
        return _as_output(image, output)

    def run(
        self,
        inputs: Inputs,
        config: StyleConfig,
        *,
        on_progress: ProgressFn | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = CHECKPOINT_EVERY,
        checkpoint_extra: dict[str, Any] | None = None,
        state: dict[str, Any] | None = None,
        init: torch.Tensor | None = None,
        extra: ExtraTerms | None = None,
        measure: Inputs | None = None,
    ) -> torch.Tensor:
        """The optimisation itself, on prepared inputs (``stylize`` and ``resume`` end here).

        Each scale of ``config.schedule()`` is a whole optimisation at that size, started from
        the previous scale's result upsampled (the first from ``init`` or ``config.init``).
        Under ``balance="auto"`` the style weight is settled first, on ``measure`` (the pair
        as ``balance.read`` reads it) or else on ``inputs``.
        """
        schedule = config.schedule()
        # The schedule written out step for step, so that a checkpoint resumes on the steps it
        # was started with even if a later version changes the default schedule.
        config = config.replace(iterations=tuple(steps for _, steps in schedule))
        run = _Run(
            self, inputs, config, on_progress, checkpoint, checkpoint_every, checkpoint_extra, extra
        )
        first = state["scale"] if state is not None else 0
        run.before = state.get("before", 0.0) if state is not None else 0.0
        run.available = budget.available_memory(self.device)  # before this run holds any of it
        image = None if state is not None else run.start(init)  # a bad --init costs no weights
        net = self.network(config)
        if state is None:  # a checkpoint holds the weight its run settled on
            config = run.config = self._settle(net, config, inputs, measure)
        # Freed blocks stay in the process for the next step (impasto.allocator), on a CPU and
        # while the image stays small enough that activations are not recomputed.
        keep = self.device.type == "cpu" and not budget.recomputes(*inputs.content.shape[-2:])
        with reuse_freed_memory(enabled=keep):
            for index in range(first, len(schedule)):
                resuming = state if index == first else None
                image = run.scale(net, index, image, resuming)
        assert image is not None
        return image.cpu()


@dataclass
class _Run:
    """One run's settings and bookkeeping, shared by its scales."""

    engine: Stylizer
    inputs: Inputs
    config: StyleConfig
    on_progress: ProgressFn | None
    checkpoint: str | os.PathLike[str] | None
    checkpoint_every: int
    checkpoint_extra: dict[str, Any] | None
    extra: ExtraTerms | None
    before: float = 0.0  # seconds spent in earlier scales
    available: int | None = None  # bytes of memory free when the run began

    def start(self, init: torch.Tensor | None) -> torch.Tensor:
        """The image the first scale starts from, at that scale's size."""
        config = self.config
        scaled = self.inputs.at(config, config.schedule()[0][0])
        content, styles = scaled.colored(config)
        if init is None:
            return initial_image(config, content, styles[0])
        return resize_to(init.detach().float().cpu(), *content.shape[-2:])

    def scale(
        self,
        net: VGGFeatures,
        index: int,
        previous: torch.Tensor | None,
        state: dict[str, Any] | None,
    ) -> torch.Tensor:
        """Scale ``index`` of the run, from ``previous`` (the start, or the last scale's result,
        resized here) or from a checkpoint's ``state``; returns the image as the user sees it."""
        engine, config = self.engine, self.config
        schedule = config.schedule()
        long_side, steps = schedule[index]
        scaled = self.inputs.at(config, long_side)
        h, w = scaled.content.shape[-2:]
        coarse = index == 0 and len(schedule) > 1
        dtype = budget.compute_dtype(config.precision, engine.device)
        # In tiles where memory requires it (impasto.tiling): the same loss and gradient.
        style_pixels = max(s.shape[-2] * s.shape[-1] for s in scaled.styles)
        tiles = budget.plan_grids(config, h, w, style_pixels, self.available)
        objective = Objective.build(
            net,
            config,
            scaled,
            device=engine.device,
            style_weight=config.style_weight * (config.coarse_style if coarse else 1.0),
            stats_of=engine._stats_of(net, config, dtype, tiles[1].tile if tiles else 0),
            dtype=dtype,
            extra=self.extra,
            tiles=tiles,
        )
        offset = sum(n for _, n in schedule[:index])
        total = sum(n for _, n in schedule)

        def finish(x: torch.Tensor) -> torch.Tensor:
            """The image as the user sees it (with the photo's colours put back)."""
            if config.colors != "luminance":
                return x
            return color.with_chroma_of(x, scaled.content.to(x.device))

        def report(p: Progress) -> None:
            if self.on_progress is not None:
                self.on_progress(
                    p.replace(
                        step=offset + p.step,
                        total_steps=total,
                        elapsed=self.before + p.elapsed,
                        image=None if p.image is None else finish(p.image),
                        scale=index + 1,
                        scales=len(schedule),
                        tiles=len(getattr(objective, "grid", ())),
                        style_weight=config.style_weight,
                    )
                )

        def save(st: dict[str, Any]) -> None:
            assert self.checkpoint is not None
            payload = {
                "config": config.to_dict(),
                "inputs": asdict(self.inputs),
                "state": st | {"scale": index, "before": self.before},
                "extra": self.checkpoint_extra,
            }
            save_checkpoint(self.checkpoint, payload)

        started = time.perf_counter() - (state["elapsed"] if state is not None else 0.0)
        result = optimize(
            self.start_of_scale(previous, scaled).to(engine.device),
            objective,
            optimizer=config.optimizer,
            iterations=steps,
            lr=config.lr,
            tolerance=config.tolerance,
            history_size=budget.lbfgs_history(h, w),
            on_progress=report,
            on_checkpoint=save if self.checkpoint is not None else None,
            checkpoint_every=self.checkpoint_every,
            resume=to_device(state, engine.device) if state is not None else None,
        )
        self.before += time.perf_counter() - started
        return finish(result)

    def start_of_scale(self, previous: torch.Tensor | None, scaled: Inputs) -> torch.Tensor:
        """The last scale's result at this size (None when resuming: the checkpoint's image
        replaces it), handed to the optimiser and not kept: at print size a copy is 201 MB."""
        if previous is None:
            return scaled.content
        init = resize_to(previous, *scaled.content.shape[-2:])
        return color.luminance(init) if self.config.colors == "luminance" else init


def _digest(t: torch.Tensor) -> str:
    """A fingerprint of a tensor's values, to recognise the same style image again."""
    data = t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return hashlib.blake2b(data, digest_size=16).hexdigest() + str(tuple(t.shape))


def _as_output(image: torch.Tensor, output: Output) -> Any:
    if output == "pil":
        return to_pil(image)
    if output != "tensor":
        raise ValueError(f"output must be 'tensor' or 'pil', not {output!r}")
    return image


# ----------------------------------------------------------------------------------------------
# One engine per device and weights folder, for the one-line functions


_DEFAULT: dict[tuple[str, str | None], Stylizer] = {}
_DEFAULT_LOCK = threading.Lock()


def default_engine(
    device: str = "auto", cache: str | os.PathLike[str] | None = None, network: str = "vgg19"
) -> Stylizer:
    """The engine that :func:`stylize` and :func:`resume` use, built once per device and cache."""
    key = (budget.resolve_device(device).type, None if cache is None else os.fspath(cache))
    with _DEFAULT_LOCK:
        if key not in _DEFAULT:
            _DEFAULT[key] = Stylizer(network, key[0], cache=cache)  # type: ignore[arg-type]
        return _DEFAULT[key]


def stylize(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    config: StyleConfig | None = None,
    *,
    cache: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Any:
    """``Stylizer(...).stylize(...)`` on an engine kept for this process (see Stylizer.stylize);
    the engine runs on ``config.device``."""
    config = config or StyleConfig()
    engine = default_engine(config.device, cache, config.network)
    return engine.stylize(content, style, config, **options)


def resume(
    checkpoint: str | os.PathLike[str] | dict[str, Any],
    *,
    cache: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Any:
    """Continue an interrupted run (see Stylizer.resume) on an engine kept for this process."""
    payload = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    config = StyleConfig(**StyleConfig.stored(payload["config"]))
    if not isinstance(checkpoint, dict):
        options.setdefault("save_to", checkpoint)
    return default_engine(config.device, cache, config.network).resume(payload, **options)
