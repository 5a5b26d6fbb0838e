"""Frames out: a video file written atomically, its audio copied from the input.

The container follows the output's extension and the codec is the best the PyAV build has for
it: H.264 (libx264, quality 18, which looks like the frames) where it is there, else MPEG-4
Part 2 at a generous bit rate; VP9 for WebM. Frames are 4:2:0, so the run's frame size is
made even before any work (:func:`even_size`). The input's first audio stream is copied packet
for packet (no re-encoding) over the time the chosen frames cover; where the container cannot
hold that audio the video is written without it, and the result says so.
"""

from __future__ import annotations

import io
import itertools
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from impasto.errors import UsageError
from impasto.files import atomic_write
from impasto.video import require
from impasto.video.clip import is_sequence

# Extension -> (container, encoders by preference).
FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    ".mp4": ("mp4", ("libx264", "mpeg4")),
    ".m4v": ("mp4", ("libx264", "mpeg4")),
    ".mov": ("mov", ("libx264", "mpeg4")),
    ".mkv": ("matroska", ("libx264", "libvpx-vp9", "mpeg4")),
    ".webm": ("webm", ("libvpx-vp9", "libvpx")),
    ".avi": ("avi", ("mpeg4",)),
}
# Encoder settings: constant quality where the encoder has it.
_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"crf": "18", "preset": "medium"},
    "libvpx-vp9": {"crf": "24", "b": "0", "row-mt": "1"},
    "libvpx": {"crf": "8", "b": "4M"},
    "mpeg4": {},
}
# MPEG-4 Part 2 has no constant-quality mode through PyAV: bits per pixel per frame instead.
_MPEG4_BITS_PER_PIXEL = 0.5
_NAMES = {"libx264": "H.264", "libvpx-vp9": "VP9", "libvpx": "VP8", "mpeg4": "MPEG-4 Part 2"}


@dataclass(frozen=True)
class Written:
    """What :func:`encode` wrote: the codec, and the audio copied or why not."""

    path: Path
    codec: str
    frames: int
    audio: str | None = None
    warning: str | None = None

    def describe(self) -> str:
        audio = f", audio {self.audio} copied" if self.audio else ""
        return f"{self.frames} frames, {_NAMES.get(self.codec, self.codec)} ({self.codec}){audio}"


def check_video_output(path: str | os.PathLike[str]) -> tuple[str, str] | None:
    """The container and encoder ``path`` will be written with (None: an image sequence), or
    UsageError when no container impasto writes goes by its extension or no encoder is there."""
    p = Path(path)
    if is_sequence(p):
        from impasto.image import SUPPORTED_SAVE_EXTENSIONS

        if p.suffix.lower() not in SUPPORTED_SAVE_EXTENSIONS:
            raise UsageError(
                f"output '{p}': an image sequence is written as "
                f"{', '.join(SUPPORTED_SAVE_EXTENSIONS)} frames (e.g. frames/%05d.png), not "
                f"'{p.suffix or 'no extension'}'"
            )
        return None
    ext = p.suffix.lower()
    if ext not in FORMATS:
        shown = ext or "no extension"
        raise UsageError(
            f"output '{p}': impasto video writes {', '.join(FORMATS)} or an image sequence "
            f"such as frames/%05d.png, not {shown}"
        )
    fmt, encoders = FORMATS[ext]
    av = require("av")
    for name in encoders:
        try:
            av.codec.Codec(name, "w")
        except (av.codec.codec.UnknownCodecError, ValueError):
            continue
        return fmt, name
    raise UsageError(
        f"output '{p}': this build of FFmpeg (PyAV) has no encoder for {ext} "
        f"(looked for {', '.join(encoders)}); try .mp4 or frames/%05d.png"
    )


def even_size(height: int, width: int) -> tuple[int, int]:
    """The largest even size within (height, width): 4:2:0 video halves both for colour."""
    return max(2, height - height % 2), max(2, width - width % 2)


