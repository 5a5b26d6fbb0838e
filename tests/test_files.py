"""Tests for impasto.files: atomic_write replaces a file whole or leaves it alone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from impasto.errors import ImpastoError, UsageError
from impasto.files import atomic_write


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_content_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"an old and rather longer content")
    with atomic_write(target) as stream:
        stream.write(b"new")
    assert target.read_bytes() == b"new"  # not "new" over the start of the old bytes
    assert names(tmp_path) == ["out.bin"]


def test_new_file_and_text_mode(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    with atomic_write(str(target), "w") as stream:
        stream.write('{"title": "Café ✓"}\n')
    assert target.read_bytes() == '{"title": "Café ✓"}\n'.encode()  # UTF-8 whatever the locale
    assert names(tmp_path) == ["state.json"]


def test_writes_to_a_hidden_temporary_file_in_the_same_folder(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with atomic_write(target) as stream:
        stream.write(b"new")
        stream.flush()
        assert target.read_bytes() == b"old"  # while writing, the target is untouched
        [part] = [name for name in names(tmp_path) if name != "out.png"]
        assert part.startswith(".out.png") and part.endswith(".part")
        assert (tmp_path / part).read_bytes() == b"new"
    assert target.read_bytes() == b"new"
    assert names(tmp_path) == ["out.png"]


@pytest.mark.parametrize("failure", [RuntimeError("encoder bug"), KeyboardInterrupt()])
@pytest.mark.parametrize("existing", [True, False])
def test_exception_leaves_the_target_untouched(
    tmp_path: Path, failure: BaseException, existing: bool
) -> None:
    target = tmp_path / "out.png"
    if existing:
        target.write_bytes(b"old")
    with pytest.raises(type(failure)) as error, atomic_write(target) as stream:
        stream.write(b"half a file")
        raise failure
    assert error.value is failure  # not wrapped: it is not the file system's doing
    if existing:
        assert target.read_bytes() == b"old"
    assert names(tmp_path) == (["out.png"] if existing else [])  # no '.part' litter


def test_os_error_inside_the_block_is_a_write_error(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(ImpastoError) as error, atomic_write(target) as stream:
        stream.write(b"half a file")
        raise OSError(28, "No space left on device")
    assert str(error.value) == f"could not write '{target}': No space left on device"
    assert not isinstance(error.value, UsageError)  # a runtime failure: exit code 1
    assert isinstance(error.value.__cause__, OSError)
    assert target.read_bytes() == b"old"
    assert names(tmp_path) == ["out.png"]


def test_missing_folder(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "out.png"
    with pytest.raises(ImpastoError) as error, atomic_write(target) as stream:
        stream.write(b"never")
    assert str(error.value) == f"could not write '{target}': No such file or directory"
    assert names(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permission bits")
def test_permissions_of_the_replaced_file_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    target.chmod(0o640)
    with atomic_write(target) as stream:
        stream.write(b"new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permission bits")
def test_new_file_gets_the_permissions_of_a_plain_open(tmp_path: Path) -> None:
    umask = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "out.png") as stream:
            stream.write(b"new")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "out.png").stat().st_mode) == 0o640  # not mkstemp's 0600


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permission bits")
def test_private_file_when_asked(tmp_path: Path) -> None:
    target = tmp_path / "job.json"
    target.write_text("{}")
    target.chmod(0o644)
    with atomic_write(target, "w", permissions_like_target=False) as stream:
        stream.write("{}")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_file_then_folder_are_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    real_fsync = os.fsync
    synced: list[tuple[bool, bytes]] = []

    def spying_fsync(fd: int) -> None:
        synced.append((stat.S_ISDIR(os.fstat(fd).st_mode), target.read_bytes()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spying_fsync)
    with atomic_write(target) as stream:
        stream.write(b"new")
    # The data reaches the disk before the rename, the rename (the folder) after it.
    assert synced == [(False, b"old"), (True, b"new")]


def test_unknown_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'ab'"):
        atomic_write(tmp_path / "out.png", "ab")  # type: ignore[call-overload]
    assert names(tmp_path) == []
