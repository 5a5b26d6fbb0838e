"""One job of the web server: its states, what is saved of it, and how the API shows it.

A job is a dataclass that :class:`impasto.web.jobs.JobManager` changes under its lock; the
fields in ``Job.SAVED`` are written to the job's ``job.json`` at every change that matters and
read back when the server starts again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from impasto.config import StyleConfig
from impasto.errors import ImpastoError
from impasto.files import atomic_write
from impasto.web import storage

log = logging.getLogger("impasto.web")

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
STOPPED_RUNNING = "the server stopped while this job was running"
STOPPED_QUEUED = "the server stopped before this job could start"
# Why a job that is done stopped before its last step (``Job.stopped``).
ASKED, TIME_LIMIT = "asked", "time limit"

# How many recent events a job keeps for listeners that fall behind (each is a full snapshot,
# so a listener that misses some loses nothing but intermediate steps).
EVENT_BACKLOG = 256

Runner = Callable[..., Any]  # stylize's signature: (content, style, config, *, on_progress, cache)


class Cancelled(Exception):
    """Raised inside the progress callback to stop a run (never leaves this module)."""


class Stopped(Exception):
    """Raised inside the progress callback to end a run on the picture so far."""

    def __init__(self, image: Any) -> None:
        super().__init__()
        self.image = image


class QueueFull(ImpastoError):
    """No room in the queue for another job (HTTP 429)."""


class NoRoom(ImpastoError):
    """The data folder cannot take a new job's files, even after clean-up (HTTP 507)."""


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
    style_weight_used: float | None = None  # the weight --balance auto chose for the pair
    preview_step: int = 0
    width: int | None = None
    height: int | None = None
    error: str | None = None
    stopped: str | None = None  # ASKED or TIME_LIMIT: done early, on the picture so far
    photo: bool = False  # photo.jpg was written, for the before/after view
    cancelling: bool = False
    keeping: bool = False  # asked to stop and keep the picture so far
    # Runtime only (not saved):
    config: StyleConfig | None = field(default=None, repr=False)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    stop_reason: str | None = field(default=None, repr=False)
    remove_when_finished: bool = field(default=False, repr=False)
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
        "style_weight_used",
        "preview_step",
        "width",
        "height",
        "error",
        "stopped",
        "photo",
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

    def save(self) -> None:
        """Write job.json atomically: a crash leaves the old state or the new, never half."""
        if not self.folder.is_dir():
            return
        try:
            with atomic_write(self.folder / "job.json", "w", permissions_like_target=False) as f:
                json.dump(self.saved(), f, indent=1)
        except ImpastoError as e:
            # The state in memory is still right; only a restart would show an older one.
            log.warning("job %s: could not save its state: %s", self.id, e)

    @property
    def result_path(self) -> Path:
        return self.folder / storage.RESULT

    @property
    def preview_path(self) -> Path:
        return self.folder / storage.PREVIEW

    @property
    def photo_path(self) -> Path:
        return self.folder / storage.PHOTO

    def view(self, position: int | None) -> dict[str, Any]:
        """The job as the API shows it, everything a page needs to draw it (``position``: its
        place in the queue)."""
        now = time.time()
        running = self.state == RUNNING
        elapsed = ((self.finished or now) - self.started) if self.started else 0.0
        eta = None
        if running and self.step > 0 and self.total_steps:
            eta = self.run_elapsed / self.step * (self.total_steps - self.step)
        base = f"/api/jobs/{self.id}"
        done = self.state == DONE
        return {
            "id": self.id,
            "state": self.state,
            "position": position,
            "cancelling": self.cancelling,
            "keeping": self.keeping,
            "stopped": self.stopped,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "step": self.step,
            "total_steps": self.total_steps,
            "elapsed": round(elapsed, 3),
            "eta": None if eta is None else round(eta, 3),
            "losses": dict(self.losses),
            "total_loss": self.total_loss,
            "style_weight_used": self.style_weight_used,
            "width": self.width,
            "height": self.height,
            "content_name": self.content_name,
            "style_names": list(self.style_names),
            "options": dict(self.options),
            "settings": dict(self.settings),
            "error": self.error,
            "url": base,
            "events_url": f"{base}/events",
            "preview_url": f"{base}/preview?step={self.preview_step}"
            if self.preview_step
            else None,
            "result_url": f"{base}/result" if done else None,
            "photo_url": f"{base}/photo" if done and self.photo else None,
        }
