"""Writing image tensors to files, atomically: 8 or (PNG, TIFF) 16 bits, tagged sRGB, with the
JSON record that :func:`~impasto.image.read_metadata` gives back."""

from __future__ import annotations

import functools
import io
import os
import pathlib
import zlib
from collections.abc import Callable, Mapping
from typing import IO, Any

import numpy as np
import PIL.Image
import torch
from PIL import Image

from impasto.errors import UsageError
from impasto.files import atomic_write
from impasto.image._icc import srgb_icc_bytes
from impasto.image.metadata import (
    metadata_json,
    pillow_text_options,
    png_text_chunks,
    tiff_text_tags,
)

__all__ = [
    "SUPPORTED_SAVE_EXTENSIONS",
    "check_output_path",
    "save_image",
    "snapshot_path",
    "to_pil",
]

# Extensions save_image can write, lower case. GIF is left out on purpose: a 256-colour palette
# would throw away most of what the optimisation produced.
SUPPORTED_SAVE_EXTENSIONS: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".webp",
    ".tif",
    ".tiff",
    ".bmp",
)

# Format name (Pillow's) for each extension; the encoder options are in _pillow_options.
_SAVE_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}

# Formats that save_image can write with 16 bits per sample. Pillow has no 16-bit RGB mode, so
# these are written by pypng and tifffile instead.
_SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")


def to_pil(image: torch.Tensor) -> PIL.Image.Image:
    """Convert an image tensor to an 8-bit RGB Pillow image.

    Values are clamped to ``[0, 1]`` (NaN becomes 0) and rounded to the nearest of the 256
    levels, so ``0.5`` gives 128 and an image read by load_image comes back bit for bit.

    Shape:
        ``(1, 3, H, W)`` or ``(3, H, W)``; any device, any floating dtype.

    Raises:
        ValueError: the tensor does not have one of those shapes.
    """
    return Image.fromarray(_quantise(image, 8, "to_pil"))  # uint8 (H, W, 3) is RGB


def _quantise(image: torch.Tensor, bit_depth: int, caller: str) -> np.ndarray:
    """Clamp to ``[0, 1]`` (NaN to 0) and round to ``round(x * (2**bit_depth - 1))``.

    Shape:
        ``(1, 3, H, W)`` or ``(3, H, W)`` -> ``(H, W, 3)``, uint8 or uint16.

    Raises:
        ValueError: the tensor does not have one of those shapes (naming ``caller``).
    """
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"{caller} takes one image, got a batch of shape {tuple(image.shape)}")
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"{caller} expects (1, 3, H, W) or (3, H, W), got {tuple(image.shape)}")
    # In float64 the product of a float32 and 65535 (or 255) is exact, so the rounding is that
    # of the true value; a float32 product can round x * 65535 onto a .5 and then to the wrong
    # side.
    levels = (
        torch.nan_to_num(image.detach().to("cpu", torch.float64), nan=0.0)
        .clamp(0.0, 1.0)
        .mul(float(2**bit_depth - 1))
        .round()  # to the nearest level; 0.5 * 255 = 127.5 goes to 128 (half to even)
        .to(torch.int32)
    )
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return levels.permute(1, 2, 0).numpy().astype(dtype)  # astype copies: contiguous


def check_output_path(path: str | os.PathLike[str], *, bit_depth: int = 8) -> pathlib.Path:
    """Check that an image can be written at ``path``, before any (long) work starts.

    Args:
        path: the output file.
        bit_depth: the bit depth it will be written with (see :func:`save_image`).

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        UsageError: the extension is not one of SUPPORTED_SAVE_EXTENSIONS, the bit depth is not
            8 or 16 or is 16 for a format that only holds 8, the path is an existing folder, or
            its folder does not exist, is not a folder or is not writable.
    """
    out = pathlib.Path(path)
    shown = os.fspath(path)
    supported = ", ".join(SUPPORTED_SAVE_EXTENSIONS)
    extension = out.suffix.lower()
    if extension not in SUPPORTED_SAVE_EXTENSIONS:
        found = f"extension '{out.suffix}'" if out.suffix else "no extension"
        raise UsageError(f"output '{shown}' has {found}; impasto can write {supported}")
    _check_bit_depth(bit_depth, _SAVE_FORMATS[extension], shown)
    if out.is_dir():
        raise UsageError(f"output '{shown}' is an existing folder; give a file name")
    folder = out.parent  # "." for a bare file name
    if not folder.exists():
        raise UsageError(f"cannot write '{shown}': folder '{folder}' does not exist")
    if not folder.is_dir():
        raise UsageError(f"cannot write '{shown}': '{folder}' is not a folder")
    # Writing means creating a temporary file in the folder and renaming it: that needs write
    # and search permission on the folder, not on the target file. (os.access also reports a
    # read-only file system.)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write '{shown}': folder '{folder}' is not writable")
    return out


