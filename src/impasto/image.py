"""Reading, converting, resizing and writing images: the only module that touches files and Pillow.

Everything else in impasto works on float32 torch tensors of shape ``(1, 3, H, W)``, in sRGB,
with values in ``[0, 1]``. This module is the border: whatever a user hands in (a JPEG from a
phone with an EXIF rotation, a PNG with transparency, a 16-bit grayscale TIFF, a CMYK JPEG with
an embedded profile) comes out as that tensor, and the tensor goes back to a file without ever
leaving a half-written output behind: as 8-bit or (PNG, TIFF) 16-bit, tagged sRGB with an
embedded ICC profile, and carrying a JSON description of how it was made that
:func:`read_metadata` gives back.

User mistakes (a missing file, a text file named ``.jpg``, an output folder that does not exist,
an extension impasto cannot write) raise :class:`~impasto.errors.InputError` or
:class:`~impasto.errors.UsageError` with a one-line message; programming mistakes (a tensor of
the wrong shape) raise :class:`ValueError`.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import pathlib
import tempfile
import zlib
from collections.abc import Callable, Mapping
from typing import IO, Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from impasto.errors import ImpastoError, InputError, UsageError

__all__ = [
    "SUPPORTED_SAVE_EXTENSIONS",
    "check_output_path",
    "load_image",
    "read_metadata",
    "resize_long_side",
    "resize_to",
    "save_image",
    "snapshot_path",
    "to_pil",
    "to_tensor",
]

# Extensions save_image can write, lower case. GIF is left out on purpose: a 256-colour palette
# would throw away most of what the optimisation produced.
SUPPORTED_SAVE_EXTENSIONS: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp",
)  # fmt: skip

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

# Errors Pillow raises for a file it cannot decode. UnidentifiedImageError is an OSError, and so
# is "image file is truncated", which load() raises for a cut-off file.
_READ_ERRORS: tuple[type[BaseException], ...] = (
    UnidentifiedImageError,
    OSError,
    ValueError,
    Image.DecompressionBombError,
)

# Single-channel modes whose samples are wider than 8 bits. They are read straight into floats,
# never through Pillow's 8-bit "L", so that a 16-bit scan keeps its 65536 levels.
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_WIDE_GRAY_MODES = _SIXTEEN_BIT_MODES | {"I", "F"}

_EXIF_ORIENTATION = 0x0112
# The same two tag numbers name the fields in a TIFF file and in an EXIF block.
_TAG_IMAGE_DESCRIPTION = 0x010E
_TAG_SOFTWARE = 0x0131

# Formats that save_image can write with 16 bits per sample. Pillow has no 16-bit RGB mode, so
# these are written by pypng and tifffile instead.
_SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")

# Keyword of the PNG iTXt chunk that holds save_image's metadata. Being impasto's own, it also
# says who wrote the chunk; other formats use a generic field and check the Software tag.
_METADATA_KEYWORD = "impasto"

# Descriptions of profiles that are sRGB itself: Little CMS's built-in one (what save_image
# embeds) and the common IEC 61966-2.1 one. Pixels tagged with them are used as they are, which
# keeps 8-bit values exact and 16-bit ones at full precision (a pass through Little CMS would
# round both). Matching on a description containing "sRGB" would be wrong: linear-light
# profiles are often called "sRGB linear" or the like.
_SRGB_PROFILE_NAMES = frozenset({"sRGB built-in", "sRGB IEC61966-2.1"})

# How each EXIF/TIFF orientation (2 to 8) turns the stored pixels, (H, W, C), into the displayed
# ones: the same transposes ImageOps.exif_transpose applies, for images Pillow cannot hold.
_ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # rotated 180 degrees
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.swapaxes(0, 1),  # transposed (mirrored along the main diagonal)
    6: lambda a: np.rot90(a, -1),  # to be turned 90 degrees clockwise
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # transversed (along the other diagonal)
    8: lambda a: np.rot90(a, 1),  # to be turned 90 degrees counterclockwise
}


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def load_image(path: str | os.PathLike[str], *, what: str = "image") -> torch.Tensor:
    """Read an image file (JPEG, PNG, WebP, TIFF, BMP: anything Pillow reads) at its native size.

    The EXIF orientation is applied, an embedded ICC profile is converted to sRGB, transparency
    is composited over white, and grayscale is repeated to three channels. 16-bit files keep
    their precision: grayscale always, colour PNG and TIFF (such as save_image's 16-bit output,
    used again as an init image) when they are in sRGB, i.e. untagged or tagged with an sRGB
    profile. (Little CMS, through Pillow, converts only 8-bit pixels, so a 16-bit colour file in
    another colour space is read at 8 bits to get its colours right.) Multi-frame files
    (animated WebP, multi-page TIFF) give their first frame.

    Args:
        path: the file to read.
        what: what the file is to the user ("content image", "style image"...), used to start
            error messages.

    Returns:
        float32, contiguous, sRGB, values in ``[0, 1]``.

    Shape:
        ``(1, 3, H, W)``, H and W as displayed (after the EXIF rotation).

    Raises:
        InputError: the path does not exist, is a folder, or is not a readable image
            (including truncated files).
    """
    file = _existing_file(path, what)
    try:
        with Image.open(file) as img:
            wide = _read_sixteen_bit_colour(file, img)
            if wide is not None:
                return wide
            # Decode everything now, inside the try: Image.open only reads the header, and a
            # truncated file would otherwise fail later, far from here, as a bare traceback.
            img.load()
            return to_tensor(img)
    except _READ_ERRORS as error:
        raise _unreadable(path, what, error) from error


def read_metadata(path: str | os.PathLike[str], *, what: str = "image") -> dict[str, Any] | None:
    """The ``metadata`` dict that :func:`save_image` stored in a file, or None.

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
    file = _existing_file(path, what)
    try:
        with Image.open(file) as img:
            text = _stored_metadata_text(img)
    except _READ_ERRORS as error:
        raise _unreadable(path, what, error) from error
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