def encode(
    frames: Iterable[torch.Tensor],
    output: str | os.PathLike[str],
    fps: Fraction,
    *,
    audio_from: str | os.PathLike[str] | None = None,
    audio_window: tuple[float, float] = (0.0, float("inf")),
    metadata: dict[str, Any] | None = None,
) -> Written:
    """Write ``frames`` (each (1, 3, H, W) in [0, 1], all one size) to ``output`` atomically.

    ``audio_from``: a video whose first audio stream is copied, the part within
    ``audio_window`` (seconds), shifted to start with the video. ``metadata`` is stored as JSON
    in the container's comment.
    """
    av = require("av")
    checked = check_video_output(output)
    if checked is None:
        raise ValueError(f"encode writes video files, not image sequences: {output}")
    fmt, codec = checked
    with atomic_write(output) as stream:
        with av.open(stream, mode="w", format=fmt) as out:
            if metadata is not None:
                out.metadata["comment"] = json.dumps(metadata, separators=(",", ":"))
            frames = iter(frames)
            first = next(frames, None)
            if first is None:
                raise ValueError("no frames to encode")
            video = _video_stream(out, codec, fps, *first.shape[-2:])  # the first stream
            audio = _AudioCopy.open(av, out, fmt, audio_from, audio_window)
            warning, count = audio.warning, 0
            for frame in itertools.chain([first], frames):
                audio.mux_until(count / fps)
                for packet in video.encode(_video_frame(av, frame, video)):
                    out.mux(packet)
                count += 1
            for packet in video.encode(None):
                out.mux(packet)
            audio.mux_until(None)
            audio.close()
    return Written(Path(output), codec, count, audio.name, warning)


def _video_stream(out: Any, codec: str, fps: Fraction, height: int, width: int) -> Any:
    if height % 2 or width % 2:
        raise ValueError(f"4:2:0 video needs an even frame size, got {width}x{height}")
    stream = out.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    # Tagged BT.709 and written with its matrix, so that players show the frames' colours.
    ctx = stream.codec_context
    ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = 1, 1, 1, 1
    stream.options = dict(_OPTIONS.get(codec, {}))
    if codec == "mpeg4":
        stream.bit_rate = int(_MPEG4_BITS_PER_PIXEL * width * height * float(fps))
    return stream


def _video_frame(av: Any, image: torch.Tensor, stream: Any) -> Any:
    rgb = image[0].detach().float().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    array = np.ascontiguousarray(rgb.permute(1, 2, 0).numpy())
    frame = av.VideoFrame.from_ndarray(array, format="rgb24")
    return frame.reformat(format="yuv420p", dst_colorspace="itu709", interpolation="BICUBIC")


class _AudioCopy:
    """The input's audio packets within a time window, muxed in step with the video."""

    def __init__(self) -> None:
        self.packets: list[tuple[float, Any]] = []
        self.source: Any = None
        self.stream: Any = None
        self.name: str | None = None
        self.warning: str | None = None
        self.out: Any = None

    @classmethod
    def open(
        cls, av: Any, out: Any, fmt: str, source: Any, window: tuple[float, float]
    ) -> _AudioCopy:
        copy = cls()
        if source is None or is_sequence(source):
            return copy
        container = av.open(str(source))
        if not container.streams.audio:
            container.close()
            return copy
        given = container.streams.audio[0]
        name = given.codec_context.name
        why = _cannot_hold(av, fmt, given)
        if why is not None:
            container.close()
            copy.warning = f"the audio ({name}) was left out: {why}"
            return copy
        copy.source, copy.name, copy.out = container, name, out
        copy.stream = out.add_stream_from_template(given)
        start, end = window
        base = given.time_base
        shift: int | None = None
        for packet in container.demux(given):
            if packet.pts is None or not packet.size:
                continue
            t = float(packet.pts * base)
            if t < start - 1e-6 or t >= end - 1e-6:
                continue
            shift = packet.pts if shift is None else shift
            packet.pts -= shift
            packet.dts = packet.pts if packet.dts is None else packet.dts - shift
            copy.packets.append((t - start, packet))
        return copy

    def mux_until(self, seconds: Fraction | None) -> None:
        """Mux the audio packets that start before ``seconds`` (None: all that are left)."""
        while self.packets and (seconds is None or self.packets[0][0] < float(seconds)):
            _, packet = self.packets.pop(0)
            packet.stream = self.stream
            self.out.mux(packet)

    def close(self) -> None:
        if self.source is not None:
            self.source.close()


def _cannot_hold(av: Any, fmt: str, audio: Any) -> str | None:
    """Why the container cannot hold a copy of ``audio`` (None: it can), tried in memory."""
    try:
        with av.open(io.BytesIO(), mode="w", format=fmt) as probe:
            probe.add_stream_from_template(audio)
            probe.start_encoding()
    except (av.error.FFmpegError, ValueError, TypeError) as e:
        return f"a {fmt} file cannot hold it ({str(e).strip() or type(e).__name__})"
    return None
