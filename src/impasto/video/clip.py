"""Frames in: a video file (decoded by PyAV) or an image sequence (``frames/%05d.png``).

A :class:`Clip` is probed when opened (frame count, frame rate, size as displayed, codecs), so
that a file that is not a video, a video with no frames or a range past its end is refused
before any weights load; its frames are then decoded one at a time, never all held at once.
Every frame comes out as impasto's image tensor, (1, 3, H, W) sRGB in [0, 1], turned as the
file's display matrix says and stretched to its display aspect (anamorphic video).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from impasto.errors import InputError, UsageError
from impasto.video import require
from impasto.video.options import SEQUENCE_FPS, VideoOptions

# printf-style frame numbers, as FFmpeg's image2 reads them: %d or %05d.
_NUMBER = re.compile(r"%(0?\d*)d")


def is_sequence(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an image sequence (it holds one ``%d`` or ``%05d``)."""
    return len(_NUMBER.findall(Path(path).name)) == 1 and "%" not in str(Path(path).parent)


def sequence_name(pattern: str | os.PathLike[str], number: int) -> Path:
    """The file of frame ``number`` in a ``%05d`` pattern."""
    p = Path(pattern)
    return p.with_name(_NUMBER.sub(lambda m: f"%{m.group(1)}d" % number, p.name, count=1))


@dataclass(frozen=True)
class ClipInfo:
    """What a clip is, as probed, and which of its frames were chosen.

    ``frames`` counts the chosen frames (``--frames A:B``, ``--every N``), ``total`` all of
    them; ``fps`` is the rate of the chosen frames (the source's over N, so the duration stays);
    ``start``/``end`` are the times in seconds the choice covers (for the audio).
    """

    source: str
    frames: int
    total: int
    fps: Fraction
    width: int
    height: int
    codec: str
    audio: str | None
    start: float
    end: float
    indices: tuple[int, ...]

    def describe(self) -> str:
        audio = f", audio {self.audio}" if self.audio else ""
        chosen = "" if self.frames == self.total else f" of {self.total}"
        return (
            f"{self.width}x{self.height} px, {self.frames}{chosen} frames at "
            f"{float(self.fps):.3g} fps, {self.codec}{audio}"
        )