def _existing_file(path: str | os.PathLike[str], what: str) -> pathlib.Path:
    """``path`` as a Path, once it is known to name something that is not a folder."""
    file = pathlib.Path(path)
    shown = os.fspath(path)
    if file.is_dir():
        raise InputError(f"{what} '{shown}' is a folder, not an image")
    if not file.exists():
        raise InputError(f"{what} '{shown}' does not exist")
    return file


def _unreadable(path: str | os.PathLike[str], what: str, error: BaseException) -> InputError:
    """The error for a file that exists but could not be decoded."""
    return InputError(
        f"{what} '{os.fspath(path)}' could not be read as an image: {_short_reason(error)}"
    )


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


def to_tensor(img: PIL.Image.Image) -> torch.Tensor:
    """Convert an open Pillow image to impasto's tensor, with the same conversions as load_image.

    Pillow errors (for example from decoding a truncated file) propagate unchanged; load_image
    is what turns them into :class:`InputError`.

    Returns:
        float32, contiguous, sRGB, values in ``[0, 1]``.

    Shape:
        ``(1, 3, H, W)``, H and W after the EXIF rotation.
    """
    # Read the profile before any conversion: it describes the file's pixels, and not every
    # Pillow operation carries ``info`` along.
    icc_profile = img.info.get("icc_profile")
    img = _apply_exif_orientation(img)

    if img.mode in _WIDE_GRAY_MODES:
        # No colour management here: Pillow's ImageCms works on 8-bit data, and going through
        # it would throw away exactly the precision these modes exist for. A gray profile's
        # curve is close to sRGB's anyway.
        gray = _wide_gray_to_unit_float(img)
        return gray.expand(1, 3, -1, -1).contiguous()

    img = _to_basic_mode(img)
    alpha: torch.Tensor | None = None
    if img.mode in ("RGBA", "LA"):
        alpha = _uint8_to_unit_float(np.asarray(img.getchannel("A")))
        # Dropping alpha with convert() does not composite; that is done below, in sRGB, once
        # the colours are in the space the white background is defined in.
        img = img.convert("RGB" if img.mode == "RGBA" else "L")

    if icc_profile and not _is_srgb_profile(icc_profile):
        img = _icc_to_srgb(img, icc_profile)
    if img.mode != "RGB":
        # L repeats its channel; CMYK (no usable profile) gets Pillow's naive conversion.
        img = img.convert("RGB")

    rgb = _uint8_to_unit_float(np.asarray(img))  # (H, W, 3)
    return _over_white(rgb.permute(2, 0, 1).unsqueeze(0), alpha)


