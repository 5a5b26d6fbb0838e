"""Checking uploaded images before a job is queued: type by content, bytes, pixels, decodability.

The file's name and declared type are never trusted: Pillow identifies the format from the bytes,
restricted to the formats below. The pixel count is read from the header and checked before
anything is decoded (a small file can describe an enormous image), then the whole image is
decoded once so that a truncated file is refused here, with a message naming the file as the
user knows it, rather than failing later in the queue.

This is the one place outside ``impasto.image`` that opens images with Pillow: the header probe
has no counterpart there yet.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from impasto.errors import InputError
from impasto.web.limits import Limits

# Pillow format -> the extension the server gives the stored file. MPO is what many phone
# cameras write: a JPEG with extra frames.
FORMATS: dict[str, str] = {
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "TIFF": ".tif",
    "BMP": ".bmp",
    "GIF": ".gif",
}
ACCEPTED = "JPEG, PNG, WebP, TIFF, BMP or GIF"
_OPENERS = [f for f in FORMATS if f != "MPO"]  # Pillow's JPEG opener gives MPO files

_CHUNK = 1 << 20


class UploadTooLarge(InputError):
    """An upload over the size limit in bytes (HTTP 413)."""


class NotAnImage(InputError):
    """An upload whose content is not an image of an accepted format (HTTP 415)."""


@dataclass(frozen=True)
class StoredImage:
    path: Path
    name: str  # the name the client gave, for display only
    format: str
    width: int
    height: int


def store_upload(
    source: BinaryIO, folder: Path, stem: str, *, name: str, what: str, limits: Limits
) -> StoredImage:
    """Copy an upload into ``folder`` as ``stem`` + the extension of its real format, and check it.

    ``stem`` is chosen by the server; ``name`` (the client's file name) only appears in
    messages. Raises UploadTooLarge, NotAnImage or InputError (too many pixels, unreadable).
    """
    label = f"{what} '{name}'" if name else what
    staging = folder / f"{stem}.upload"
    copied = 0
    with open(staging, "wb") as out:
        while chunk := source.read(_CHUNK):
            copied += len(chunk)
            if copied > limits.max_upload_bytes:
                out.close()
                staging.unlink()
                raise UploadTooLarge(
                    f"{label} is larger than {_mb(limits.max_upload_bytes)}, the most this server "
                    f"accepts per image"
                )
            out.write(chunk)
    if copied == 0:
        staging.unlink()
        raise NotAnImage(f"{label} is empty")
    try:
        fmt, width, height = _check_image(staging, label, limits)
    except BaseException:
        staging.unlink()
        raise
    path = folder / f"{stem}{FORMATS[fmt]}"
    os.replace(staging, path)
    return StoredImage(path=path, name=name, format=fmt, width=width, height=height)


# The form's file fields, as the user knows them.
WHAT = {"content": "content photo", "style": "style image"}


def client_name(filename: str | None) -> str:
    """The client's file name, for messages and the gallery only: its last part, printable."""
    name = re.split(r"[\\/]", filename or "")[-1]
    return "".join(c for c in name if c.isprintable())[:120]


def label_of(field: str, filename: str | None) -> str:
    """How messages name an uploaded file: "style image 'wave.jpg'"."""
    what, name = WHAT.get(field, f"file '{field}'"), client_name(filename)
    return f"{what} '{name}'" if name else what


def _check_image(path: Path, label: str, limits: Limits) -> tuple[str, int, int]:
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below is the one that counts; Pillow's warning is noise here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=_OPENERS) as img:
                fmt, (width, height) = img.format or "", img.size
                if width * height > limits.max_pixels:
                    raise InputError(_too_many_pixels(label, width, height, limits))
                img.load()  # decode it all: a truncated file fails here, not in the queue
    except UnidentifiedImageError:
        raise NotAnImage(f"{label} is not an image this server reads ({ACCEPTED})") from None
    except Image.DecompressionBombError:
        raise InputError(f"{label} has too many pixels (at most {limits.max_pixels:,})") from None
    except (OSError, ValueError, SyntaxError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{label} could not be read as an image: {reason}") from None
    if fmt not in FORMATS:
        raise NotAnImage(f"{label} is {fmt or 'an unknown format'}; this server reads {ACCEPTED}")
    return fmt, width, height


def _too_many_pixels(label: str, width: int, height: int, limits: Limits) -> str:
    return (
        f"{label} is {width}x{height} px ({width * height / 1e6:.1f} megapixels); this server "
        f"accepts at most {limits.max_pixels / 1e6:g} megapixels"
    )


def _mb(n: int) -> str:
    return f"{n / 2**20:.3g} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB"
