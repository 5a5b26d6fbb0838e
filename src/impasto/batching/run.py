"""The driver of a batch: what to run, where, and writing what comes back.

It plans the items (``plan``), leaves out those the output folder's manifest records as made
from the same inputs and settings, sends the rest to a backend (``work.LocalBackend``: this
process; ``ray_backend.RayBackend``: Ray workers) and, as each outcome comes back, writes its
image (atomically, with its record inside) and its manifest line. Nothing else writes in the
output folder, so an item is written once however its workers fared.

Torch, the engine and the backend are imported only once something is to run, so that a batch
run again over finished work answers at once.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from impasto.batching import RAY_MISSING
from impasto.batching.manifest import Manifest, entry_for, is_done, read_manifest
from impasto.batching.plan import Item, PathLike, check_output_folder, plan, sha256_of
from impasto.config import StyleConfig
from impasto.errors import ImpastoError, UsageError
from impasto.record import RunRecord, read_record

if TYPE_CHECKING:
    import torch

    from impasto.batching.work import Job, Outcome
    from impasto.engine import Stylizer

Backend = Literal["local", "ray"]
MAX_WORKERS = 100_000
MADE_BY = "impasto batch"


@dataclass(frozen=True)
class ItemProgress:
    """How far a running item is: ``step`` of ``total_steps``, on ``worker`` (host:pid)."""

    item: Item
    step: int
    total_steps: int
    worker: str


@dataclass(frozen=True)
class ItemResult:
    """What came of an item: ``ok`` and its image, (1, 3, H, W) in [0, 1] (written to
    ``output`` when the batch has an output folder), or the ``reason`` it failed."""

    item: Item
    ok: bool
    image: torch.Tensor | None = None
    output: Path | None = None
    reason: str = ""
    steps: int = 0
    seconds: float = 0.0
    worker: str = ""


class Batch:
    """A planned batch; iterate it to run it, results as they complete (see :func:`batch`).

    ``items`` is the whole batch, ``done`` what the output folder already holds (left out),
    ``todo`` what runs. :meth:`stop` lets the running items finish and starts no other. Use it
    as a context manager, or exhaust it, so that its workers are always released.
    """

    def __init__(
        self,
        items: list[Item],
        *,
        output: PathLike | None,
        backend: Callable[[], Any],
        force: bool = False,
        on_progress: Callable[[ItemProgress], None] | None = None,
    ) -> None:
        self.items = items
        self.folder = None if output is None else Path(output)
        self._backend = backend
        self.backend: Any = None  # made when the batch runs
        self.on_progress = on_progress
        self.done: list[Item] = []
        self.todo: list[Item] = []
        self.blocked: dict[str, str] = {}  # output name -> why it is not overwritten
        self._stopping = False
        self._iterator: Iterator[ItemResult] | None = None
        self._sha: dict[int, str] = {}  # job index -> sha256 of the bytes it was sent
        self._style_sha: dict[Path, str] = {}
        self._sort(force)

    def stop(self) -> None:
        """Start no new item; the running ones finish and are written."""
        self._stopping = True

    @property
    def stopped(self) -> bool:
        return self._stopping

    def __iter__(self) -> Iterator[ItemResult]:
        if self._iterator is None:
            self._iterator = self._run()
        return self._iterator

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the workers (an unfinished batch stops where it is)."""
        if self._iterator is not None:
            self._iterator.close()  # type: ignore[attr-defined]
        else:
            self._iterator = iter(())

    # -- what runs -----------------------------------------------------------------------------

    def _sort(self, force: bool) -> None:
        if self.folder is None:
            self.todo = list(self.items)
            return
        entries = read_manifest(self.folder) if self.folder.is_dir() else {}
        hashes: dict[Path, str | None] = {}

        def sha(path: Path) -> str | None:
            if path not in hashes:
                try:
                    hashes[path] = sha256_of(path.read_bytes())
                except OSError:
                    hashes[path] = None  # unreadable: it runs, and fails with the reason
            return hashes[path]

        for item in self.items:
            entry = entries.get(item.name)
            if not force and entry is not None:
                c, s = sha(item.content), sha(item.style)
                if c and s and is_done(entry, item, self.folder, c, s):
                    self.done.append(item)
                    continue
            target = self.folder / item.name
            if not force and entry is None and target.exists() and not _made_here(target):
                self.blocked[item.name] = (
                    f"'{target}' exists and impasto batch did not write it; move it away, or "
                    "use --force to replace it"
                )
            self.todo.append(item)

    # -- running -------------------------------------------------------------------------------

    def _run(self) -> Iterator[ItemResult]:
        runs = [i for i, item in enumerate(self.todo) if item.name not in self.blocked]
        if not self.todo:
            return
        try:
            if runs:  # Ray connects here: an unreachable cluster leaves the folder untouched
                self.backend = self._backend()
                self.backend.start(self.todo[runs[0]].config)
            with Manifest(self.folder) if self.folder else nullcontext() as manifest:
                for index, item in enumerate(self.todo):
                    if item.name in self.blocked:
                        yield self._failed(manifest, index, self.blocked[item.name], "", 0.0)
                if not runs:
                    return
                styles, keys, unreadable = self._styles(runs)
                outcomes = self.backend.run(
                    self._jobs(runs, keys, unreadable), styles, self._step, lambda: self._stopping
                )
                for outcome in outcomes:
                    yield self._finish(manifest, outcome)
        finally:
            if self.backend is not None:
                self.backend.close()

    def _styles(self, runs: list[int]) -> tuple[dict[str, bytes], dict[Path, str], dict[Path, str]]:
        """Each style's bytes once, by sha256; and why a style could not be read."""
        data: dict[str, bytes] = {"": b""}
        keys: dict[Path, str] = {}
        unreadable: dict[Path, str] = {}
        for index in runs:
            style = self.todo[index].style
            if style in keys:
                continue
            try:
                raw = style.read_bytes()
            except OSError as e:
                keys[style] = ""
                unreadable[style] = f"style image '{style}' could not be read: {e.strerror or e}"
                continue
            keys[style] = self._style_sha[style] = sha256_of(raw)
            data[keys[style]] = raw
        return data, keys, unreadable

    def _jobs(
        self, runs: list[int], keys: dict[Path, str], unreadable: dict[Path, str]
    ) -> Iterator[Job]:
        """The jobs, each photo read when its turn comes (a batch may be larger than memory)."""
        from impasto.batching.work import Job

        for index in runs:
            item = self.todo[index]
            reason = unreadable.get(item.style, "")
            data = b""
            if not reason:
                try:
                    data = item.content.read_bytes()
                    self._sha[index] = sha256_of(data)
                except OSError as e:
                    reason = f"content image '{item.content}' could not be read: {e.strerror or e}"
            yield Job(
                index,
                os.fspath(item.content),
                data,
                os.fspath(item.style),
                keys[item.style],
                item.config,
                reason,
            )

    def _step(self, index: int, step: int, total: int, worker: str) -> None:
        if self.on_progress is not None:
            self.on_progress(ItemProgress(self.todo[index], step, total, worker))

    def _finish(self, manifest: Manifest | None, outcome: Outcome) -> ItemResult:
        """Write what came back: the image and its manifest line, or the failure."""
        if outcome.image is None:
            return self._failed(
                manifest, outcome.index, outcome.reason, outcome.worker, outcome.seconds
            )
        import numpy as np
        import torch

        from impasto.image import save_image

        item = self.todo[outcome.index]
        # Ray hands back a read-only buffer; torch wants to own writable memory.
        image = torch.from_numpy(np.require(outcome.image, requirements="W"))
        output = None
        if manifest is not None:
            assert self.folder is not None
            record = RunRecord(
                content=os.fspath(item.content),
                styles=(os.fspath(item.style),),
                config=item.config,
                steps=outcome.steps,
                seconds=outcome.seconds,
                style_weight_used=outcome.style_weight_used,
                made_by=MADE_BY,
            )
            output = save_image(
                image,
                self.folder / item.name,
                bit_depth=item.bit_depth,
                metadata=record.to_metadata(),
            )
            manifest.record(
                entry_for(
                    item,
                    "done",
                    content_sha256=self._sha[outcome.index],
                    style_sha256=self._style_sha[item.style],
                    output_sha256=sha256_of(output.read_bytes()),
                    steps=outcome.steps,
                    seconds=outcome.seconds,
                    worker=outcome.worker,
                )
            )
        return ItemResult(
            item, True, image, output, "", outcome.steps, outcome.seconds, outcome.worker
        )

    def _failed(
        self, manifest: Manifest | None, index: int, reason: str, worker: str, seconds: float
    ) -> ItemResult:
        item = self.todo[index]
        if manifest is not None:
            manifest.record(
                entry_for(
                    item,
                    "failed",
                    content_sha256=self._sha.get(index, ""),
                    style_sha256=self._style_sha.get(item.style, ""),
                    seconds=seconds,
                    worker=worker,
                    reason=reason,
                )
            )
        return ItemResult(item, False, reason=reason, seconds=seconds, worker=worker)