def _over_white(rgb: torch.Tensor, alpha: torch.Tensor | None) -> torch.Tensor:
    """Composite straight (not premultiplied) colours over white; return them contiguous.

    Shape:
        ``rgb``: ``(1, 3, H, W)``; ``alpha``: ``(H, W)`` or None (opaque).
    """
    if alpha is not None:
        a = alpha.unsqueeze(0).unsqueeze(0)  # (1, 1, H, W)
        # Over white: c * a + 1 * (1 - a). An opaque pixel (a == 1) keeps its exact value.
        rgb = rgb * a + (1.0 - a)
    return rgb.contiguous()


def _read_sixteen_bit_colour(file: pathlib.Path, img: PIL.Image.Image) -> torch.Tensor | None:
    """Read a 16-bit colour PNG or TIFF at full precision, or return None to leave it to Pillow.

    Pillow opens such files as 8-bit RGB(A), dropping the low byte of every sample, so they are
    decoded again here with pypng or tifffile. Only files whose colours need no conversion are
    taken (no profile, or an sRGB one, see _SRGB_PROFILE_NAMES); everything else, 8-bit files
    included, returns None. The EXIF orientation and alpha are handled as in to_tensor.

    Shape:
        returns ``(1, 3, H, W)``, float32, H and W as displayed.

    Raises:
        ValueError: the file is damaged (for load_image to report).
    """
    icc_profile = img.info.get("icc_profile")
    if icc_profile and not _is_srgb_profile(icc_profile):
        return None
    if img.format == "PNG" and img.mode in ("RGB", "RGBA", "LA"):
        # Those modes cover colour and gray-with-alpha PNGs; 16-bit gray without alpha is
        # mode I;16 and keeps its precision in to_tensor.
        decoded = _read_png_sixteen_bit(file)
    elif img.format == "TIFF" and img.mode in ("RGB", "RGBA"):
        decoded = _read_tiff_sixteen_bit(file)
    else:
        return None
    if decoded is None:
        return None
    samples, alpha_mode = decoded  # (H, W, C) float32 in [0, 1]; C is 1 to 4
    try:
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 -- a malformed EXIF block is ignored, as in to_tensor
        orientation = 1
    if orientation in _ORIENT:
        samples = _ORIENT[orientation](samples)
    values = torch.from_numpy(np.ascontiguousarray(samples)).permute(2, 0, 1).unsqueeze(0)
    alpha = None
    if alpha_mode is not None:
        values, alpha = values[:, :-1], values[0, -1]
        if alpha_mode == "premultiplied":
            # c_premultiplied + 1 * (1 - a) is straight c over white; no division needed.
            return (values + (1.0 - alpha)).clamp_(0.0, 1.0).expand(1, 3, -1, -1).contiguous()
    return _over_white(values.expand(1, 3, -1, -1), alpha)


