"""The figures of a stylized video: how much it flickers, and how each frame scores.

**Temporal error**: for every frame t after the first, the root mean square difference between
stylized frame t and stylized frame t-1 warped to t, over the pixels the consistency check
finds reliable, in 8-bit levels (0-255); the figure is its mean over frames. The flow and the
reliability come from the INPUT frames, never from the stylized ones, so a tool cannot lower
the figure by blurring its own motion. The input clip's own figure (its frames warped the same
way) is the floor that flow errors and changes of light leave.

**Per-frame figures**: :func:`impasto.score.score`'s style and content distances (VGG-16) of
each stylized frame against its input frame and the painting.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from impasto.errors import InputError
from impasto.image import resize_to
from impasto.video.flow import FlowBackend, get_flow, reliability, warp

LEVELS = 255.0


def masked_rms(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor) -> float:
    """sqrt(sum(c (a - b)^2) / (3 sum c)) in 8-bit levels; nan where no pixel is reliable.

    Shape: (1, 3, H, W), (1, 3, H, W), (1, 1, H, W) -> a number.
    """
    total = float(weight.sum())
    if total <= 0:
        return math.nan
    mse = float((weight * (a - b) ** 2).sum()) / (3 * total)
    return math.sqrt(mse) * LEVELS


def temporal_errors(
    stylized: Iterable[torch.Tensor],
    contents: Iterable[torch.Tensor],
    flow: FlowBackend | None = None,
) -> tuple[list[float], list[float]]:
    """Per frame t >= 1: the stylized clip's and the input clip's temporal error, in levels.

    The input frames are brought to the stylized frames' size first.

    Shape: two sequences of (1, 3, H, W) frames, in step.
    """
    flow = flow or get_flow("dis")
    out, floor = [], []
    prev_y = prev_c = None
    for y, c in zip(stylized, contents, strict=True):
        c = resize_to(c, *y.shape[-2:])
        if prev_y is not None and prev_c is not None:
            backward, forward = flow(c, prev_c), flow(prev_c, c)
            weight = reliability(backward, forward)
            # Bicubic, as impasto video warps: a bilinear warp softens the last frame, and a
            # figure against a soft picture would favour soft videos.
            out.append(masked_rms(y, warp(prev_y, backward, "bicubic"), weight))
            floor.append(masked_rms(c, warp(prev_c, backward, "bicubic"), weight))
        prev_y, prev_c = y, c
    return out, floor


@dataclass(frozen=True)
class VideoScore:
    """The figures of a stylized clip: temporal error (and the input's own), and the mean
    per-frame style and content distances, with the per-frame values."""

    temporal: float
    input_temporal: float
    style: float
    content: float
    frames: int
    per_frame: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def score_video(
    stylized: Iterator[torch.Tensor],
    contents: Iterator[torch.Tensor],
    style: str | os.PathLike[str] | torch.Tensor,
    *,
    cache: str | os.PathLike[str] | None = None,
    frames: bool = True,
    on_frame: Callable[[int], None] | None = None,
) -> VideoScore:
    """All the figures of a stylized clip against its input clip and the painting.

    ``frames=False`` skips the per-frame style and content figures (the temporal error alone
    needs no network). ``on_frame(i)`` is called as each frame is measured.
    """
    from impasto.score import score

    flow = get_flow("dis")
    errors, floor, style_d, content_d = [], [], [], []
    prev: tuple[torch.Tensor, torch.Tensor] | None = None
    count = 0
    for y, c in zip(stylized, contents, strict=False):
        c = resize_to(c, *y.shape[-2:])
        if prev is not None:  # frames streamed: only the last one is kept
            e, f = temporal_errors([prev[0], y], [prev[1], c], flow)
            errors += e
            floor += f
        if frames:
            s = score(y, c, style, cache=cache)
            style_d.append(s.style), content_d.append(s.content)
        prev, count = (y, c), count + 1
        if on_frame is not None:
            on_frame(count)
    if count < 2:
        raise InputError(f"a temporal error needs at least 2 frames; the video has {count}")
    return VideoScore(
        temporal=_mean(errors),
        input_temporal=_mean(floor),
        style=_mean(style_d) if frames else math.nan,
        content=_mean(content_d) if frames else math.nan,
        frames=count,
        per_frame={
            "temporal": errors,
            "input_temporal": floor,
            "style": style_d,
            "content": content_d,
        },
    )