def _made_here(path: Path) -> bool:
    """Whether the image at ``path`` was written by a batch (its record says so)."""
    try:
        record = read_record(path)
    except ImpastoError:
        return False
    return record is not None and record.made_by == MADE_BY


def batch(
    contents: PathLike | Sequence[PathLike] = (),
    styles: PathLike | Sequence[PathLike] = (),
    config: StyleConfig | None = None,
    *,
    pairs: PathLike | None = None,
    output: PathLike | None = None,
    backend: Backend = "local",
    address: str | None = None,
    workers: int | None = None,
    force: bool = False,
    image_format: str = "png",
    bit_depth: int = 8,
    on_progress: Callable[[ItemProgress], None] | None = None,
    cache: PathLike | None = None,
    weights: dict[str, dict[str, torch.Tensor]] | None = None,
    engine: Stylizer | None = None,
) -> Batch:
    """Paint every photo of ``contents`` in every style of ``styles`` (folders, glob patterns or
    files), or the rows of a ``pairs`` CSV; iterate the result to run it::

        for result in impasto.batch("photos/", "starry.jpg", output="out/", backend="ray"):
            print(result.item.name, result.ok, result.reason)

    Results come as items complete. With ``output`` (a folder) each image is written there
    as ``photo__style.png`` with its record inside, and ``manifest.jsonl`` records every item;
    a batch run again leaves out what is done from the same inputs and settings (``force``
    redoes it). ``backend="ray"`` spreads the items over Ray workers (``address``: a cluster,
    else a Ray started here; ``workers``: how many). ``on_progress`` receives an
    :class:`ItemProgress` as items step; ``cache``, ``weights`` and ``engine`` are as for
    :class:`~impasto.Stylizer` (``engine``: the local backend's, e.g. one already loaded).

    Bad arguments raise :class:`~impasto.UsageError` here, before anything runs; an item
    whose image cannot be read or used fails alone, with its reason in its result.
    """
    config = config or StyleConfig()
    if backend not in ("local", "ray"):
        raise UsageError(f"--backend must be local or ray, not '{backend}'")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS
    ):
        raise UsageError(
            f"--workers must be a whole number from 1 to {MAX_WORKERS:,}, not {workers!r}"
        )
    if backend == "local" and address is not None:
        raise UsageError("--address is for --backend ray")
    if backend == "local" and workers not in (None, 1):
        raise UsageError(
            "--workers is for --backend ray; the local backend runs one engine, which already "
            "uses every core"
        )
    if backend == "ray" and engine is not None:
        raise UsageError("engine= is for the local backend; Ray workers build their own")
    if backend == "ray" and importlib.util.find_spec("ray") is None:
        raise UsageError(RAY_MISSING)  # before anything else
    items = plan(
        _listed(contents),
        _listed(styles),
        config,
        pairs=pairs,
        image_format=image_format,
        bit_depth=bit_depth,
    )
    if output is not None:
        check_output_folder(output, items)

    def runner() -> Any:
        if backend == "ray":
            from impasto.batching.ray_backend import RayBackend

            return RayBackend(address, workers, device=config.device, cache=cache, weights=weights)
        from impasto.batching.work import LocalBackend
        from impasto.engine import Stylizer

        return LocalBackend(
            engine or Stylizer(config.network, config.device, cache=cache, weights=weights)
        )

    return Batch(items, output=output, backend=runner, force=force, on_progress=on_progress)


def _listed(value: PathLike | Iterable[PathLike]) -> list[PathLike]:
    if isinstance(value, (str, os.PathLike)):
        return [value]
    return list(value)
