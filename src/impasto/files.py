"""Writing files safely: the one place impasto replaces a file on disk, and the checks before.

An interrupted run (a crash, a full disk, Ctrl-C) must never leave a half-written file where a
good one was, so every output goes through :func:`atomic_write`: written to a temporary file
in the same folder, flushed to disk, then renamed onto the target in one step. Before a run,
:func:`check_not_an_input` and :func:`probe_writable` refuse an output that would overwrite an
input or that the folder would refuse at the end.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import IO, Any, BinaryIO, Literal, TextIO, overload

from impasto.errors import ImpastoError, UsageError

__all__ = ["atomic_write", "check_not_an_input", "probe_writable", "same_file"]


@overload
def atomic_write(
    path: str | os.PathLike[str],
    mode: Literal["wb"] = "wb",
    *,
    permissions_like_target: bool = True,
) -> AbstractContextManager[BinaryIO]: ...


@overload
def atomic_write(
    path: str | os.PathLike[str],
    mode: Literal["w"],
    *,
    permissions_like_target: bool = True,
) -> AbstractContextManager[TextIO]: ...


def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    permissions_like_target: bool = True,
) -> AbstractContextManager[IO[Any]]:
    """Replace the file at ``path`` with what the ``with`` block writes, all at once or not at all.

    ::

        with atomic_write("out.png") as stream:
            stream.write(encoded)

    The block writes to a new temporary file in the same folder (named ``.<name>...part``, so
    it is hidden and on the same file system as the target). When the block ends normally the
    file is flushed and fsynced, renamed onto ``path`` with :func:`os.replace` (atomic on
    POSIX and Windows), and the folder is fsynced so that the rename itself survives a power
    cut. When the block raises anything, KeyboardInterrupt included, the temporary file is
    removed and ``path`` is left exactly as it was.

    Args:
        path: the file to create or replace. Its folder must exist.
        mode: ``"wb"`` for a binary stream, ``"w"`` for a text stream in UTF-8.
        permissions_like_target: give the new file the permission bits of the file it
            replaces, or, when there is none, those a plain :func:`open` would give
            (``0o666`` minus the umask). When False the file keeps the temporary file's
            ``0o600``: only its owner can read it.

    Raises:
        ImpastoError: the file system refused the write: the folder is missing or not
            writable, the disk is full... An :class:`OSError` raised inside the block is
            taken for such a failure too. The message is
            ``could not write '<path>': <reason>``. (A :class:`UsageError` it is not: by the
            time anything is written, the arguments have been checked.)
        ValueError: ``mode`` is neither ``"wb"`` nor ``"w"`` (raised at the call, before the
            ``with`` block).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write writes with mode 'wb' or 'w', got {mode!r}")
    return _atomic_write(path, mode, permissions_like_target)


@contextlib.contextmanager
def _atomic_write(
    path: str | os.PathLike[str], mode: str, permissions_like_target: bool
) -> Iterator[IO[Any]]:
    """The context manager behind :func:`atomic_write`, once its arguments are checked."""
    target = pathlib.Path(path)
    folder = target.parent
    try:
        descriptor, temp_name = tempfile.mkstemp(
            prefix="." + target.name, suffix=".part", dir=folder
        )
    except OSError as error:
        raise _write_error(path, error) from error
    try:
        encoding = "utf-8" if mode == "w" else None  # text is UTF-8 whatever the locale
        with os.fdopen(descriptor, mode, encoding=encoding) as stream:
            if permissions_like_target and hasattr(os, "fchmod"):  # POSIX only
                # mkstemp creates the file 0600; give the output the permissions a plain
                # open() would (or those of the file it replaces).
                os.fchmod(stream.fileno(), _permissions_for(target))
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, target)
    except BaseException as error:
        # Whatever happened (an encoder error, a full disk, Ctrl-C), the target was not
        # touched; remove the partial file so no '.part' litter is left next to it.
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        if isinstance(error, OSError):
            raise _write_error(path, error) from error
        raise
    _fsync_folder(folder)


def _write_error(path: str | os.PathLike[str], error: OSError) -> ImpastoError:
    """The error for a write the file system refused, naming the path as the caller gave it."""
    reason = error.strerror or str(error)  # "Permission denied", not "[Errno 13] ...: '/path'"
    return ImpastoError(f"could not write '{os.fspath(path)}': {reason}")


def _permissions_for(target: pathlib.Path) -> int:
    """Mode bits for a new file: those of the file it replaces, else 0o666 minus the umask."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (setting it, even for
    an instant, would race with the web server's other threads)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)  # elsewhere it can only be read by setting it
    os.umask(umask)
    return umask


def _fsync_folder(folder: pathlib.Path) -> None:
    """Flush the rename itself to disk, where the platform allows opening a folder (POSIX)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the data itself is already synced
    finally:
        os.close(fd)


def check_not_an_input(
    output: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]]
) -> None:
    """Refuse an output that is one of the run's own input files: it would be overwritten."""
    for source in inputs:
        if same_file(output, source):
            raise UsageError(
                f"output '{os.fspath(output)}' is an input of this run ({os.fspath(source)}); "
                "writing it would overwrite the original: choose another output name"
            )


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file: the same path once resolved (links, ``..``), or, when
    both exist, the same file on disk (a hard link, a case-insensitive file system)."""
    first, second = pathlib.Path(a), pathlib.Path(b)
    if first.resolve() == second.resolve():
        return True
    return first.exists() and second.exists() and os.path.samefile(first, second)


def probe_writable(path: str | os.PathLike[str]) -> None:
    """Create and remove the temporary file an atomic write of ``path`` would use, so that a
    folder that refuses it fails now, before any work, not when the result is ready."""
    out = pathlib.Path(path)
    try:
        fd, name = tempfile.mkstemp(prefix="." + out.name, suffix=".part", dir=out.parent)
    except OSError as e:
        raise UsageError(f"cannot write '{os.fspath(path)}': {e.strerror or e}") from None
    os.close(fd)
    try:
        os.unlink(name)
    except OSError as e:
        raise ImpastoError(f"cannot write '{os.fspath(path)}': {e.strerror or e}") from None
