"""What one job may cost on this server: the operator's caps, and the check of a job against them.

``StyleConfig`` bounds every option for any front (no value can crash a run); a server that
strangers' browsers can reach needs tighter bounds, set by whoever starts it: the largest image
a job makes, its steps, its run time, how many jobs may wait, how much the data folder keeps.
Each refusal names the ``impasto serve`` option that would allow it. No torch, no web framework:
``impasto serve --help`` reads the defaults from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from impasto.config import StyleConfig
from impasto.errors import UsageError

MB = 2**20


@dataclass(frozen=True)
class Limits:
    """The caps of one server. ``0`` for ``max_seconds`` or ``max_data_bytes`` means none."""

    max_upload_bytes: int = 25 * MB  # each image file
    max_pixels: int = 50_000_000  # each image, read from its header before it is decoded
    max_size: int = 2048  # the long side of every image a job makes: the output and each style
    max_styles: int = 8
    max_steps: int = 1000  # a job's steps, all its scales together (the tutorial preset: 1000)
    max_seconds: float = 3600.0  # a job's run time; then it stops and keeps its picture
    max_queue: int = 20  # jobs waiting for a worker
    max_data_bytes: int = 2048 * MB  # the jobs' files; the oldest finished ones go first

    @classmethod
    def from_options(
        cls,
        *,
        upload_mb: float,
        megapixels: float,
        size: int,
        styles: int,
        steps: int,
        minutes: float,
        queue: int,
        data_mb: float,
    ) -> Limits:
        """The limits from ``impasto serve``'s options, in the units they are typed in."""
        for option, value in (
            ("--max-upload-mb", upload_mb),
            ("--max-pixels", megapixels),
            ("--max-size", size),
            ("--max-styles", styles),
            ("--max-steps", steps),
            ("--max-queue", queue),
        ):
            if not (math.isfinite(value) and value > 0):
                raise UsageError(f"{option} must be positive, not {value:g}")
        for option, value in (("--max-minutes", minutes), ("--max-data-mb", data_mb)):
            if not (math.isfinite(value) and value >= 0):
                raise UsageError(f"{option} must be 0 (no limit) or positive, not {value:g}")
        return cls(
            max_upload_bytes=max(1, int(upload_mb * MB)),
            max_pixels=max(1, int(megapixels * 1e6)),
            max_size=size,
            max_styles=styles,
            max_steps=steps,
            max_seconds=minutes * 60.0,
            max_queue=queue,
            max_data_bytes=int(data_mb * MB),
        )

    @property
    def max_request_bytes(self) -> int:
        """The most one request may carry: every image at its largest, and the form's text."""
        return self.max_upload_bytes * (self.max_styles + 1) + MB

    def check(self, config: StyleConfig, n_styles: int) -> None:
        """Refuse a job that would cost more than this server allows (UsageError naming the
        server's option); ``config`` itself is already valid."""
        if n_styles > self.max_styles:
            raise UsageError(
                f"{n_styles} style images were sent; this server takes at most {self.max_styles} "
                "(impasto serve --max-styles)"
            )
        if config.size > self.max_size:
            raise UsageError(
                f"--size {config.size} is larger than this server allows ({self.max_size} px); "
                "start impasto serve with a larger --max-size to allow it"
            )
        config.style_weights_for(n_styles)  # --style-blend: one weight per style image
        # A style image is made at --size x --style-scale: it costs memory like an output would.
        scales = config.style_scales_for(n_styles)
        widest = max(scales)
        style_side = round(config.size * widest)
        if style_side > self.max_size:
            raise UsageError(
                f"--style-scale {widest:g} at --size {config.size} makes a {style_side} px style "
                f"image; this server makes images up to {self.max_size} px (--max-size): use a "
                "smaller --style-scale or --size"
            )
        steps = config.total_steps
        if steps > self.max_steps:
            raise UsageError(
                f"this job would take {steps:,} steps ({_schedule(config)}); this server runs at "
                f"most {self.max_steps:,} a job (impasto serve --max-steps): use fewer --iterations"
            )


def _schedule(config: StyleConfig) -> str:
    return " + ".join(f"{n} at {side} px" for side, n in config.schedule())
