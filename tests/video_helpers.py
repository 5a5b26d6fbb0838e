"""Synthetic clips for the video tests: a photo from the examples panned and zoomed by known
amounts, so that the true motion between frames is known, written with PyAV directly."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from impasto.image import load_image
from tests.conftest import EXAMPLES

PHOTO = EXAMPLES / "mountains.jpg"


def view(x: float, y: float, zoom: float = 1.0, h: int = 64, w: int = 96) -> torch.Tensor:
    """The photo seen through an h x w window whose top-left corner is at (x, y) in units of
    output pixels (the photo shown at 2 output pixels per 3 photo pixels), magnified ``zoom``
    times about the window's centre: a camera at that place.

    Shape: -> (1, 3, h, w).
    """
    photo = load_image(PHOTO)
    _, _, ph, pw = photo.shape
    k = 1.5  # photo pixels per output pixel
    cx, cy = (x + w / 2) * k, (y + h / 2) * k
    cw, ch = w * k / zoom, h * k / zoom
    theta = torch.tensor(
        [[[cw / pw, 0, 2 * cx / pw - 1], [0, ch / ph, 2 * cy / ph - 1]]], dtype=torch.float32
    )
    grid = F.affine_grid(theta, (1, 3, 2 * h, 2 * w), align_corners=False)
    return F.avg_pool2d(F.grid_sample(photo, grid, mode="bicubic", align_corners=False), 2).clamp(
        0, 1
    )


def pan(n: int = 12, dx: float = 2.0, dy: float = 1.0, **size: int) -> list[torch.Tensor]:
    """The camera moves (dx, dy) px a frame, so the picture moves (-dx, -dy)."""
    return [view(60 + i * dx, 40 + i * dy, **size) for i in range(n)]


def write_clip(
    path: Path,
    frames: list[torch.Tensor],
    fps: int = 12,
    *,
    codec: str = "libx264",
    audio: str | None = None,
    rotation: int = 0,
) -> Path:
    """Encode ``frames`` (even sizes) with PyAV; ``audio``: an audio codec for a 440 Hz tone
    as long as the video."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = frames[0].shape[-1], frames[0].shape[-2]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "12"}
        if rotation:
            stream.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = out.add_stream(audio, rate=48000, layout="mono")
        for f in frames:
            rgb = (f[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if sound is not None:
            _tone(av, out, sound, len(frames) / fps)
    return path


def _tone(av: object, out: object, stream: object, seconds: float) -> None:
    rate, chunk = 48000, 1024
    total = int(rate * seconds)
    fmt = stream.codec_context.format.name  # type: ignore[attr-defined]
    dtype = {"fltp": np.float32, "s16": np.int16, "flt": np.float32}[fmt]
    t, pts = 0, 0
    while t < total:
        n = min(chunk, total - t)
        wave = np.sin(2 * math.pi * 440 * (np.arange(t, t + n) / rate)) * 0.3
        samples = (wave * 32767).astype(np.int16) if dtype is np.int16 else wave.astype(np.float32)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format=fmt, layout="mono")  # type: ignore[attr-defined]
        frame.sample_rate, frame.pts, frame.time_base = rate, pts, Fraction(1, rate)
        for packet in stream.encode(frame):  # type: ignore[attr-defined]
            out.mux(packet)  # type: ignore[attr-defined]
        t, pts = t + n, pts + n
    for packet in stream.encode(None):  # type: ignore[attr-defined]
        out.mux(packet)  # type: ignore[attr-defined]
