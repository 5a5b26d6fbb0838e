"""Painting a clip frame after frame on one engine, as Ruder et al. do, resumable.

    frame 0      a normal coarse-to-fine run
    frame t      flows between the input frames t and t-k (k in --temporal-frames), their
                 reliability (forward-backward check); start from stylized frame t-1 warped to t
                 (the photo where t-1 cannot be seen); add the temporal loss; one scale at full
                 size, --later-iterations steps
    each frame   written as a PNG the moment it is finished (atomically), then read back: what
                 the next frame is held to is exactly what a resumed run would read

A run killed at any point resumes from its last finished frame (:class:`FrameStore` keeps the
frames and a manifest of the settings) and ends on the same frames as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from impasto import color
from impasto.config import StyleConfig
from impasto.engine import Stylizer
from impasto.errors import InputError, UsageError
from impasto.files import atomic_write
from impasto.image import load_image, resize_to, save_image
from impasto.inputs import ImageLike, as_image
from impasto.optimize import Progress
from impasto.video import require
from impasto.video.clip import Clip, is_sequence, sequence_name
from impasto.video.flow import get_flow, long_term, reliability, warp
from impasto.video.options import VideoOptions
from impasto.video.temporal import TemporalTerm

# Painted frames are carried along the flow bicubically: bilinear sampling softened them, and the
# temporal loss then held each frame to that softer picture (at 128 px, 5 frames on, the fine
# detail, as the mean absolute Laplacian, fell from 31.3 to 19.8 levels; bicubic, to 22.8).
BICUBIC = "bicubic"
MANIFEST_FORMAT = "impasto-video"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class VideoProgress:
    """Where a video run is, for ``on_progress``.

    ``frame`` (1-based) of ``frames`` is being painted, ``done`` are finished (frames resumed
    from an earlier run included); ``step`` is the current frame's last step (None when the
    event says a frame was just finished, in ``seconds``). ``eta``: seconds left, from the
    later frames timed so far (None until one is).
    """

    frame: int
    frames: int
    done: int
    elapsed: float
    eta: float | None
    step: Progress | None = None
    seconds: float | None = None


VideoProgressFn = Callable[[VideoProgress], None]


class FrameStore:
    """Where finished frames wait: a folder beside a video output (``out.mp4.frames/``), or
    the output image sequence itself; with a manifest of the run's settings, for --resume."""

    def __init__(self, output: str | os.PathLike[str]) -> None:
        self.output = Path(output)
        if is_sequence(output):
            self.pattern, self.folder, self.owned = self.output, self.output.parent, False
            self.manifest = self.folder / f".{self.output.name.replace('%', '_')}.impasto-video"
        else:
            self.folder = self.output.with_name(self.output.name + ".frames")
            self.pattern, self.owned = self.folder / "%06d.png", True
            self.manifest = self.folder / "manifest.json"

    def path(self, index: int) -> Path:
        """The file of frame ``index`` (from 0); sequences are numbered from 1, as FFmpeg does."""
        return sequence_name(self.pattern, index + 1)

    def finished(self, frames: int) -> int:
        """How many frames, from the first, are written."""
        n = 0
        while n < frames and self.path(n).is_file():
            n += 1
        return n

    def read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest.is_file():
            return None
        try:
            data = json.loads(self.manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"the manifest {self.manifest} could not be read: {e}") from None
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise InputError(f"{self.manifest} is not an impasto video manifest")
        return data

    def write_manifest(self, data: dict[str, Any]) -> None:
        self.folder.mkdir(exist_ok=True)
        with atomic_write(self.manifest, "w") as f:
            json.dump({"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, **data}, f, indent=1)

    def remove(self) -> None:
        """Clear the frames away once the video is written (a sequence keeps its frames)."""
        if self.owned:
            shutil.rmtree(self.folder, ignore_errors=True)
        else:
            self.manifest.unlink(missing_ok=True)


def frame_size(clip: Clip, config: StyleConfig, even: bool) -> tuple[int, int]:
    """(H, W) of the painted frames: the long side --size, both even for 4:2:0 video."""
    from impasto.image import long_side_size

    h, w = long_side_size(clip.info.height, clip.info.width, config.size)
    if even:
        h, w = max(2, h - h % 2), max(2, w - w % 2)
    return h, w


class VideoRun:
    """One clip in one style on one engine: :meth:`run` paints the frames into a FrameStore.

    ``size`` is the painted frames' (H, W); ``config`` is the first frame's settings (its
    ``size`` the long side of ``size``), later frames use ``options.later_config(config)``.
    """

    def __init__(
        self,
        engine: Stylizer,
        clip: Clip,
        styles: Sequence[ImageLike],
        config: StyleConfig,
        options: VideoOptions,
        size: tuple[int, int],
        *,
        content_masks: Sequence[ImageLike] = (),
        style_masks: Sequence[ImageLike | None] = (),
    ) -> None:
        self.engine, self.clip, self.options, self.size = engine, clip, options, size
        self.config = config.replace(size=max(size))
        self.later = options.later_config(self.config)
        # Read once for the clip, decoded no larger than the run needs, as engine.stylize reads them.
        sides = [max(1, round(max(size) * k)) for k in self.config.style_scales_for(len(styles))]
        names = _style_names(len(styles))
        self.styles = [as_image(s, name, side) for s, name, side in zip(styles, names, sides)]
        self.style_sources = list(styles)  # as given: the balance reads them at its own size
        self.content_masks, self.style_masks = list(content_masks), list(style_masks)
        self._flow = None

    def check(self) -> None:
        """Refuse, before any weights load, a frame size the memory or the network cannot take,
        or styles and masks that do not fit (checked on the first frame, once its size is known
        to be possible)."""
        from impasto.budget import check_sizes
        from impasto.image import long_side_size
        from impasto.inputs import prepare_inputs

        if self.clip.info.frames > 1:
            require("cv2")  # the flow, needed from the second frame on: say so now
        n = len(self.styles)
        names = _style_names(n)
        for config in (self.config, self.later):
            scales = config.style_scales_for(n)
            sizes = {"content image": self.size}
            native = {"content image": (self.clip.info.height, self.clip.info.width)}
            for name, style, k in zip(names, self.styles, scales):
                h, w = style.shape[-2:]
                sizes[name] = long_side_size(h, w, max(1, round(config.size * k)))
                native[name] = (h, w)
            check_sizes(config, sizes, self.engine.device, native=native)
        first = resize_to(next(self.clip.frames()), *self.size)
        prepare_inputs(
            self.config,
            first,
            self.styles,
            self.content_masks,
            self.style_masks,
            device=self.engine.device,
        )

    def run(
        self,
        store: FrameStore,
        *,
        on_progress: VideoProgressFn | None = None,
        metadata: Callable[[int], dict[str, Any]] | None = None,
    ) -> list[float]:
        """Paint every frame not yet in ``store``; return the seconds each frame painted here
        took (first frame first)."""
        n = self.clip.info.frames
        done = store.finished(n)
        self.settle_balance()  # even with every frame painted: the video's record names the weight
        back = max(self.options.look_back)
        first_read = max(0, done - back)
        contents: dict[int, torch.Tensor] = {}
        painted: dict[int, torch.Tensor] = {
            i: load_image(store.path(i), what=f"finished frame {i}")
            for i in range(first_read, done)
        }
        started, timings, later = time.perf_counter(), [], []

        def report(index: int, step: Progress | None, seconds: float | None = None) -> None:
            if on_progress is None:
                return
            left = n - index - (step is None)
            eta = sum(later) / len(later) * left if later else None
            on_progress(
                VideoProgress(
                    frame=index + 1,
                    frames=n,
                    done=index + (step is None),
                    elapsed=time.perf_counter() - started,
                    eta=eta,
                    step=step,
                    seconds=seconds,
                )
            )

        for index, raw in enumerate(self.clip.frames(first_read), start=first_read):
            contents[index] = resize_to(raw, *self.size)
            if index < done:
                continue
            t0 = time.perf_counter()
            image = self._paint(index, contents, painted, lambda p, i=index: report(i, p))
            path = save_image(
                image, store.path(index), metadata=metadata(index) if metadata else None
            )
            painted[index] = load_image(path, what=f"finished frame {index}")
            for old in [i for i in contents if i <= index - back]:
                contents.pop(old), painted.pop(old, None)
            seconds = time.perf_counter() - t0
            timings.append(seconds)
            if index > 0:
                later.append(seconds)
            report(index, None, seconds)
        return timings

    def settle_balance(self) -> None:
        """Under --balance auto, the style weight the first frame gets, kept for every frame (a
        weight that followed each frame would itself flicker); a resumed run settles the same."""
        if not self.config.auto_balance:
            return
        fixed = self.engine.balanced(
            next(self.clip.frames()),
            self.style_sources,
            self.config,
            content_masks=self.content_masks,
            style_masks=self.style_masks,
        )
        self.config = fixed
        self.later = self.later.replace(style_weight=fixed.style_weight, balance="fixed")

    def _paint(
        self,
        index: int,
        contents: dict[int, torch.Tensor],
        painted: dict[int, torch.Tensor],
        on_step: Callable[[Progress], None],
    ) -> torch.Tensor:
        content = contents[index]
        common: dict[str, Any] = dict(
            content_masks=self.content_masks, style_masks=self.style_masks, on_progress=on_step
        )
        if index == 0:
            return self.engine.stylize(content, self.styles, self.config, **common)
        init, extra = self.temporal(index, contents, painted)
        return self.engine.stylize(
            content, self.styles, self.later, init=init, extra=extra, **common
        )

    def temporal(
        self, index: int, contents: dict[int, torch.Tensor], painted: dict[int, torch.Tensor]
    ) -> tuple[torch.Tensor, TemporalTerm | None]:
        """Frame ``index``'s start (frame t-1 warped, the photo where it cannot be seen) and its
        temporal term (None at --temporal-weight 0).

        Shape: every frame (1, 3, H, W) -> (1, 3, H, W) and the term.
        """
        if self._flow is None:
            self._flow = get_flow(self.options.flow)
        content = contents[index]
        targets, weights = [], []
        for k in self.options.look_back:
            if index - k < 0:
                break
            earlier = contents[index - k]
            backward = self._flow(content, earlier)  # t -> t-k: where each pixel came from
            forward = self._flow(earlier, content)
            weights.append(reliability(backward, forward))
            targets.append(warp(painted[index - k], backward, BICUBIC))
        weights = long_term(weights)
        init = weights[0] * targets[0] + (1 - weights[0]) * content
        if self.options.temporal_weight == 0:
            return init, None
        if self.config.colors == "luminance":
            # The optimisation runs on luminance and puts the photo's colours back after.
            targets = [color.luminance(t) for t in targets]
        return init, TemporalTerm(targets, weights, self.options.temporal_weight)


def check_resumable(store: FrameStore, identity: dict[str, Any], resume: bool) -> int:
    """Frames of an earlier run of the same settings that this run can keep.

    Without ``resume``, a store holding an interrupted run is refused (its frames are not
    thrown away unasked); with it, the stored settings must be these.
    """
    stored = store.read_manifest()
    if not resume:
        if stored is not None:
            done = store.finished(int(stored.get("frames", 0)))
            raise UsageError(
                f"{store.folder} holds {done} frames of an interrupted run: add --resume to "
                "finish it, or remove it to start again"
            )
        return 0
    if stored is None:
        raise UsageError(
            f"nothing to resume: no interrupted run of {store.output} ({store.manifest} is missing)"
        )
    differ = _differences(stored, identity)
    if differ:
        raise UsageError(
            f"--resume continues the run with its own inputs and options, and {', '.join(differ)} "
            f"differ from it; give the same ones (or none), or remove {store.folder} to start "
            "again"
        )
    return store.finished(int(stored["frames"]))


def _style_names(n: int) -> list[str]:
    """What messages call each style image, as prepare_inputs does."""
    return ["style image"] if n == 1 else [f"style image {i}" for i in range(1, n + 1)]


def _differences(stored: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between a stored run and this one, named as the user types it."""
    out = []
    for key, value in now.items():
        old = stored.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            out += [
                f"--{k.replace('_', '-')}"
                for k in value
                if _normal(old.get(k)) != _normal(value[k])
            ]
        elif _normal(old) != _normal(value):
            out.append({"content": "the clip", "size": "the frame size"}.get(key, f"the {key}"))
    return out


def _normal(value: Any) -> Any:
    """JSON's view of a value, so tuples and lists compare equal."""
    return json.loads(json.dumps(value))