def _read_png_sixteen_bit(file: pathlib.Path) -> tuple[np.ndarray, str | None] | None:
    """Samples of a 16-bit PNG as floats, (H, W, C), and "straight" when the last is alpha.

    Returns None for a PNG of 8 bits or fewer. tRNS transparency comes back as an alpha
    channel, and an sBIT chunk (fewer significant bits) is taken into account.
    """
    import png  # pypng, only needed for 16-bit files

    try:
        with open(file, "rb") as stream:
            reader = png.Reader(file=stream)
            reader.preamble()  # reads the header chunks, up to the pixel data
            if reader.bitdepth != 16:
                return None
            width, height, rows, info = reader.asDirect()
            samples = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    except (png.Error, zlib.error, EOFError) as error:
        # pypng's own str() starts with the class name ("ChunkError: ..."); keep the reason.
        raise ValueError(" ".join(map(str, error.args)) or type(error).__name__) from error
    planes = int(info["planes"])
    samples = samples.reshape(height, width, planes).astype(np.float32)
    # asDirect rescales to the sBIT depth when the file has one, and says so in "bitdepth".
    samples /= np.float32(2 ** int(info["bitdepth"]) - 1)
    return samples, ("straight" if info["alpha"] else None)


def _read_tiff_sixteen_bit(file: pathlib.Path) -> tuple[np.ndarray, str | None] | None:
    """Samples of a 16-bit RGB TIFF's first page as floats, (H, W, C), and its kind of alpha.

    Returns None for any other TIFF (8-bit, float, palette, CMYK...), which Pillow reads.
    """
    import tifffile  # only needed for 16-bit files

    with tifffile.TiffFile(file) as tiff:
        page = tiff.pages[0]
        if (
            page.bitspersample != 16
            or page.sampleformat != tifffile.SAMPLEFORMAT.UINT
            or page.photometric != tifffile.PHOTOMETRIC.RGB
            or page.samplesperpixel not in (3, 4)
        ):
            return None
        try:
            # tifffile reports a truncated file as a ValueError itself, but hands on the
            # decompressor's error for a cut-off deflate strip.
            samples = page.asarray()
        except zlib.error as error:
            raise ValueError(str(error)) from error
        if page.planarconfig == tifffile.PLANARCONFIG.SEPARATE:
            samples = np.moveaxis(samples, 0, -1)
        extra = tuple(page.extrasamples)
    alpha_mode = None
    if page.samplesperpixel == 4:
        if extra[:1] == (tifffile.EXTRASAMPLE.ASSOCALPHA,):
            alpha_mode = "premultiplied"
        elif extra[:1] == (tifffile.EXTRASAMPLE.UNASSALPHA,):
            alpha_mode = "straight"
        else:  # an unspecified extra sample is not transparency; Pillow drops it too
            samples = samples[..., :3]
    return samples.astype(np.float32) / np.float32(65535.0), alpha_mode


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


def _apply_exif_orientation(img: PIL.Image.Image) -> PIL.Image.Image:
    """Rotate/flip the image as its EXIF (or XMP) orientation tag says; otherwise return it."""
    try:
        # getexif() also picks up an XMP orientation. Checking it first avoids the full copy
        # exif_transpose makes even when there is nothing to do.
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
        if orientation in (None, 1):
            return img
        transposed = ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001
        # EXIF is metadata: a malformed block must not make an otherwise readable image
        # unreadable, so such an image is used as stored.
        return img
    return transposed if transposed is not None else img


def _to_basic_mode(img: PIL.Image.Image) -> PIL.Image.Image:
    """Bring any 8-bit mode to one of L, LA, RGB, RGBA or CMYK (CMYK stays for its profile)."""
    mode = img.mode
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return img
    if mode == "P":
        # A palette with a transparent index (or an RGBA palette) carries alpha.
        has_alpha = "transparency" in img.info or (
            img.palette is not None and img.palette.mode == "RGBA"
        )
        return img.convert("RGBA" if has_alpha else "RGB")
    if mode in ("PA", "RGBa"):
        return img.convert("RGBA")  # RGBa is premultiplied; RGBA un-premultiplies it
    if mode == "La":
        return img.convert("LA")
    if mode == "1":
        return img.convert("L")
    # RGBX, YCbCr, LAB, HSV...: Pillow knows how to reach RGB. An unsupported mode raises
    # ValueError, which load_image reports as an unreadable image.
    return img.convert("RGB")


