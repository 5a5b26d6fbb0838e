"""``VideoOptions``: the knobs of a video run that a single image does not have, bounded.

The painting itself is still a :class:`~impasto.config.StyleConfig` (every option of
``impasto stylize`` applies to a video); these say how frames are chosen and how strongly each
frame holds to the last. Like StyleConfig, every field is checked before anything is read or
allocated, and the command line is built from the fields' help. No torch here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from impasto.config import MAX_STEPS, MAX_WEIGHT, StyleConfig
from impasto.errors import UsageError

FlowName = Literal["dis"]

# The longest look back of long-term consistency, in frames (Ruder et al. used up to 4 and 8).
MAX_LOOK_BACK = 16
MAX_EVERY = 10_000
MAX_FPS = 1000.0
# Frame rate of an image sequence given as input, as FFmpeg assumes for one.
SEQUENCE_FPS = 25.0


def _opt(default: Any, help: str, metavar: str | None = None) -> Any:
    return field(default=default, metadata={"help": help, "metavar": metavar})


@dataclass(frozen=True)
class VideoOptions:
    """How a video is painted beyond the style: temporal loss, later frames, which frames."""

    temporal_weight: float = _opt(
        500.0,
        "weight of the temporal loss, which holds each frame to the last one warped by the "
        "optical flow wherever the flow is reliable (0 = frames independent but started from "
        "the last one)",
        "W",
    )
    # 10 and 20 steps scored the same flicker and style (docs/decisions.md); 15 keeps a later
    # frame near 30% of the first one's time at 512 px.
    later_iterations: int = _opt(
        15,
        "optimisation steps of each frame after the first, at full size (the first frame runs "
        "the whole coarse-to-fine schedule); later frames start close to their answer",
        "N",
    )
    temporal_frames: tuple[int, ...] = _opt(
        (1,),
        "earlier frames each frame is held to, counted back (1 = the last one; 1,2,4 adds "
        "Ruder et al.'s long-term consistency, each farther frame only where the nearer ones "
        "cannot see)",
        "K[,K...]",
    )
    start: int = _opt(0, "first frame to paint, counted from 0", "A")
    stop: int | None = _opt(None, "frame to stop before (None: the end)", "B")
    every: int = _opt(
        1,
        "paint every Nth frame only, for a quick look (the frame rate is divided by N, so the duration stays)",
        "N",
    )
    fps: float | None = _opt(
        None,
        f"frame rate of an image sequence given as input (auto: {SEQUENCE_FPS:g}); a video "
        "file's own rate is always kept",
        "FPS",
    )
    flow: FlowName = _opt("dis", "optical flow: 'dis' (OpenCV's DIS, no model to download)")

    def __post_init__(self) -> None:
        if not isinstance(self.temporal_frames, tuple):
            object.__setattr__(self, "temporal_frames", tuple(self.temporal_frames))
        self.validate()

    def validate(self) -> None:
        """Raise UsageError naming the option, what was expected and what was found."""
        w = self.temporal_weight
        if (
            not isinstance(w, (int, float))
            or isinstance(w, bool)
            or not math.isfinite(w)
            or not 0 <= w <= MAX_WEIGHT
        ):
            raise UsageError(
                f"--temporal-weight must be a finite number >= 0 and at most {MAX_WEIGHT:g}, "
                f"not {w!r}"
            )
        _whole("later_iterations", self.later_iterations, 1, MAX_STEPS)
        if not self.temporal_frames:
            raise UsageError("--temporal-frames needs at least one value")
        for k in self.temporal_frames:
            _whole("temporal_frames", k, 1, MAX_LOOK_BACK)
        if len(set(self.temporal_frames)) != len(self.temporal_frames):
            raise UsageError(
                f"--temporal-frames lists a frame twice: {_join(self.temporal_frames)}"
            )
        _whole("start", self.start, 0, 10**9, option="frames")
        if self.stop is not None:
            _whole("stop", self.stop, 1, 10**9, option="frames")
            if self.stop <= self.start:
                raise UsageError(
                    f"--frames {self.start}:{self.stop} is empty: the end must come after the start"
                )
        _whole("every", self.every, 1, MAX_EVERY)
        if self.fps is not None:
            f = self.fps
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= MAX_FPS:
                raise UsageError(f"--fps must be a number > 0 and at most {MAX_FPS:g}, not {f!r}")
        if self.flow != "dis":
            raise UsageError(f"--flow must be one of dis, not '{self.flow}'")

    @property
    def look_back(self) -> tuple[int, ...]:
        """The temporal frames, nearest first (their order gives long-term weights)."""
        return tuple(sorted(self.temporal_frames))

    def later_config(self, config: StyleConfig) -> StyleConfig:
        """The settings of every frame after the first: one scale at full size, few steps."""
        return config.replace(scales=1, iterations=(self.later_iterations,))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> VideoOptions:
        from dataclasses import replace

        return replace(self, **changes)


def parse_frames(text: str) -> tuple[int, int | None]:
    """``"A:B"`` (either side may be left out) -> (start, stop); stop excluded, as in Python."""
    start, sep, stop = text.strip().partition(":")
    if not sep:
        raise UsageError(f"--frames expects A:B (e.g. 0:120, 30: or :60), not '{text}'")
    try:
        a = int(start) if start.strip() else 0
        b = int(stop) if stop.strip() else None
    except ValueError:
        raise UsageError(f"--frames expects whole numbers A:B (e.g. 0:120), not '{text}'") from None
    if a < 0 or (b is not None and b < 0):
        raise UsageError(f"--frames counts from 0 and cannot be negative: '{text}'")
    return a, b


def help_of(name: str) -> str:
    """The --help text of a field, with its default."""
    for f in fields(VideoOptions):
        if f.name == name:
            default = f.default
            if isinstance(default, tuple):
                default = ",".join(map(str, default))
            shown = (
                "auto"
                if default is None
                else f"{default:g}"
                if isinstance(default, float)
                else default
            )
            return f"{f.metadata['help']} (default: {shown})"
    raise KeyError(name)


def _whole(name: str, value: Any, low: int, high: int, *, option: str | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        shown = option or name.replace("_", "-")
        raise UsageError(
            f"--{shown} must be a whole number from {low:,} to {high:,}, not {value!r}"
        )


def _join(values: tuple[int, ...]) -> str:
    return ",".join(str(v) for v in values)
