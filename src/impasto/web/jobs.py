"""Jobs: a queue of stylize runs, worked through one at a time per worker thread.

Each job lives in its own folder, ``<data>/jobs/<uuid>/``: the uploaded images under names the
server chose, ``job.json`` (its state, rewritten atomically at every change that matters),
``preview.jpg`` (the image as it forms) and ``result.png``. Nothing here knows about HTTP; the
web app (``impasto.web.app``) calls :class:`JobManager` and streams :meth:`JobManager.events`.

The optimiser runs in worker threads, never on the event loop: torch releases the GIL while it
computes, so the server keeps answering. Cancelling sets an event that the progress callback
checks after every step, so a run stops within one step and its thread goes back to waiting.

This module is longer than 400 lines because the queue, its worker threads and the job
folders' life cycle (kept across restarts) share one lock and belong together.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from impasto.config import StyleConfig
from impasto.errors import ImpastoError
from impasto.files import atomic_write
from impasto.web.uploads import remove_tree

log = logging.getLogger("impasto.web")

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
STOPPED_RUNNING = "the server stopped while this job was running"
STOPPED_QUEUED = "the server stopped before this job could start"

# A new preview at most this often (seconds), and always at the first step: frequent enough to
# watch the image form, rare enough that encoding previews costs nothing next to the steps.
PREVIEW_INTERVAL = 0.4
# Previews of large runs are scaled down to this long side; the result keeps its full size.
PREVIEW_SIZE = 768
# How many recent events a job keeps for listeners that fall behind (each is a full snapshot,
# so a listener that misses some loses nothing but intermediate steps).
EVENT_BACKLOG = 256

Runner = Callable[..., Any]  # stylize's signature: (content, style, config, *, on_progress, cache)


class Cancelled(Exception):
    """Raised inside the progress callback to stop a run (never leaves this module)."""


def new_id() -> str:
    return str(uuid.uuid4())


def valid_id(text: str) -> bool:
    """True for a job id as this server makes them (a canonical UUID): no path can pass."""
    try:
        return str(uuid.UUID(text)) == text
    except (ValueError, AttributeError, TypeError):
        return False


@dataclass
class Job:
    id: str
    folder: Path
    content: str  # file names in the job folder, chosen by the server
    styles: list[str]
    content_name: str  # the names the client gave, for display
    style_names: list[str]
    options: dict[str, Any]  # what the client set (text), as given
    settings: dict[str, Any]  # the whole StyleConfig that runs
    state: str = QUEUED
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    step: int = 0
    total_steps: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    total_loss: float | None = None
    run_elapsed: float = 0.0  # seconds spent in optimisation steps (from Progress.elapsed)
    preview_step: int = 0
    width: int | None = None
    height: int | None = None
    error: str | None = None
    cancelling: bool = False
    # Runtime only (not saved):
    config: StyleConfig | None = field(default=None, repr=False)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    stop_reason: str | None = field(default=None, repr=False)
    seq: int = field(default=0, repr=False)
    events: deque[tuple[int, str, dict[str, Any]]] = field(
        default_factory=lambda: deque(maxlen=EVENT_BACKLOG), repr=False
    )

    SAVED = (
        "id",
        "content",
        "styles",
        "content_name",
        "style_names",
        "options",
        "settings",
        "state",
        "created",
        "started",
        "finished",
        "step",
        "total_steps",
        "losses",
        "total_loss",
        "run_elapsed",
        "preview_step",
        "width",
        "height",
        "error",
    )

    def saved(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.SAVED}

    @classmethod
    def load(cls, folder: Path) -> Job:
        data = json.loads((folder / "job.json").read_text(encoding="utf-8"))
        known = {k: data[k] for k in cls.SAVED if k in data}
        if known.get("id") != folder.name:
            raise ValueError("job.json does not match its folder")
        return cls(folder=folder, **known)

    @property
    def result_path(self) -> Path:
        return self.folder / "result.png"

    @property
    def preview_path(self) -> Path:
        return self.folder / "preview.jpg"


class JobManager:
    """The queue, the workers and the job folders under ``data_dir``."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        cache: str | os.PathLike[str] | None = None,
        workers: int = 1,
        runner: Runner | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.jobs_dir = self.data_dir / "jobs"
        self.staging_dir = self.data_dir / "incoming"
        self.cache = cache
        self.workers = max(1, workers)
        self._runner = runner
        self._jobs: dict[str, Job] = {}
        self._queue: deque[str] = deque()
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        self._finished_recently: list[Job] = []
        self.stopping = False
        # Set as soon as the server is asked to stop, so that event streams end and let it.
        self.closing = threading.Event()

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Create the folders, recover the jobs of earlier runs, start the workers."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        remove_tree(self.staging_dir)  # half-received uploads of a server that stopped
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self._recover()
        self.stopping = False
        self.closing.clear()
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"impasto-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers; queued and running jobs end as failed, saying why."""
        self.closing.set()
        with self._lock:
            if self.stopping:
                return
            self.stopping = True
            while self._queue:
                self._finish(self._jobs[self._queue.popleft()], FAILED, error=STOPPED_QUEUED)
            for job in self._jobs.values():
                if job.state == RUNNING:
                    job.stop_reason = STOPPED_RUNNING
                    job.cancel.set()
            self._wake.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        with self._lock:
            # A run stuck before its first step (loading weights) cannot see its cancel event;
            # it is recorded as failed now, and its thread dies with the process.
            for job in self._jobs.values():
                if job.state == RUNNING:
                    self._finish(job, FAILED, error=STOPPED_RUNNING)

    def _recover(self) -> None:
        for folder in sorted(self.jobs_dir.iterdir()):
            if not (folder.is_dir() and valid_id(folder.name)):
                continue
            try:
                job = Job.load(folder)
            except (OSError, ValueError, TypeError) as e:
                log.warning("skipping job folder %s: %s", folder.name, e)
                continue
            if job.state in (RUNNING, QUEUED):
                # It ended when its state was last saved, not now (the server may have been
                # down for a day).
                last = job.started + job.run_elapsed if job.started else job.created
                reason = STOPPED_RUNNING if job.state == RUNNING else STOPPED_QUEUED
                self._finish(job, FAILED, error=reason, notify=False, at=last)
            self._jobs[job.id] = job

    # -- submitting and cancelling -------------------------------------------------------------

    def staging_folder(self) -> tuple[str, Path]:
        """A new job id and an empty folder to receive its uploads (see :meth:`submit`)."""
        job_id = new_id()
        folder = self.staging_dir / job_id
        folder.mkdir()
        return job_id, folder

    def submit(
        self,
        job_id: str,
        staged: Path,
        *,
        content: Path,
        styles: Sequence[Path],
        content_name: str,
        style_names: Sequence[str],
        config: StyleConfig,
        options: dict[str, Any],
    ) -> Job:
        """Move a staged folder into place and queue its job."""
        folder = self.jobs_dir / job_id
        job = Job(
            id=job_id,
            folder=folder,
            content=content.name,
            styles=[s.name for s in styles],
            content_name=content_name,
            style_names=list(style_names),
            options=dict(options),
            settings=config.to_dict(),
            config=config,
            total_steps=config.total_steps,
        )
        with self._lock:
            if self.stopping:
                raise ImpastoError("the server is stopping; try again once it is back")
            os.replace(staged, folder)
            self._jobs[job_id] = job
            self._queue.append(job_id)
            self._save(job)
            self._emit(job, "queued")
            self._wake.notify()
        log.info("job %s queued (%s)", job_id, self.describe(job))
        return job

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once, or a running one at its next step; None if unknown."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state == QUEUED:
                self._queue.remove(job_id)
                self._finish(job, CANCELLED)
                self._queue_moved()
            elif job.state == RUNNING and not job.cancelling:
                job.cancelling = True
                job.cancel.set()
                self._emit(job, "cancelling")
            return job

    # -- reading -------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)

    def position(self, job: Job) -> int | None:
        """1 for the next job to start, 2 for the one after it...; None unless queued."""
        with self._lock:
            try:
                return self._queue.index(job.id) + 1
            except ValueError:
                return None

    def snapshot(self, job: Job) -> dict[str, Any]:
        """The job as the API shows it (everything a page needs to draw it)."""
        with self._lock:
            now = time.time()
            running = job.state == RUNNING
            elapsed = ((job.finished or now) - job.started) if job.started else 0.0
            eta = None
            if running and job.step > 0 and job.total_steps:
                eta = job.run_elapsed / job.step * (job.total_steps - job.step)
            base = f"/api/jobs/{job.id}"
            return {
                "id": job.id,
                "state": job.state,
                "position": self.position(job),
                "cancelling": job.cancelling,
                "created": job.created,
                "started": job.started,
                "finished": job.finished,
                "step": job.step,
                "total_steps": job.total_steps,
                "elapsed": round(elapsed, 3),
                "eta": None if eta is None else round(eta, 3),
                "losses": dict(job.losses),
                "total_loss": job.total_loss,
                "width": job.width,
                "height": job.height,
                "content_name": job.content_name,
                "style_names": list(job.style_names),
                "options": dict(job.options),
                "settings": dict(job.settings),
                "error": job.error,
                "url": base,
                "events_url": f"{base}/events",
                "preview_url": f"{base}/preview?step={job.preview_step}"
                if job.preview_step
                else None,
                "result_url": f"{base}/result" if job.state == DONE else None,
            }

    def events(self, job: Job, after: int) -> tuple[list[tuple[int, str, dict[str, Any]]], bool]:
        """Events of ``job`` with a sequence number above ``after``, and whether it has finished."""
        with self._lock:
            new = [e for e in job.events if e[0] > after]
            return new, job.state in FINISHED

    def subscribe(self, job: Job) -> tuple[int, dict[str, Any]]:
        """The job now and the number of its last event: a listener's starting point."""
        with self._lock:
            return job.seq, self.snapshot(job)

    @staticmethod
    def describe(job: Job) -> str:
        styles = " + ".join(job.style_names)
        return f"{job.content_name} in the style of {styles}"

    # -- the workers ---------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self.stopping:
                    self._wake.wait()
                if self.stopping:
                    return
                job = self._jobs[self._queue.popleft()]
                job.state, job.started = RUNNING, time.time()
                self._save(job)
                self._emit(job, "started")
                self._queue_moved()
            log.info("job %s started", job.id)
            try:
                self._run(job)
            except Exception as e:  # a bug here must not take the worker down with it
                log.exception("job %s: unexpected error", job.id)
                with self._lock:
                    self._finish(job, FAILED, error=f"internal error ({type(e).__name__}: {e})")

    def _run(self, job: Job) -> None:
        assert job.config is not None
        state = {"last_preview": -math.inf}

        def on_progress(p: Any) -> None:
            if job.cancel.is_set():
                raise Cancelled
            now = time.monotonic()
            preview = p.image is not None and (
                p.step == 1 or now - state["last_preview"] >= PREVIEW_INTERVAL
            )
            if preview:
                self._write_preview(job, p.image)
                state["last_preview"] = now
            with self._lock:
                job.step, job.total_steps = p.step, p.total_steps
                job.losses = {k: float(v) for k, v in p.losses.items()}
                job.total_loss, job.run_elapsed = float(p.total), float(p.elapsed)
                if preview:
                    job.preview_step = p.step
                    self._save(job)  # a preview is a good moment to record the progress
                self._emit(job, "progress")

        content = job.folder / job.content
        styles = [job.folder / s for s in job.styles]
        try:
            image = self.runner(
                content,
                styles[0] if len(styles) == 1 else styles,
                job.config,
                on_progress=on_progress,
                cache=self.cache,
            )
            self._write_result(job, image)
        except Cancelled:
            with self._lock:
                if job.stop_reason:
                    self._finish(job, FAILED, error=job.stop_reason)
                else:
                    self._finish(job, CANCELLED)
            log.info("job %s %s at step %d", job.id, job.state, job.step)
        except ImpastoError as e:
            with self._lock:
                self._finish(job, FAILED, error=str(e))
            log.info("job %s failed: %s", job.id, e)
        except MemoryError:
            with self._lock:
                self._finish(job, FAILED, error="out of memory: try a smaller size")
        except Exception as e:  # a bug: keep the traceback in the server's log, not the page
            log.exception("job %s failed", job.id)
            with self._lock:
                self._finish(job, FAILED, error=f"internal error ({type(e).__name__}: {e})")
        else:
            with self._lock:
                job.width, job.height = int(image.shape[-1]), int(image.shape[-2])
                self._finish(job, DONE)
            log.info("job %s done in %.0f s", job.id, (job.finished or 0) - (job.started or 0))

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            from impasto.engine import stylize  # one engine per device, kept for every job

            self._runner = stylize
        return self._runner

    def _write_preview(self, job: Job, image: Any) -> None:
        from impasto.image import resize_long_side, save_image

        if max(image.shape[-2:]) > PREVIEW_SIZE:
            image = resize_long_side(image.detach(), PREVIEW_SIZE)
        save_image(image, job.preview_path, quality=85)

    def _write_result(self, job: Job, image: Any) -> None:
        from impasto.image import save_image
        from impasto.record import RunRecord

        assert job.config is not None
        record = RunRecord(
            content=job.content_name,
            styles=tuple(job.style_names),
            config=job.config,
            made_by="impasto serve",
            steps=job.step,
            seconds=job.run_elapsed,
        )
        save_image(image, job.result_path, metadata=record.to_metadata())

    # -- state changes (called with the lock held) ---------------------------------------------

    def _finish(
        self,
        job: Job,
        state: str,
        *,
        error: str | None = None,
        notify: bool = True,
        at: float | None = None,
    ) -> None:
        if job.state in FINISHED:
            return
        job.state, job.error, job.cancelling = state, error, False
        job.finished = time.time() if at is None else at
        self._save(job)
        if notify:
            self._emit(job, state)
        # The step-by-step history of a finished job is kept for listeners still catching up
        # until the next job finishes; after that its final event says it all.
        for other in self._finished_recently:
            while len(other.events) > 1:
                other.events.popleft()
        self._finished_recently = [job]

    def _queue_moved(self) -> None:
        """Tell every waiting job its new place in the queue."""
        for job_id in self._queue:
            self._emit(self._jobs[job_id], "queued")

    def _emit(self, job: Job, name: str) -> None:
        job.seq += 1
        job.events.append((job.seq, name, self.snapshot(job)))

    def _save(self, job: Job) -> None:
        """Write job.json atomically: a crash leaves the old state or the new, never half."""
        if not job.folder.is_dir():
            return
        try:
            with atomic_write(job.folder / "job.json", "w", permissions_like_target=False) as f:
                json.dump(job.saved(), f, indent=1)
        except ImpastoError as e:
            # The state in memory is still right; only a restart would show an older one.
            log.warning("job %s: could not save its state: %s", job.id, e)