def _check_bit_depth(bit_depth: int, image_format: str, shown: str) -> None:
    """Refuse a bit depth that is not 8 or 16, or 16 for a format that cannot hold it."""
    if isinstance(bit_depth, bool) or bit_depth not in (8, 16):
        raise UsageError(f"bit depth must be 8 or 16, got {bit_depth!r}")
    if bit_depth == 16 and image_format not in _SIXTEEN_BIT_FORMATS:
        # Derived from the tables, so the message cannot drift from what save_image does.
        names = " and ".join(_SIXTEEN_BIT_FORMATS)
        extensions = ", ".join(e for e, f in _SAVE_FORMATS.items() if f in _SIXTEEN_BIT_FORMATS)
        raise UsageError(
            f"output '{shown}': {image_format} holds only 8 bits per channel; "
            f"16-bit output needs {names} ({extensions})"
        )


def save_image(
    image: torch.Tensor,
    path: str | os.PathLike[str],
    *,
    quality: int = 95,
    bit_depth: int = 8,
    metadata: Mapping[str, Any] | None = None,
) -> pathlib.Path:
    """Write an image tensor to ``path``, atomically, in the format its extension names.

    The image is encoded into a temporary file in the same folder, flushed to disk, then
    renamed onto the target in one step (:func:`impasto.files.atomic_write`): a crash, a full
    disk or an interrupt never leaves a truncated output, and an existing file is either fully
    replaced or left untouched.

    Every format that can carry an ICC profile gets Little CMS's built-in sRGB one, saying what
    the pixels are (impasto works in sRGB), and a Software tag "impasto <version>". Per format:

    - PNG: 8-bit by Pillow, 16-bit by pypng. Profile in iCCP, Software in a tEXt chunk,
      metadata in an iTXt chunk with the keyword ``impasto``.
    - TIFF: written by tifffile at both depths, deflate-compressed with the horizontal
      predictor. Profile in InterColorProfile; metadata in ImageDescription; Software tag.
    - JPEG: 4:4:4 at ``quality``. Profile in APP2; metadata in the JPEG comment (COM); Software
      in an EXIF block, which is how read_metadata tells impasto's comment from anyone else's.
    - WebP: at ``quality``. Profile in ICCP; metadata and Software as the ImageDescription and
      Software of an EXIF block, the place WebP has for them (XMP would need an XML wrapper
      around the same JSON and say nothing more).
    - BMP: pixels only; the format has no room for a profile or text.

    The metadata is stored as JSON with non-ASCII characters escaped (TIFF and EXIF text fields
    are 7-bit ASCII); :func:`~impasto.image.read_metadata` gives it back as a dict.

    Args:
        image: values in ``[0, 1]`` (clamped), see :func:`to_pil`.
        path: the output file; its extension picks PNG, JPEG, WebP, TIFF or BMP.
        quality: JPEG and WebP quality, 1 to 100 (JPEG is written 4:4:4, not subsampled).
        bit_depth: 8, or 16 for PNG and TIFF: each value ``x`` is stored as
            ``round(x * (2**bit_depth - 1))``. 16 bits keep smooth gradients free of banding
            and let the file be used again (as an init image) without losing precision.
        metadata: a JSON-serialisable mapping describing how the image was made, or None.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Shape:
        ``image``: ``(1, 3, H, W)`` or ``(3, H, W)``.

    Raises:
        UsageError: the path or bit depth fails :func:`check_output_path`, or ``quality`` is
            out of range. Nothing is written.
        ValueError: ``image`` has the wrong shape, or ``metadata`` is not JSON-serialisable
            (or, for JPEG, is too long for a comment). Nothing is written.
        TypeError: ``metadata`` is not a mapping. Nothing is written.
        ImpastoError: the file system refused the write (disk full, permissions...).
    """
    out = check_output_path(path, bit_depth=bit_depth)
    if not 1 <= quality <= 100:
        raise UsageError(f"quality must be between 1 and 100, got {quality}")
    image_format = _SAVE_FORMATS[out.suffix.lower()]
    description = metadata_json(metadata, image_format)
    encode = _encoder(image, image_format, bit_depth, quality, description)
    with atomic_write(path) as stream:
        encode(stream)
    return out


