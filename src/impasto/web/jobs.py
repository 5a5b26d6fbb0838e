"""Jobs: a queue of stylize runs, worked through one at a time per worker thread.

Each job lives in its own folder, ``<data>/jobs/<uuid>/`` (see ``impasto.web.storage``):
its uploads, ``job.json`` (its state, rewritten atomically at every change that matters) and
its pictures. Nothing here knows about HTTP; the web app (``impasto.web.app``) calls
:class:`JobManager` and streams :meth:`JobManager.events`.

The optimiser runs in worker threads, never on the event loop: torch releases the GIL while it
computes, so the server keeps answering. The progress callback, called after every step, is
where a run is stopped: cancelled (the picture thrown away), stopped and kept (the picture so
far becomes the result, as Ctrl-C does on the command line), or stopped at the server's time
limit (kept too). So a run stops within one step and its thread goes back to waiting.

The server's limits (``impasto.web.limits``) are kept here too: a full queue refuses new jobs,
and the data folder's quota removes the oldest finished jobs to make room.

This module is longer than 400 lines because the queue, its worker threads and the job
folders' life cycle (kept across restarts) share one lock and belong together.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from impasto.config import StyleConfig
from impasto.errors import ImpastoError
from impasto.web import storage
from impasto.web.job import (
    ASKED,
    CANCELLED,
    DONE,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    STOPPED_QUEUED,
    STOPPED_RUNNING,
    TIME_LIMIT,
    Cancelled,
    Job,
    NoRoom,
    QueueFull,
    Runner,
    Stopped,
    new_id,
    valid_id,
)
from impasto.web.limits import Limits
from impasto.web.storage import folder_bytes, megabytes, removal_order, remove_tree

log = logging.getLogger("impasto.web")

# A new preview at most this often (seconds), and always at the first step: frequent enough to
# watch the image form, rare enough that encoding previews costs nothing next to the steps.
PREVIEW_INTERVAL = 0.4


class JobManager:
    """The queue, the workers and the job folders under ``data_dir``."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        cache: str | os.PathLike[str] | None = None,
        workers: int = 1,
        runner: Runner | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.limits = limits or Limits()
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
        with self._lock:
            self._make_room(0)  # the quota may have been lowered since the last start
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
        needed = folder_bytes(staged)
        with self._lock:
            if self.stopping:
                raise ImpastoError("the server is stopping; try again once it is back")
            self.check_queue()
            self._make_room(needed)
            os.replace(staged, folder)
            self._jobs[job_id] = job
            self._queue.append(job_id)
            job.save()
            self._emit(job, "queued")
            self._wake.notify()
        log.info("job %s queued (%s)", job_id, self.describe(job))
        return job

    def check_queue(self) -> None:
        """Raise QueueFull if no other job may wait now."""
        with self._lock:
            waiting = len(self._queue)
            if waiting >= self.limits.max_queue:
                raise QueueFull(
                    f"the queue is full: {waiting} jobs are waiting, the most this server takes "
                    "(impasto serve --max-queue); try again when one has finished"
                )

    def cancel(self, job_id: str, *, keep: bool = False) -> Job | None:
        """Cancel a queued job at once, or a running one at its next step; None if unknown.

        ``keep``: a running job stops at its next step and the picture so far becomes its
        result (a queued job, with no picture yet, is cancelled). A cancel after it throws the
        picture away after all.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state == QUEUED:
                self._queue.remove(job_id)
                self._finish(job, CANCELLED)
                self._queue_moved()
            elif job.state == RUNNING and not job.cancel.is_set():
                if keep and not job.keeping:
                    job.cancelling = job.keeping = True  # read after the next step
                    self._emit(job, "stopping")
                elif not keep:
                    job.cancelling, job.keeping = True, False
                    job.cancel.set()
                    self._emit(job, "cancelling")
            return job

    def delete(self, job_id: str) -> Job | None:
        """Remove a job and its files; None if unknown. A queued job is cancelled and removed
        at once; a running one is cancelled and removed as soon as it stops (within a step)."""
        with self._lock:
            job = self.cancel(job_id)
            if job is not None and job.state == RUNNING:
                job.remove_when_finished = True
            elif job is not None:
                self._remove(job)
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
            return job.view(self.position(job))

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
                job.save()
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
        limit = self.limits.max_seconds
        started = time.monotonic()

        def on_progress(p: Any) -> None:
            if job.cancel.is_set():
                raise Cancelled
            now = time.monotonic()
            preview = p.image is not None and (
                p.step == 1 or now - state["last_preview"] >= PREVIEW_INTERVAL
            )
            if preview:
                storage.write_preview(job.folder, p.image)
                state["last_preview"] = now
            with self._lock:
                job.step, job.total_steps = p.step, p.total_steps
                job.losses = {k: float(v) for k, v in p.losses.items()}
                job.total_loss, job.run_elapsed = float(p.total), float(p.elapsed)
                if job.config.auto_balance and p.style_weight is not None:
                    job.style_weight_used = float(p.style_weight)
                if preview:
                    job.preview_step = p.step
                    job.save()  # a preview is a good moment to record the progress
                self._emit(job, "progress")
                over = bool(limit) and now - started >= limit and p.step < p.total_steps
                if (job.keeping or over) and p.image is not None:
                    job.stopped = ASKED if job.keeping else TIME_LIMIT
                    raise Stopped(p.image.detach().clone())

        content = job.folder / job.content
        styles = [job.folder / s for s in job.styles]
        try:
            try:
                image = self.runner(
                    content,
                    styles[0] if len(styles) == 1 else styles,
                    job.config,
                    on_progress=on_progress,
                    cache=self.cache,
                )
            except Stopped as stop:
                image = stop.image
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
            how = f", stopped ({job.stopped}) at step {job.step}" if job.stopped else ""
            log.info(
                "job %s done in %.0f s%s", job.id, (job.finished or 0) - (job.started or 0), how
            )

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            from impasto.engine import stylize  # one engine per device, kept for every job

            self._runner = stylize
        return self._runner

    def _write_result(self, job: Job, image: Any) -> None:
        from impasto.record import RunRecord

        assert job.config is not None
        record = RunRecord(
            content=job.content_name,
            styles=tuple(job.style_names),
            config=job.config,
            made_by="impasto serve",
            steps=job.step,
            seconds=job.run_elapsed,
            style_weight_used=job.style_weight_used,
        )
        storage.write_result(job.folder, image, record.to_metadata())
        try:
            storage.write_photo(job.folder, job.folder / job.content, *image.shape[-2:])
            job.photo = True
        except ImpastoError as e:  # the result stands; only the before/after view is missing
            log.warning("job %s: no photo for the comparison: %s", job.id, e)

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
        job.state, job.error = state, error
        job.cancelling = job.keeping = False
        job.finished = time.time() if at is None else at
        job.save()
        if notify:
            self._emit(job, state)
        # The step-by-step history of a finished job is kept for listeners still catching up
        # until the next job finishes; after that its final event says it all.
        for other in self._finished_recently:
            while len(other.events) > 1:
                other.events.popleft()
        self._finished_recently = [job]
        if job.remove_when_finished:
            self._remove(job)
        elif state == DONE and notify:
            self._make_room(0, keep=job)  # its pictures may have taken the folder over quota

    def _remove(self, job: Job) -> None:
        """Forget a finished job and delete its folder."""
        self._jobs.pop(job.id, None)
        remove_tree(job.folder)
        log.info("job %s removed", job.id)

    def _make_room(self, needed: int, keep: Job | None = None) -> None:
        """Remove finished jobs, in storage.removal_order, until ``needed`` more bytes fit in the
        quota; raise NoRoom if they cannot (only when ``needed`` > 0: a job just finished is
        never refused)."""
        quota = self.limits.max_data_bytes
        if not quota:
            return
        used = folder_bytes(self.jobs_dir)
        excess = used + needed - quota
        if excess <= 0:
            return
        for job in removal_order(j for j in self._jobs.values() if j is not keep):
            size = folder_bytes(job.folder)
            self._remove(job)
            excess -= size
            if excess <= 0:
                return
        if needed:
            raise NoRoom(
                f"the data folder is full: jobs still queued or running use "
                f"{megabytes(used)} of the {megabytes(quota)} this server keeps (impasto serve "
                "--max-data-mb); try again when they have finished"
            )
        log.warning(
            "the data folder holds %s, over its %s quota", megabytes(used), megabytes(quota)
        )

    def _queue_moved(self) -> None:
        """Tell every waiting job its new place in the queue."""
        for job_id in self._queue:
            self._emit(self._jobs[job_id], "queued")

    def _emit(self, job: Job, name: str) -> None:
        job.seq += 1
        job.events.append((job.seq, name, self.snapshot(job)))
