"""The Ray backend: items spread over the workers of a Ray cluster, or of a Ray started here.

Each worker is an actor that holds one engine (``Stylizer``), built in its constructor, like a
model server's replica; items stream through it one at a time. The driver (this process) sends
each photo's bytes with its job and each style's bytes once per node (``ray.put``), gets the
pixels back, and writes every output and the manifest itself, so workers need no shared file
system and nothing is ever written twice.

A worker that dies (a killed process, a lost node) is restarted by Ray (``max_restarts``); the
item it was running is sent again, to whichever worker is free first, up to ``ATTEMPTS`` times.
Ray is the ``ray`` extra, imported only here.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from impasto.batching import RAY_MISSING
from impasto.batching.work import Job, Outcome, StepFn, run_job
from impasto.config import StyleConfig
from impasto.engine import Stylizer
from impasto.errors import ImpastoError, UsageError

# Times an item is tried when its worker dies under it (a poisoned item must not loop forever).
ATTEMPTS = 3
# How long the driver waits with no worker alive (starting, restarting) before giving up.
WORKER_WAIT_S = 600.0
# How often the driver asks the busy workers how far their items are.
POLL_S = 0.5
DEFAULT_PORT = 6379
CLIENT_PORT = 10001  # ray://HOST uses Ray Client's port


def import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise UsageError(RAY_MISSING) from e
    return ray


class Worker:
    """One engine on one worker process: the network is built once, in the constructor, and
    every item of the batch that comes here runs on it."""

    def __init__(
        self,
        device: str,
        cache: str | None,
        weights: dict[str, dict[str, torch.Tensor]] | None,
        config: StyleConfig,
        threads: int | None = None,
    ) -> None:
        if threads:
            torch.set_num_threads(threads)  # Ray starts workers with one thread
        self.error = ""
        self.progress: tuple[int, int, int, str] | None = None
        try:
            self.engine = Stylizer(config.network, device, cache=cache, weights=weights)
            self.engine.network(config)
        except ImpastoError as e:  # reported by ready(): a broken install stops the batch
            self.error = f"a Ray worker could not build its engine: {e}"

    def ready(self) -> str:
        """Why the engine could not be built; empty once it is."""
        return self.error

    def run(self, job: Job, style: bytes) -> Outcome:
        self.progress = None
        return run_job(self.engine, job, style, self._step)

    def status(self) -> tuple[int, int, int, str] | None:
        """(item index, step, total steps, worker) of the item running now."""
        return self.progress

    def _step(self, index: int, step: int, total: int, worker: str) -> None:
        self.progress = (index, step, total, worker)


@dataclass(eq=False)
class _Slot:
    """A worker as the driver sees it."""

    actor: Any
    job: Job | None = None
    since: float = field(default_factory=time.monotonic)


class RayBackend:
    """Items over Ray workers: at ``address`` (a running cluster; default ``$RAY_ADDRESS``,
    else a Ray started here and stopped at the end), ``workers`` of them (default: one per GPU,
    else one per machine with all its cores)."""

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        *,
        device: str = "auto",
        cache: str | os.PathLike[str] | None = None,
        weights: dict[str, dict[str, torch.Tensor]] | None = None,
    ) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.workers = workers
        self.device = device
        self.cache = None if cache is None else os.fspath(cache)
        self.weights = weights
        self.ray: Any = None
        self.started_ray = False
        self.slots: list[_Slot] = []
        self._weights_ref: Any = None

    # -- start and stop ------------------------------------------------------------------------

    def start(self, config: StyleConfig) -> None:
        """Connect to Ray (or start it) and create the workers; they build their engines while
        the driver goes on."""
        ray = self.ray = import_ray()
        if not ray.is_initialized():
            _check_reachable(self.address)
            try:
                ray.init(
                    address=self.address,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                )
            except (ConnectionError, RuntimeError, ValueError) as e:
                if not self.address:
                    raise ImpastoError(f"could not start Ray here: {e}") from None
                raise ImpastoError(
                    f"could not connect to Ray at {self.address}: {_first_line(e)} (a cluster "
                    "with token authentication also needs RAY_AUTH_MODE=token here, and its "
                    "token: ray get-auth-token on its head node)"
                ) from None
            self.started_ray = True
        actor_class = _actor_class(ray)
        # Kept for the batch's life: a worker restarted by Ray gets its weights from here.
        self._weights_ref = ray.put(self.weights) if self.weights is not None else None
        for options in _worker_options(ray, self.workers, self.device):
            actor = actor_class.options(max_restarts=-1, max_task_retries=0, **options)
            threads = options.get("num_cpus") if not options.get("num_gpus") else None
            self.slots.append(
                _Slot(actor.remote(self.device, self.cache, self._weights_ref, config, threads))
            )

    def close(self) -> None:
        ray, self.ray = self.ray, None
        if ray is None:
            return
        for slot in self.slots:
            ray.kill(slot.actor)
        self.slots, self._weights_ref = [], None
        if self.started_ray:
            ray.shutdown()

    # -- the items -----------------------------------------------------------------------------

    def run(
        self,
        jobs: Iterator[Job],
        styles: dict[str, bytes],
        on_step: StepFn | None,
        stopping: Callable[[], bool],
    ) -> Iterator[Outcome]:
        """Each job on the first free worker, outcomes as they come; after ``stopping()``, no
        new job starts and the running ones finish."""
        ray = self.ray
        exceptions = ray.exceptions
        style_refs = {key: ray.put(data) for key, data in styles.items()}
        probes = {slot.actor.ready.remote(): slot for slot in self.slots}
        running: dict[Any, _Slot] = {}
        idle: deque[_Slot] = deque()
        again: deque[Job] = deque()  # jobs whose worker died under them
        tries: dict[int, int] = {}
        errors: list[str] = []
        more = True
        alive = time.monotonic()
        polled = 0.0
        while True:
            while idle and not stopping():
                job = again.popleft() if again else next(jobs, None) if more else None
                if job is None:
                    more = False
                    break
                slot = idle.popleft()
                slot.job, slot.since = job, time.monotonic()
                running[slot.actor.run.remote(job, style_refs[job.style_key])] = slot
            if not running and (stopping() or (not more and not again)):
                return
            if not running and not probes:
                raise ImpastoError(f"no Ray worker could start: {errors[0] if errors else '?'}")
            if running or idle:
                alive = time.monotonic()
            elif time.monotonic() - alive > WORKER_WAIT_S:
                raise ImpastoError(
                    f"no Ray worker has been ready for {WORKER_WAIT_S:.0f} s; does the cluster "
                    "have the CPUs or GPUs the workers ask for (--workers)?"
                )
            ready, _ = ray.wait([*running, *probes], num_returns=1, timeout=POLL_S)
            for ref in ready:
                if ref in probes:
                    slot = probes.pop(ref)
                    try:
                        error = ray.get(ref)
                    except exceptions.RayActorError as e:
                        errors.append(_first_line(e))  # it will not come back
                        continue
                    if error:
                        raise ImpastoError(error)
                    idle.append(slot)
                    continue
                slot = running.pop(ref)
                job, slot.job = slot.job, None
                assert job is not None
                try:
                    outcome = ray.get(ref)
                except exceptions.RayTaskError:
                    raise  # a bug on the worker: its traceback is in the error
                except exceptions.RayError as e:  # the worker died: try the item again
                    tries[job.index] = tries.get(job.index, 1) + 1
                    if tries[job.index] > ATTEMPTS:
                        yield Outcome(
                            job.index,
                            None,
                            0,
                            time.monotonic() - slot.since,
                            "",
                            f"its worker died {ATTEMPTS} times while running it "
                            f"(last: {_first_line(e)})",
                        )
                    else:
                        again.append(job)
                    probes[slot.actor.ready.options(max_task_retries=-1).remote()] = slot
                    continue
                idle.append(slot)
                yield outcome
            if on_step is not None and running and time.monotonic() - polled > POLL_S:
                polled = time.monotonic()
                self._poll(running.values(), on_step)

    def _poll(self, slots: Any, on_step: StepFn) -> None:
        """Ask the busy workers how far they are (in their own thread, beside the item)."""
        ray = self.ray
        refs = [slot.actor.status.remote() for slot in slots]
        for ref in refs:
            try:
                status = ray.get(ref, timeout=POLL_S)
            except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):
                continue  # a worker dying or slow to answer: its outcome will tell
            if status is not None:
                on_step(*status)


def _actor_class(ray: Any) -> Any:
    """Worker as a Ray actor, its ``status`` answered by a thread of its own while it runs."""

    @ray.remote(concurrency_groups={"status": 1})
    class RayWorker(Worker):
        @ray.method(concurrency_group="status")
        def status(self) -> tuple[int, int, int, str] | None:
            return super().status()

    return RayWorker


def _worker_options(ray: Any, workers: int | None, device: str) -> list[dict[str, Any]]:
    """Ray options of each worker: one GPU each where the cluster has GPUs (and the device
    allows them), else all of a machine's cores (one stylize uses every core), or with
    ``workers`` given, the cluster's cores shared out among them."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    gpus = sum(n["Resources"].get("GPU", 0) for n in nodes)
    cpus = [int(n["Resources"].get("CPU", 0)) for n in nodes]
    if device in ("auto", "cuda") and gpus >= 1:
        return [{"num_gpus": 1, "num_cpus": 1}] * (workers or int(gpus))
    if not any(cpus):
        raise ImpastoError("the Ray cluster has no CPUs for workers")
    if workers is None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return [
            {
                "num_cpus": n_cpus,
                "scheduling_strategy": NodeAffinitySchedulingStrategy(node["NodeID"], soft=True),
            }
            for node, n_cpus in zip(nodes, cpus)
            if n_cpus >= 1
        ]
    each = max(1, min(max(cpus), sum(cpus) // workers))
    return [{"num_cpus": each, "scheduling_strategy": "SPREAD"}] * workers


def _check_reachable(address: str | None) -> None:
    """Refuse at once an address where nothing listens (Ray itself retries for minutes)."""
    if address is None or address in ("auto", "local"):
        return
    client = address.startswith("ray://")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        host, port = address.removeprefix("ray://"), ""
    number = int(port) if port else CLIENT_PORT if client else DEFAULT_PORT
    try:
        socket.create_connection((host, number), timeout=5).close()
    except OSError as e:
        reason = e.strerror or str(e) or type(e).__name__
        raise ImpastoError(
            f"cannot reach a Ray cluster at {address}: {reason} (start one there with "
            f"'ray start --head', or check the address)"
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