def _encoder(
    image: torch.Tensor, image_format: str, bit_depth: int, quality: int, description: str | None
) -> Callable[[IO[bytes]], None]:
    """Quantise ``image`` now and return what writes it, in ``image_format``, to a binary stream.

    Everything that can fail on the caller's input fails here, before a temporary file exists.
    """
    icc_profile = srgb_icc_bytes()
    if image_format == "TIFF":
        levels = _quantise(image, bit_depth, "save_image")
        return functools.partial(
            _write_tiff,
            pixels=levels,
            icc_profile=icc_profile,
            description=description,
        )
    if bit_depth == 16:  # PNG, the other format with 16 bits
        levels = _quantise(image, bit_depth, "save_image")
        return functools.partial(
            _write_png_sixteen_bit,
            pixels=levels,
            icc_profile=icc_profile,
            description=description,
        )
    pil_image = Image.fromarray(_quantise(image, 8, "save_image"))  # uint8 (H, W, 3) is RGB
    options = _pillow_options(image_format, quality, icc_profile, description)

    def save_with_pillow(stream: IO[bytes]) -> None:
        pil_image.save(stream, format=image_format, **options)

    return save_with_pillow


def _pillow_options(
    image_format: str,
    quality: int,
    icc_profile: bytes | None,
    description: str | None,
) -> dict[str, Any]:
    """Pillow's save arguments for an 8-bit PNG, JPEG, WebP or BMP (see save_image)."""
    options = pillow_text_options(image_format, description)
    if icc_profile and image_format != "BMP":
        options["icc_profile"] = icc_profile
    if image_format == "JPEG":
        # JPEG keeps full-resolution chroma (4:4:4): the default 4:2:0 visibly smears the
        # fine coloured brush strokes that style transfer is all about.
        options.update(quality=quality, subsampling=0)
    elif image_format == "WEBP":
        options.update(quality=quality)
    return options


def _write_tiff(
    stream: IO[bytes],
    *,
    pixels: np.ndarray,
    icc_profile: bytes | None,
    description: str | None,
) -> None:
    """Write an RGB TIFF, 8 or 16 bits by the dtype of ``pixels`` (H, W, 3)."""
    import tifffile  # also writes 16-bit RGB, which Pillow cannot

    # Encoded in memory: tifffile wants a file it can name, and the temporary file's stream
    # (from a file descriptor) has a number for a name.
    encoded = io.BytesIO()
    tifffile.imwrite(
        encoded,
        pixels,
        photometric="rgb",
        # Deflate with horizontal differencing: lossless, read by every TIFF reader, and a
        # third or less of the uncompressed size on smooth images.
        compression="zlib",
        predictor=True,
        iccprofile=icc_profile,
        **tiff_text_tags(description),
    )
    stream.write(encoded.getbuffer())


def _write_png_sixteen_bit(
    stream: IO[bytes],
    *,
    pixels: np.ndarray,
    icc_profile: bytes | None,
    description: str | None,
) -> None:
    """Write a 16-bit RGB PNG of ``pixels`` (H, W, 3), uint16, with save_image's chunks.

    pypng writes the pixels; its chunk reader and writer then put the profile and text chunks
    in, right after the header, where the PNG specification wants iCCP (before the image data)
    and where readers find the text without decoding the pixels.
    """
    import png  # pypng

    height, width, _ = pixels.shape
    encoded = io.BytesIO()
    writer = png.Writer(width, height, greyscale=False, bitdepth=16)
    rows = pixels.astype(">u2").reshape(height, width * 3)  # PNG samples are big-endian
    writer.write_packed(encoded, (row.tobytes() for row in rows))

    extra: list[tuple[bytes, bytes]] = []
    if icc_profile:
        # Profile name, NUL, compression method 0 (zlib), compressed profile.
        extra.append((b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc_profile)))
    extra.extend(png_text_chunks(description))
    header, *rest = png.Reader(bytes=encoded.getvalue()).chunks()
    png.write_chunks(stream, [header, *extra, *rest])


def snapshot_path(output: str | os.PathLike[str], step: int) -> pathlib.Path:
    """Path of the snapshot written at optimisation step ``step``, next to the output.

    ``snapshot_path("out.png", 50)`` is ``out_0050.png``: four digits, zero-padded so the
    snapshots sort by step, more digits when the step needs them.

    Raises:
        ValueError: ``step`` is negative.
    """
    if step < 0:
        raise ValueError(f"step must not be negative, got {step}")
    out = pathlib.Path(output)
    return out.with_name(f"{out.stem}_{step:04d}{out.suffix}")