def _wide_gray_to_unit_float(img: PIL.Image.Image) -> torch.Tensor:
    """Read a 16-bit, 32-bit integer or float grayscale image into floats in [0, 1].

    16-bit modes are divided by 65535. Mode "I" holds 32-bit integers, which in practice come
    from 16-bit PNG/TIFF files, so they are divided by 65535 too. Mode "F" is taken to be
    already in [0, 1], the usual convention for float TIFFs. Out-of-range values are clamped.

    Shape:
        returns ``(1, 1, H, W)``, float32.
    """
    # np.asarray honours the byte order of I;16B ('>u2'); astype gives a native float copy.
    values = np.asarray(img).astype(np.float32)
    if img.mode != "F":
        # float32 division of exactly representable integers is correctly rounded, so 257
        # gives the float32 nearest to 257 / 65535, the same as any other exact computation.
        values /= np.float32(65535.0)
    tensor = torch.from_numpy(values)
    tensor = torch.nan_to_num(tensor, nan=0.0).clamp_(0.0, 1.0)
    return tensor.unsqueeze(0).unsqueeze(0)


def _uint8_to_unit_float(values: np.ndarray) -> torch.Tensor:
    """8-bit samples to float32 in [0, 1]: exactly ``k / 255`` for each level k.

    Shape:
        the input's shape, unchanged.
    """
    # np.asarray of a Pillow image can be read-only, which torch.from_numpy warns about, so
    # convert (and copy) in numpy first.
    return torch.from_numpy(values.astype(np.float32)) / 255.0


@functools.lru_cache(maxsize=1)
def _srgb_profile() -> Any:
    """The built-in sRGB profile, made once on first use (never at import time)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def _srgb_icc_bytes() -> bytes | None:
    """The ICC profile save_image embeds: Little CMS's built-in sRGB, made once, on first use.

    None when Pillow was built without Little CMS; files are then written untagged.
    """
    try:
        return _srgb_profile().tobytes()
    except ImportError:
        return None


@functools.lru_cache(maxsize=16)
def _is_srgb_profile(icc_profile: bytes) -> bool:
    """Whether an embedded profile is sRGB itself, so the pixels need no conversion."""
    try:
        from PIL import ImageCms
    except ImportError:
        return False
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        description = ImageCms.getProfileDescription(profile)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return False
    return description.strip() in _SRGB_PROFILE_NAMES


def _icc_to_srgb(img: PIL.Image.Image, icc_profile: bytes) -> PIL.Image.Image:
    """Convert an L, RGB or CMYK image from its embedded profile to sRGB (mode RGB).

    A broken or mismatched profile (say, a CMYK profile on an RGB image) is ignored and the
    pixels are taken as sRGB, which is what every viewer without colour management does: a
    profile must never be the reason a readable image fails to load.
    """
    try:
        from PIL import ImageCms
    except ImportError:  # Pillow built without Little CMS
        return img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        # Perceptual intent: for the common matrix-based RGB profiles Little CMS falls back to
        # relative colorimetric; for CMYK/LUT profiles it compresses out-of-gamut colours
        # smoothly rather than clipping them.
        converted = ImageCms.profileToProfile(
            img,
            source,
            _srgb_profile(),
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
            outputMode="RGB",
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return img
    return converted if converted is not None else img


# --------------------------------------------------------------------------------------------
# Tensor <-> Pillow, resizing
# --------------------------------------------------------------------------------------------


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


def resize_long_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize so that the longer side is ``size`` pixels, keeping the aspect ratio.

    The shorter side is rounded to the nearest pixel (halves up), and is at least 1 pixel.
    See :func:`resize_to` for the filtering.

    Shape:
        ``(N, C, H, W)`` -> ``(N, C, H', W')`` with ``max(H', W') == size``.

    Raises:
        ValueError: ``size`` is not a positive integer, or the tensor is not 4-D.
    """
    height, width = _spatial_size(image)
    return resize_to(image, *long_side_size(height, width, size))