class Clip:
    """A video file or image sequence, opened for the frames ``options`` choose.

    Raises:
        InputError: missing, not a video, no video stream, no frames, or a frame that cannot be
            decoded (naming the codec).
        UsageError: --frames starts past the last frame.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        options: VideoOptions | None = None,
        *,
        what: str = "video",
    ) -> None:
        self.path, self.what = Path(path), what
        options = options or VideoOptions()
        if is_sequence(path):
            self._files = _sequence_files(self.path, what)
            total, fps, codec, audio = len(self._files), options.fps or SEQUENCE_FPS, "images", None
            first = _load(self._files[0], f"frame 0 of {what} '{path}'")
            height, width = first.shape[-2:]
            self._rotation = 0
        else:
            self._files = []
            total, fps, codec, audio, width, height, self._rotation = _probe(self.path, what)
        stop = total if options.stop is None else min(options.stop, total)
        if options.start >= total:
            raise UsageError(
                f"--frames starts at frame {options.start}, but {what} '{path}' has {total} "
                f"frame{'s' * (total != 1)} (0 to {total - 1})"
            )
        indices = tuple(range(options.start, stop, options.every))
        source_fps = Fraction(fps).limit_denominator(100_000)
        self.info = ClipInfo(
            source=os.fspath(path),
            frames=len(indices),
            total=total,
            fps=source_fps / options.every,
            width=int(width),
            height=int(height),
            codec=codec,
            audio=audio,
            start=float(options.start / source_fps),
            end=float(stop / source_fps),
            indices=indices,
        )

    def frames(self, first: int = 0) -> Iterator[torch.Tensor]:
        """The chosen frames from the ``first``-th of them on, each (1, 3, H, W) in [0, 1]."""
        wanted = self.info.indices[first:]
        if not wanted:
            return
        if self._files:
            for i in wanted:
                yield _load(self._files[i], f"frame {i} of {self.what} '{self.path}'")
            return
        yield from self._decode(set(wanted), wanted[-1])

    def _decode(self, wanted: set[int], last: int) -> Iterator[torch.Tensor]:
        av = require("av")
        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            sar = stream.codec_context.sample_aspect_ratio
            index = -1
            try:
                for frame in container.decode(stream):
                    index += 1
                    if index in wanted:
                        yield _frame_tensor(frame, sar, self._rotation)
                    if index >= last:
                        return
            except av.error.FFmpegError as e:
                raise InputError(
                    f"{self.what} '{self.path}': frame {index + 1} could not be decoded "
                    f"({self.info.codec}): {_reason(e)}"
                ) from None
        if index < last:
            raise InputError(
                f"{self.what} '{self.path}' ended after {index + 1} frames, though its header "
                f"promised {self.info.total}"
            )


def _probe(path: Path, what: str) -> tuple[int, float, str, str | None, int, int, int]:
    """(frames, fps, codec, audio codec, display width, height, rotation) of a video file."""
    av = require("av")
    if path.is_dir():
        raise InputError(f"{what} '{path}' is a folder, not a video")
    if not path.exists():
        raise InputError(f"{what} '{path}' does not exist")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise InputError(f"{what} '{path}' could not be read as a video: {_reason(e)}") from None
    with container:
        if not container.streams.video:
            raise InputError(f"{what} '{path}' has no video frames (it holds no video stream)")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        codec = ctx.name if ctx is not None else "unknown"
        if ctx is None or not _can_decode(av, codec):
            raise InputError(
                f"{what} '{path}' is coded in {codec}, which this build of FFmpeg (PyAV) cannot "
                "decode; convert it first, e.g. to H.264"
            )
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise InputError(f"{what} '{path}' does not say its frame rate")
        try:
            # Counting packets reads the file without decoding it; a header's count may be 0.
            total = sum(1 for p in container.demux(stream) if p.size)
        except av.error.FFmpegError as e:
            raise InputError(f"{what} '{path}' could not be read: {_reason(e)}") from None
        if total == 0:
            raise InputError(f"{what} '{path}' has no frames")
        width, height = ctx.width, ctx.height
        sar = ctx.sample_aspect_ratio
        if sar and sar != 1:
            width = max(1, round(width * sar))
        rotation = _rotation_of(av, path)
        if rotation % 180:
            width, height = height, width
    return total, float(rate), codec, audio, width, height, rotation


def _can_decode(av: Any, codec: str) -> bool:
    try:
        av.codec.Codec(codec, "r")
    except (av.codec.codec.UnknownCodecError, ValueError):
        return False
    return True


def _rotation_of(av: Any, path: Path) -> int:
    """The display matrix's turn, counterclockwise, in whole quarter turns of degrees (read
    from the first frame, where FFmpeg puts it)."""
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(container.streams.video[0]), None)
    except av.error.FFmpegError:  # a frame that cannot be decoded fails with its own message later
        return 0
    degrees = getattr(frame, "rotation", 0) or 0
    return int(round(degrees / 90.0)) % 4 * 90


def _frame_tensor(frame: Any, sar: Any, rotation: int) -> torch.Tensor:
    """A decoded frame as displayed: (1, 3, H, W) float32 in [0, 1]."""
    rgb = frame.to_ndarray(format="rgb24")
    if rotation:
        rgb = np.rot90(rgb, rotation // 90)  # counterclockwise, as the display matrix says
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0)
    t = t.float().div_(255.0)
    if sar and sar != 1:
        from impasto.image import resize_to

        h, w = t.shape[-2:]
        if rotation % 180:
            t = resize_to(t, max(1, round(h * sar)), w)
        else:
            t = resize_to(t, h, max(1, round(w * sar)))
    return t


def _sequence_files(pattern: Path, what: str) -> list[Path]:
    """The files of an image sequence, in the order of their numbers."""
    folder = pattern.parent
    prefix, number, suffix = _NUMBER.split(pattern.name, maxsplit=1)
    width = int(number) if number.strip("0") else 0
    digits = rf"\d{{{width},}}" if width else r"\d+"
    regex = re.compile(re.escape(prefix) + f"({digits})" + re.escape(suffix))
    if not folder.is_dir():
        raise InputError(f"{what} '{pattern}': the folder '{folder}' does not exist")
    found = sorted(
        (int(m.group(1)), folder / name)
        for name in os.listdir(folder)
        if (m := regex.fullmatch(name))
    )
    if not found:
        raise InputError(f"{what} '{pattern}' matches no files in '{folder}'")
    return [p for _, p in found]


def _load(path: Path, what: str) -> torch.Tensor:
    from impasto.image import load_image

    return load_image(path, what=what)


def _reason(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error)
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text.strip())
    return text.split(":", 1)[0].strip() if "'" in text else text
