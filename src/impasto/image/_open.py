"""Opening an image file for reading: the checks and messages load_image and read_metadata share.

Pillow only, so that read_metadata stays free of torch and numpy.
"""

from __future__ import annotations

import os
import pathlib

from PIL import Image, UnidentifiedImageError

from impasto.errors import InputError

__all__ = ["READ_ERRORS", "existing_file", "unreadable"]

# Errors Pillow raises for a file it cannot decode. UnidentifiedImageError is an OSError, and so
# is "image file is truncated", which load() raises for a cut-off file.
READ_ERRORS: tuple[type[BaseException], ...] = (
    UnidentifiedImageError,
    OSError,
    ValueError,
    Image.DecompressionBombError,
)


def existing_file(path: str | os.PathLike[str], what: str) -> pathlib.Path:
    """``path`` as a Path, once it is known to name something that is not a folder."""
    file = pathlib.Path(path)
    shown = os.fspath(path)
    if file.is_dir():
        raise InputError(f"{what} '{shown}' is a folder, not an image")
    if not file.exists():
        raise InputError(f"{what} '{shown}' does not exist")
    return file


def unreadable(path: str | os.PathLike[str], what: str, error: BaseException) -> InputError:
    """The error for a file that exists but could not be decoded."""
    return InputError(
        f"{what} '{os.fspath(path)}' could not be read as an image: {_short_reason(error)}"
    )


def _short_reason(error: BaseException) -> str:
    """One line saying why Pillow could not read a file, without repeating the path."""
    if isinstance(error, UnidentifiedImageError):
        # Pillow's own message repeats the full path, which the caller already shows.
        return "not a recognised image format"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror  # "Permission denied" rather than "[Errno 13] ...: '/path'"
    text = str(error).strip()
    first_line = text.splitlines()[0] if text else type(error).__name__
    return first_line
