"""The manifest of a batch: ``manifest.jsonl`` in the output folder, one JSON object a line,
the last line of an output giving its state (done, or failed and why).

It stays readable whatever stops a batch (Ctrl-C, a kill, a power cut): each line is appended
whole, flushed and fsynced before the next item is reported; a last line cut short by a kill is
ignored on reading; and at the start and end of a batch the file is rewritten atomically with
one line per output. While a batch runs it holds a lock on its folder, so that two batches
cannot write one manifest at once. No torch here.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from pathlib import Path
from typing import IO, Any

from impasto._version import __version__
from impasto.batching.plan import Item, canonical, sha256_of
from impasto.errors import ImpastoError, InputError
from impasto.files import atomic_write

MANIFEST = "manifest.jsonl"


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The latest entry of each output in ``folder``'s manifest (none if there is no manifest).

    A last line without its newline was cut short by a kill and is ignored; any other line that
    is not a JSON object with an output's name is an :class:`InputError` naming the line.
    """
    path = Path(folder) / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"manifest '{path}' could not be read: {e}") from None
    # What follows the last newline is "" unless the last write was cut short: dropped.
    *lines, _torn = text.split("\n")
    latest: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            entry = None
        if not isinstance(entry, dict) or not isinstance(entry.get("output"), str):
            raise InputError(
                f"manifest '{path}' line {number} is not an entry impasto wrote; delete that "
                "line (its item will run again) or the manifest (every item will)"
            )
        latest.pop(entry["output"], None)  # keep the order of the last writes
        latest[entry["output"]] = entry
    return latest


def entry_for(
    item: Item,
    state: str,
    *,
    content_sha256: str,
    style_sha256: str,
    output_sha256: str | None = None,
    steps: int = 0,
    seconds: float = 0.0,
    worker: str = "",
    reason: str = "",
) -> dict[str, Any]:
    """The manifest's line for ``item``: its inputs with their sha256, its settings, what came
    of it."""
    entry: dict[str, Any] = {
        "output": item.name,
        "state": state,
        "content": os.fspath(item.content),
        "content_sha256": content_sha256,
        "style": os.fspath(item.style),
        "style_sha256": style_sha256,
        "settings": item.settings(),
    }
    if state == "done":
        entry |= {"output_sha256": output_sha256, "steps": steps}
    else:
        entry["reason"] = reason
    entry |= {
        "seconds": round(seconds, 2),
        "worker": worker,
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "impasto": __version__,
    }
    return entry


def is_done(
    entry: dict[str, Any] | None,
    item: Item,
    folder: Path,
    content_sha256: str,
    style_sha256: str,
) -> bool:
    """Whether ``entry`` records ``item`` as made from these very inputs and settings, and its
    output is still the file that was written then."""
    if entry is None or entry.get("state") != "done":
        return False
    same = (
        entry.get("content_sha256") == content_sha256
        and entry.get("style_sha256") == style_sha256
        and isinstance(entry.get("settings"), dict)
        and canonical(entry["settings"]) == canonical(item.settings())
    )
    if not same:
        return False
    try:
        return sha256_of((folder / item.name).read_bytes()) == entry.get("output_sha256")
    except OSError:
        return False


def worker_name() -> str:
    """This process, as the manifest names the worker that made an item."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Manifest:
    """The manifest of ``folder``, open for a batch to record its items (a context manager).

    Entering locks the folder, rewrites the manifest with one line per output, and opens it for
    appending; :meth:`record` appends one entry durably; leaving rewrites it once more and
    unlocks.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST
        self._lock: int | None = None
        self._file: IO[str] | None = None

    def __enter__(self) -> Manifest:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_folder(self.folder)
        try:
            self._compact()
            self._file = open(self.path, "a", encoding="utf-8")
        except BaseException:
            self._unlock()
            raise
        return self

    def record(self, entry: dict[str, Any]) -> None:
        """Append ``entry`` as one line, on disk before this returns."""
        assert self._file is not None, "record() outside 'with Manifest(...)'"
        self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def __exit__(self, *exc: object) -> None:
        try:
            if self._file is not None:
                self._file.close()
                self._file = None
                self._compact()
        finally:
            self._unlock()

    def _compact(self) -> None:
        """Rewrite the manifest atomically, one line per output, dropping a torn last line."""
        entries = read_manifest(self.folder)
        if not entries and not self.path.exists():
            return
        with atomic_write(self.path, "w") as stream:
            stream.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in entries.values())

    def _unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the lock
            self._lock = None


def _lock_folder(folder: Path) -> int | None:
    """An exclusive lock on the folder itself (no lock file to leave behind), or None where
    the platform has no flock."""
    try:
        import fcntl
    except ImportError:  # Windows: batches into one folder are not guarded there
        return None
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ImpastoError(
            f"another impasto batch is writing to '{folder}'; wait for it to end, or give "
            "another output folder"
        ) from None
    return fd