def long_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """``(height, width)`` scaled so that the longer side is ``size``, as resize_long_side does."""
    if size < 1:
        raise ValueError(f"size must be at least 1 pixel, got {size}")
    if height >= width:
        return size, _scaled_side(width, size / height)
    return _scaled_side(height, size / width), size


def resize_to(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize to exactly ``height`` x ``width`` pixels (the aspect ratio may change).

    Bicubic, antialiased when either side shrinks (plain bicubic sampling of a large photo
    aliases into moiré that the style loss then happily amplifies), and clamped to ``[0, 1]``
    because bicubic overshoots at edges. Returns the input itself when it already has that size.

    Shape:
        ``(N, C, H, W)`` -> ``(N, C, height, width)``, same dtype and device.

    Raises:
        ValueError: a target side is below 1, or the tensor is not 4-D.
    """
    if height < 1 or width < 1:
        raise ValueError(f"target size must be at least 1x1 pixels, got {height}x{width}")
    old_height, old_width = _spatial_size(image)
    if (old_height, old_width) == (height, width):
        return image
    shrinking = height < old_height or width < old_width
    resized = F.interpolate(
        image,
        size=(height, width),
        mode="bicubic",
        align_corners=False,
        antialias=shrinking,
    )
    return resized.clamp(0.0, 1.0)


def _spatial_size(image: torch.Tensor) -> tuple[int, int]:
    """(H, W) of a 4-D image tensor. Shape: ``(N, C, H, W)``."""
    if image.dim() != 4:
        raise ValueError(f"expected an image tensor (N, C, H, W), got {tuple(image.shape)}")
    return int(image.shape[-2]), int(image.shape[-1])


def _scaled_side(side: int, scale: float) -> int:
    """``side * scale`` rounded half up (not to even, so results do not flip between sizes)."""
    return max(1, math.floor(side * scale + 0.5))


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


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
    renamed onto the target in one step: a crash, a full disk or an interrupt never leaves a
    truncated output, and an existing file is either fully replaced or left untouched.

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
    are 7-bit ASCII); :func:`read_metadata` gives it back as a dict.

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
    description = _metadata_json(metadata, image_format)
    encode = _encoder(image, image_format, bit_depth, quality, description)

    folder = out.parent
    try:
        descriptor, temp_name = tempfile.mkstemp(prefix="." + out.name, suffix=".part", dir=folder)
    except OSError as error:
        raise ImpastoError(
            f"could not write '{os.fspath(path)}': {error.strerror or error}"
        ) from error
    try:
        with os.fdopen(descriptor, "wb") as stream:
            if hasattr(os, "fchmod"):  # POSIX only
                # mkstemp creates the file 0600; give the output the permissions a plain
                # open() would (or those of the file it replaces).
                os.fchmod(stream.fileno(), _permissions_for(out))
            encode(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, out)
    except BaseException as error:
        # Whatever happened (encoder error, full disk, Ctrl-C), the target was not touched;
        # remove the partial file so no '.part' litter is left next to it.
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        if isinstance(error, OSError):
            reason = error.strerror or str(error)
            raise ImpastoError(f"could not write '{os.fspath(path)}': {reason}") from error
        raise
    _fsync_folder(folder)
    return out


# A JPEG comment is one COM segment, whose 16-bit length field counts itself.
_JPEG_COMMENT_LIMIT = 65533


def _metadata_json(metadata: Mapping[str, Any] | None, image_format: str) -> str | None:
    """save_image's metadata as the JSON text to store, or None when there is none."""
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


def _encoder(
    image: torch.Tensor, image_format: str, bit_depth: int, quality: int, description: str | None
) -> Callable[[IO[bytes]], None]:
    """Quantise ``image`` now and return what writes it, in ``image_format``, to a binary stream.

    Everything that can fail on the caller's input fails here, before a temporary file exists.
    """
    from impasto import __version__  # here, not at the top: impasto imports this module

    software = f"impasto {__version__}"
    icc_profile = _srgb_icc_bytes()
    if image_format == "TIFF":
        levels = _quantise(image, bit_depth, "save_image")
        return functools.partial(
            _write_tiff,
            pixels=levels,
            icc_profile=icc_profile,
            description=description,
            software=software,
        )
    if bit_depth == 16:  # PNG, the other format with 16 bits
        levels = _quantise(image, bit_depth, "save_image")
        return functools.partial(
            _write_png_sixteen_bit,
            pixels=levels,
            icc_profile=icc_profile,
            description=description,
            software=software,
        )
    pil_image = Image.fromarray(_quantise(image, 8, "save_image"))  # uint8 (H, W, 3) is RGB
    options = _pillow_options(image_format, quality, icc_profile, description, software)

    def save_with_pillow(stream: IO[bytes]) -> None:
        pil_image.save(stream, format=image_format, **options)

    return save_with_pillow


def _pillow_options(
    image_format: str,
    quality: int,
    icc_profile: bytes | None,
    description: str | None,
    software: str,
) -> dict[str, Any]:
    """Pillow's save arguments for an 8-bit PNG, JPEG, WebP or BMP (see save_image)."""
    options: dict[str, Any] = {}
    if icc_profile and image_format != "BMP":
        options["icc_profile"] = icc_profile
    if image_format == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("Software", software)
        if description is not None:
            info.add_itxt(_METADATA_KEYWORD, description)
        options["pnginfo"] = info
    elif image_format == "JPEG":
        # JPEG keeps full-resolution chroma (4:4:4): the default 4:2:0 visibly smears the
        # fine coloured brush strokes that style transfer is all about.
        options.update(quality=quality, subsampling=0, exif=_exif(software, None))
        if description is not None:
            options["comment"] = description
    elif image_format == "WEBP":
        options.update(quality=quality, exif=_exif(software, description))
    return options


def _exif(software: str, description: str | None) -> PIL.Image.Exif:
    """An EXIF block with the Software tag and, when given, the ImageDescription."""
    exif = Image.Exif()
    exif[_TAG_SOFTWARE] = software
    if description is not None:
        exif[_TAG_IMAGE_DESCRIPTION] = description
    return exif


def _write_tiff(
    stream: IO[bytes],
    *,
    pixels: np.ndarray,
    icc_profile: bytes | None,
    description: str | None,
    software: str,
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
        description=description,
        software=software,
        metadata=None,  # no tifffile "shaped" JSON: ImageDescription is save_image's alone
    )
    stream.write(encoded.getbuffer())


def _write_png_sixteen_bit(
    stream: IO[bytes],
    *,
    pixels: np.ndarray,
    icc_profile: bytes | None,
    description: str | None,
    software: str,
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
    extra.append((b"tEXt", b"Software\0" + software.encode("latin-1")))
    if description is not None:
        extra.append((b"iTXt", _itxt_data(_METADATA_KEYWORD, description)))
    header, *rest = png.Reader(bytes=encoded.getvalue()).chunks()
    png.write_chunks(stream, [header, *extra, *rest])


def _itxt_data(keyword: str, text: str) -> bytes:
    """The data of an uncompressed PNG iTXt chunk (no language tag, no translated keyword)."""
    # keyword NUL, compression flag 0, compression method 0, language "" NUL,
    # translated keyword "" NUL, then the text itself in UTF-8.
    return keyword.encode("latin-1") + b"\0\0\0" + b"\0" + b"\0" + text.encode("utf-8")


def _permissions_for(out: pathlib.Path) -> int:
    """Mode bits for a new output: those of the file it replaces, else 0o666 minus the umask."""
    try:
        return out.stat().st_mode & 0o7777
    except OSError:
        pass
    # The umask can only be read by setting it; set it straight back. (Not thread-safe in
    # theory, but the window is two system calls long.)
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


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
