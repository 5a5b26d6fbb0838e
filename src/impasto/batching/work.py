"""One item's work, the same on every backend: decode the inputs' bytes, run the engine, and hand
back the pixels or the reason the item failed; and the local backend, which does it in-process.

Inputs travel as bytes, never as paths, so that a worker on another machine needs no shared
file system, and the sha256 in the manifest is that of the very bytes that were painted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from impasto.balance import MEASURE_SIZE
from impasto.batching.manifest import worker_name
from impasto.config import StyleConfig
from impasto.engine import Stylizer
from impasto.errors import ImpastoError
from impasto.image import decode_image
from impasto.optimize import Progress

# (item index, step, total steps, worker): how far an item is.
StepFn = Callable[[int, int, int, str], None]


@dataclass(frozen=True)
class Job:
    """What a worker needs for one item: its index in the batch, the photo's bytes, which of the
    batch's styles (their bytes travel once, by ``style_key``) and the settings. ``unreadable``
    says why the photo or the style could not be read, when one could not."""

    index: int
    content_name: str
    content: bytes
    style_name: str
    style_key: str
    config: StyleConfig
    unreadable: str = ""


@dataclass(frozen=True)
class Outcome:
    """What came of a job: the image, (1, 3, H, W) float32 in [0, 1], or ``reason`` it failed."""

    index: int
    image: np.ndarray | None
    steps: int
    seconds: float
    worker: str
    reason: str = ""
    style_weight_used: float | None = None  # the weight --balance auto chose for the pair


def run_job(engine: Stylizer, job: Job, style: bytes, on_step: StepFn | None = None) -> Outcome:
    """Run one job on ``engine``. A user error (an unreadable or too small image, a size that
    does not fit in memory) fails this item only; anything else is a bug and propagates."""
    start = time.perf_counter()
    worker = worker_name()
    steps = 0

    def report(p: Progress) -> None:
        nonlocal steps
        steps = p.step
        if on_step is not None:
            on_step(job.index, p.step, p.total_steps, worker)

    try:
        if job.unreadable:
            raise ImpastoError(job.unreadable)

        # Decoded no larger than the run needs (and the balance, at its own size, measures),
        # as the engine would read the files.
        def read(size: int) -> tuple[torch.Tensor, torch.Tensor]:
            side = max(1, round(size * job.config.style_scales_for(1)[0]))
            return (
                decode_image(job.content, name=job.content_name, what="content image", fit=size),
                decode_image(style, name=job.style_name, what="style image", fit=side),
            )

        config = job.config
        if config.auto_balance:
            config = engine.balanced(*read(MEASURE_SIZE), config)
        image = engine.stylize(*read(config.size), config, on_progress=report)
    except ImpastoError as e:
        return Outcome(job.index, None, steps, time.perf_counter() - start, worker, str(e))
    used = config.style_weight if job.config.auto_balance else None
    return Outcome(job.index, image.numpy(), steps, time.perf_counter() - start, worker, "", used)


class LocalBackend:
    """Every item in this process, on one engine (which already uses every core)."""

    def __init__(self, engine: Stylizer) -> None:
        self.engine = engine

    def start(self, config: StyleConfig) -> None:
        """Build the network now: broken weights stop the batch before its first item."""
        self.engine.network(config)

    def run(
        self,
        jobs: Iterator[Job],
        styles: dict[str, bytes],
        on_step: StepFn | None,
        stopping: Callable[[], bool],
    ) -> Iterator[Outcome]:
        while not stopping():
            job = next(jobs, None)
            if job is None:
                return
            yield run_job(self.engine, job, styles[job.style_key], on_step)

    def close(self) -> None:
        pass
