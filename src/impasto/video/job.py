"""A whole video run as one library call: every check first, then the frames, then the video.

    from impasto import StyleConfig
    from impasto.video.job import paint_video

    result = paint_video("clip.mp4", "starry.jpg", "out.mp4", StyleConfig(size=512))
    result = paint_video(..., resume=True)      # after an interruption: the same video

:class:`VideoJob` is the same in two steps, for a front that shows what it is about to do:
building one checks the output, the clip, the sizes, the memory and an earlier run's frames,
and loads nothing; :meth:`VideoJob.run` paints and writes. ``impasto video`` is this and a
progress bar.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from impasto.config import StyleConfig
from impasto.engine import Stylizer
from impasto.errors import UsageError
from impasto.files import check_not_an_input, probe_writable
from impasto.image import load_image
from impasto.record import RunRecord
from impasto.video.clip import Clip
from impasto.video.encode import check_video_output, encode
from impasto.video.options import VideoOptions
from impasto.video.runner import (
    FrameStore,
    VideoProgressFn,
    VideoRun,
    check_resumable,
    frame_size,
)

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class VideoSpec:
    """What to paint: the clip, the styles and masks (as paths), and the settings."""

    content: str
    styles: tuple[str, ...]
    config: StyleConfig = field(default_factory=StyleConfig)
    options: VideoOptions = field(default_factory=VideoOptions)
    content_masks: tuple[str, ...] = ()
    style_masks: tuple[str, ...] = ()

    def identity(self, size: tuple[int, int]) -> dict[str, Any]:
        """What a resumed run must share with the run it continues (kept in its manifest)."""
        return {
            "content": self.content,
            "styles": list(self.styles),
            "content_masks": list(self.content_masks),
            "style_masks": list(self.style_masks),
            "config": self.config.to_dict(),
            "video": self.options.to_dict(),
            "size": list(size),
        }

    @classmethod
    def stored(cls, output: PathLike) -> VideoSpec:
        """The spec of the interrupted run that was writing ``output``."""
        store = FrameStore(output)
        data = store.read_manifest()
        if data is None:
            raise UsageError(
                f"nothing to resume: no interrupted run of {output} ({store.manifest} is missing)"
            )
        return cls(
            content=data["content"],
            styles=tuple(data["styles"]),
            config=StyleConfig(**StyleConfig.stored(data["config"])),
            options=VideoOptions(**data["video"]),
            content_masks=tuple(data["content_masks"]),
            style_masks=tuple(data["style_masks"]),
        )


@dataclass(frozen=True)
class VideoResult:
    """What a run wrote: the output, its frames and their size, the codec (None: an image
    sequence), the audio copied (or a warning why not), and the seconds each frame painted in
    this run took."""

    output: Path
    frames: int
    size: tuple[int, int]
    fps: Fraction
    codec: str | None
    audio: str | None
    warning: str | None
    seconds: float
    timings: list[float]

    def describe(self) -> str:
        from impasto.video.encode import Written

        h, w = self.size
        if self.codec is None:
            return f"{self.frames} frames to {self.output} ({w}x{h} px, {self.seconds:.0f} s)"
        coded = Written(self.output, self.codec, self.frames, self.audio).describe()
        return (
            f"{self.output} ({w}x{h} px, {coded}, {float(self.fps):.3g} fps, {self.seconds:.0f} s)"
        )


class VideoJob:
    """A checked video run, ready to paint; see the module's docstring.

    Raises (when built, before anything loads or is written):
        UsageError: an output no container goes by, a folder that refuses it, an output that
            is an input, a frame range past the end, sizes beyond the memory, an interrupted
            run not asked to resume (or asked with other settings).
        InputError: a clip that is not a video or has no frames, a style or mask that cannot
            be read or does not fit, frames too small for the network.
    """

    def __init__(
        self,
        spec: VideoSpec,
        output: PathLike,
        *,
        resume: bool = False,
        engine: Stylizer | None = None,
        cache: PathLike | None = None,
    ) -> None:
        self.spec, self.output = spec, Path(output)
        self.codec = check_video_output(self.output)  # extension and encoder first
        self.store = FrameStore(self.output)
        inputs = [spec.content, *spec.styles, *spec.content_masks, *spec.style_masks]
        check_not_an_input(self.output, inputs)  # a sequence's own pattern included
        if self.codec is not None:
            probe_writable(self.output)
        elif not self.output.parent.is_dir():
            raise UsageError(
                f"output '{self.output}': the folder '{self.output.parent}' does not exist"
            )
        else:
            probe_writable(self.store.manifest)
        self.clip = Clip(spec.content, spec.options)
        self.size = frame_size(self.clip, spec.config, even=self.codec is not None)
        self.done = check_resumable(self.store, spec.identity(self.size), resume)
        config = spec.config
        self.engine = engine or Stylizer(config.network, config.device, cache=cache)
        self.painter = VideoRun(
            self.engine,
            self.clip,
            list(spec.styles),
            config,
            spec.options,
            self.size,
            content_masks=list(spec.content_masks),
            style_masks=list(spec.style_masks),
        )
        self.painter.check()  # frame size, styles, masks and memory, before any weights load

    def describe(self) -> str:
        """One line: the clip, and what an earlier run already painted."""
        done = f", {self.done} already painted" if self.done else ""
        return f"{self.clip.info.source}: {self.clip.info.describe()}{done}"

    def run(
        self, *, on_progress: VideoProgressFn | None = None, keep_frames: bool = False
    ) -> VideoResult:
        """Paint the frames not yet painted, then write the output; the frames folder is
        removed once the video is written (``keep_frames`` keeps it). Interrupted (Ctrl-C, a
        kill), the finished frames stay for ``resume=True``."""
        info = self.clip.info
        self.store.write_manifest({**self.spec.identity(self.size), "frames": info.frames})
        start = time.perf_counter()
        timings = self.painter.run(self.store, on_progress=on_progress, metadata=self.record)
        written = None
        if self.codec is not None:
            frames = (
                load_image(self.store.path(i), what=f"painted frame {i}")
                for i in range(info.frames)
            )
            written = encode(
                frames,
                self.output,
                info.fps,
                audio_from=info.source,
                audio_window=(info.start, info.end),
                metadata=self.record(None),
            )
        if self.codec is None or not keep_frames:
            self.store.remove()
        return VideoResult(
            output=self.output,
            frames=info.frames,
            size=self.size,
            fps=info.fps,
            codec=None if written is None else written.codec,
            audio=None if written is None else written.audio,
            warning=None if written is None else written.warning,
            seconds=time.perf_counter() - start,
            timings=timings,
        )

    def record(self, index: int | None) -> dict[str, Any]:
        """The record stored in painted frame ``index`` and, for None, in the video."""
        spec = self.spec
        config = self.painter.config if not index else self.painter.later
        where = "" if index is None else f" frame {index}"
        record = RunRecord(
            content=f"{spec.content}{where}",
            styles=spec.styles,
            config=config,
            content_masks=spec.content_masks,
            style_masks=spec.style_masks,
            made_by="impasto video",
        )
        return record.to_metadata() | {"video": spec.options.to_dict()}


def paint_video(
    content: PathLike,
    style: PathLike | Sequence[PathLike],
    output: PathLike,
    config: StyleConfig | None = None,
    options: VideoOptions | None = None,
    *,
    content_masks: Sequence[PathLike] = (),
    style_masks: Sequence[PathLike] = (),
    resume: bool = False,
    keep_frames: bool = False,
    on_progress: VideoProgressFn | None = None,
    engine: Stylizer | None = None,
    cache: PathLike | None = None,
) -> VideoResult:
    """Paint the clip ``content`` in the manner of ``style`` into ``output`` (a video file or
    an image sequence such as ``frames/%05d.png``); see :class:`VideoJob`."""
    styles = [style] if isinstance(style, (str, os.PathLike)) else list(style)
    spec = VideoSpec(
        content=os.fspath(content),
        styles=tuple(os.fspath(s) for s in styles),
        config=config or StyleConfig(),
        options=options or VideoOptions(),
        content_masks=tuple(os.fspath(m) for m in content_masks),
        style_masks=tuple(os.fspath(m) for m in style_masks),
    )
    job = VideoJob(spec, output, resume=resume, engine=engine, cache=cache)
    return job.run(on_progress=on_progress, keep_frames=keep_frames)
