"""The server's data folder: what a job's folder holds, what it weighs, and what goes first when
the folder is over its quota.

A job's folder (``<data>/jobs/<uuid>/``) holds the uploads under names the server chose,
``job.json``, ``preview.jpg`` (the image as it forms), and once it is done ``result.png`` and
``photo.jpg`` (the content photo as the run saw it, at the result's size, for the page's
before/after view). The images are written atomically (``impasto.image.save_image``), so a
reader never sees half a file.

The quota (``impasto serve --max-data-mb``) is kept by removing finished jobs: failed and
cancelled ones first, then done ones, each oldest first. Jobs that are queued or running are
never removed to make room; a new job that does not fit beside them is refused.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

RESULT = "result.png"
PREVIEW = "preview.jpg"
PHOTO = "photo.jpg"
# Previews of large runs are scaled down to this long side; the result keeps its full size.
PREVIEW_SIZE = 768
# Removed first when room is needed: a finished job with no picture is worth the least.
_CLEANUP_ORDER = {"failed": 0, "cancelled": 0, "done": 1}


class Stored(Protocol):
    """What the clean-up needs to know of a job."""

    state: str
    created: float
    folder: Path


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under ``folder`` (0 if it is gone), links not followed."""
    total = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                total += folder_bytes(Path(entry.path))
            else:
                total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue  # removed meanwhile
    return total


def removal_order(jobs: Iterable[Stored]) -> list[Stored]:
    """Finished jobs in the order the quota removes them; unfinished ones are left out."""
    finished = [j for j in jobs if j.state in _CLEANUP_ORDER]
    return sorted(finished, key=lambda j: (_CLEANUP_ORDER[j.state], j.created))


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def megabytes(n: int) -> str:
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB"


def write_preview(folder: Path, image: Any) -> None:
    """The image as it forms, as a JPEG no larger than PREVIEW_SIZE.

    Shape: image (1, 3, H, W) in [0, 1].
    """
    from impasto.image import resize_long_side, save_image

    if max(image.shape[-2:]) > PREVIEW_SIZE:
        image = resize_long_side(image.detach(), PREVIEW_SIZE)
    save_image(image, folder / PREVIEW, quality=85)


def write_result(folder: Path, image: Any, metadata: Mapping[str, Any]) -> None:
    """The result as a PNG with the run's record in it.

    Shape: image (1, 3, H, W) in [0, 1].
    """
    from impasto.image import save_image

    save_image(image, folder / RESULT, metadata=dict(metadata))


def write_photo(folder: Path, content: Path, height: int, width: int) -> None:
    """The content photo at the result's size (oriented and in sRGB, as the run read it), so the
    page can lay the two over each other whatever format the upload was in."""
    from impasto.image import load_image, resize_to, save_image

    photo = load_image(content, what="content photo")
    save_image(resize_to(photo, height, width), folder / PHOTO, quality=90)
