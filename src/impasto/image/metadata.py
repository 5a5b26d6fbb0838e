"""The JSON record save_image stores in an image file: reading it back, and where it goes.

Each format keeps the record in a different place (see :func:`read_metadata`); the writing
helpers here tell write.py what to put where, so the two sides cannot drift apart. Pillow and
the standard library only: ``impasto info`` reads the record without loading torch or numpy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import PIL.Image
from PIL import Image

from impasto._version import __version__
from impasto.image._open import READ_ERRORS, existing_file, unreadable

# Public: read_metadata. metadata_json, pillow_text_options, png_text_chunks and tiff_text_tags
# are for write.py.
__all__ = ["read_metadata"]

# The Software tag of every file save_image writes. In a generic field (TIFF and EXIF
# ImageDescription, JPEG comment) the record is only taken when this tag says impasto.
_SOFTWARE = f"impasto {__version__}"

# The same two tag numbers name the fields in a TIFF file and in an EXIF block.
_TAG_IMAGE_DESCRIPTION = 0x010E
_TAG_SOFTWARE = 0x0131

# Keyword of the PNG iTXt chunk that holds save_image's metadata. Being impasto's own, it also
# says who wrote the chunk; other formats use a generic field and check the Software tag.
_METADATA_KEYWORD = "impasto"

# A JPEG comment is one COM segment, whose 16-bit length field counts itself.
_JPEG_COMMENT_LIMIT = 65533


def read_metadata(path: str | os.PathLike[str], *, what: str = "image") -> dict[str, Any] | None:
    """The ``metadata`` dict that :func:`~impasto.image.save_image` stored in a file, or None.

    It is looked for where save_image puts it: a PNG iTXt chunk named ``impasto``; the
    ImageDescription of a TIFF, or of the EXIF block of a WebP; the comment of a JPEG. In the
    last three, generic fields that any program may fill, it is only taken when the file's
    Software tag says impasto wrote it.

    Returns:
        The stored dict; None when the file has none (a photo, a BMP, an image saved without
        metadata) or what is there is not a JSON object written by impasto.

    Raises:
        InputError: the path does not exist, is a folder, or is not a readable image.
    """
    file = existing_file(path, what)
    try:
        with Image.open(file) as img:
            text = _stored_metadata_text(img)
    except READ_ERRORS as error:
        raise unreadable(path, what, error) from error
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not text:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or absurdly deeply nested
        return None
    return value if isinstance(value, dict) else None


def _stored_metadata_text(img: PIL.Image.Image) -> str | bytes | None:
    """The raw text save_image would have stored in this file, or None (see read_metadata)."""
    if img.format == "PNG":
        # save_image puts its chunks before the pixel data, where Image.open has read them;
        # ``text`` also finds chunks that follow the pixels, at the cost of decoding those.
        text = img.info.get(_METADATA_KEYWORD)
        if text is None:
            text = img.text.get(_METADATA_KEYWORD)  # type: ignore[attr-defined]
        return text if isinstance(text, str) else None
    if img.format == "TIFF":
        tags = img.tag_v2  # type: ignore[attr-defined]
        text, software = tags.get(_TAG_IMAGE_DESCRIPTION), tags.get(_TAG_SOFTWARE)
    elif img.format == "JPEG":
        text, software = img.info.get("comment"), img.getexif().get(_TAG_SOFTWARE)
    elif img.format == "WEBP":
        exif = img.getexif()
        text, software = exif.get(_TAG_IMAGE_DESCRIPTION), exif.get(_TAG_SOFTWARE)
    else:
        return None
    if not isinstance(software, str) or not software.startswith("impasto"):
        return None
    return text if isinstance(text, (str, bytes)) else None


def metadata_json(metadata: Mapping[str, Any] | None, image_format: str) -> str | None:
    """save_image's metadata as the JSON text to store, or None when there is none.

    Raises:
        TypeError: ``metadata`` is not a mapping.
        ValueError: it is not JSON-serialisable, or too long for a JPEG comment.
    """
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping, got {type(metadata).__name__}")
    try:
        # Strict JSON (no NaN/Infinity) so that any JSON reader can read it back.
        text = json.dumps(dict(metadata), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"metadata must be JSON-serialisable: {error}") from error
    if image_format == "JPEG" and len(text) > _JPEG_COMMENT_LIMIT:
        raise ValueError(
            f"metadata is {len(text)} characters as JSON; a JPEG comment holds at most "
            f"{_JPEG_COMMENT_LIMIT}"
        )
    return text


def pillow_text_options(image_format: str, description: str | None) -> dict[str, Any]:
    """Pillow's save arguments that store the Software tag and ``description`` (the JSON text)
    in an 8-bit PNG, JPEG or WebP; none for BMP, which has no room for text."""
    if image_format == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("Software", _SOFTWARE)
        if description is not None:
            info.add_itxt(_METADATA_KEYWORD, description)
        return {"pnginfo": info}
    if image_format == "JPEG":
        # The record goes in the comment; the EXIF Software tag is how read_metadata tells
        # impasto's comment from anyone else's.
        options: dict[str, Any] = {"exif": _exif(None)}
        if description is not None:
            options["comment"] = description
        return options
    if image_format == "WEBP":
        return {"exif": _exif(description)}
    return {}


def png_text_chunks(description: str | None) -> list[tuple[bytes, bytes]]:
    """The tEXt Software and iTXt ``impasto`` chunks, (type, data), of a PNG written by pypng."""
    chunks = [(b"tEXt", b"Software\0" + _SOFTWARE.encode("latin-1"))]
    if description is not None:
        chunks.append((b"iTXt", _itxt_data(_METADATA_KEYWORD, description)))
    return chunks


def tiff_text_tags(description: str | None) -> dict[str, Any]:
    """tifffile's ``imwrite`` arguments for the ImageDescription and Software tags."""
    # metadata=None: no tifffile "shaped" JSON, ImageDescription is save_image's alone.
    return {"description": description, "software": _SOFTWARE, "metadata": None}


def _exif(description: str | None) -> PIL.Image.Exif:
    """An EXIF block with the Software tag and, when given, the ImageDescription."""
    exif = Image.Exif()
    exif[_TAG_SOFTWARE] = _SOFTWARE
    if description is not None:
        exif[_TAG_IMAGE_DESCRIPTION] = description
    return exif


def _itxt_data(keyword: str, text: str) -> bytes:
    """The data of an uncompressed PNG iTXt chunk (no language tag, no translated keyword)."""
    # keyword NUL, compression flag 0, compression method 0, language "" NUL,
    # translated keyword "" NUL, then the text itself in UTF-8.
    return keyword.encode("latin-1") + b"\0\0\0" + b"\0" + b"\0" + text.encode("utf-8")
