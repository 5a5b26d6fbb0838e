"""Reading image files into impasto's tensor: float32 ``(1, 3, H, W)``, sRGB, in ``[0, 1]``.

Whatever a user hands in (a JPEG from a phone with an EXIF rotation, a PNG with transparency, a
16-bit grayscale TIFF, a CMYK JPEG with an embedded profile) comes out as that tensor.

Large files are read by their header first: past MAX_INPUT_PIXELS they are refused before any
pixel is decoded (a 190 KB PNG can describe 13000 x 13000 pixels). Below it, a caller that says
what size it needs (``fit``) gets an image decoded reduced, in 8 bits, rather than a float
tensor of every pixel that the run would shrink anyway.

This module is longer than 400 lines because each of those formats' quirks (16-bit colour PNG
and TIFF, which Pillow reads at 8 bits) is handled here, beside the one decoder they share.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import warnings
import zlib
from collections.abc import Callable
from typing import BinaryIO

import numpy as np
import PIL.Image
import torch
from PIL import Image, ImageOps

from impasto.errors import InputError
from impasto.image._icc import icc_to_srgb, is_srgb_profile
from impasto.image._open import READ_ERRORS, existing_file, unreadable

__all__ = ["MAX_INPUT_PIXELS", "decode_image", "load_image", "to_tensor"]

# The largest image impasto reads: a 150-megapixel camera's frame, or a panorama of that size,
# decodes in at most 0.7 GB of 8-bit samples; past it a file is refused from its header. Pillow
# itself warns past 89 MP and refuses past 179 MP (twice its MAX_IMAGE_PIXELS), so this limit,
# not Pillow's warning, is what a user meets.
MAX_INPUT_PIXELS = 175_000_000
# Modes Pillow's reduce() averages as they are (RGBA and LA premultiplied, so transparent pixels
# lend no colour to their neighbours); others are brought to one of them first.
_REDUCE_AS = {"I;16": "I", "I;16L": "I", "I;16B": "I", "I;16N": "I"}
_REDUCIBLE = {"L", "LA", "RGB", "RGBA", "CMYK", "I", "F", "RGBa", "La", "YCbCr"}

# Single-channel modes whose samples are wider than 8 bits. They are read straight into floats,
# never through Pillow's 8-bit "L", so that a 16-bit scan keeps its 65536 levels.
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_WIDE_GRAY_MODES = _SIXTEEN_BIT_MODES | {"I", "F"}

_EXIF_ORIENTATION = 0x0112

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


def load_image(
    path: str | os.PathLike[str], *, what: str = "image", fit: int | None = None
) -> torch.Tensor:
    """Read an image file (JPEG, PNG, WebP, TIFF, BMP: anything Pillow reads) at its native size,
    or reduced when ``fit`` says the caller needs much less.

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
        fit: the long side, in pixels, that the caller will resize the image to. An image at
            least four times that is decoded reduced by a whole factor, to between two and four
            times it (a JPEG by its decoder, at 1/2, 1/4 or 1/8 of its size; other formats by
            averaging blocks of 8-bit pixels), which a resize to ``fit`` cannot tell from the
            full image. 16-bit colour files are read whole. None: always the native size.

    Returns:
        float32, contiguous, sRGB, values in ``[0, 1]``.

    Shape:
        ``(1, 3, H, W)``, H and W as displayed (after the EXIF rotation), reduced by ``fit``.

    Raises:
        InputError: the path does not exist, is a folder, is larger than MAX_INPUT_PIXELS, or
            is not a readable image (including truncated files).
    """
    return _decode(existing_file(path, what), os.fspath(path), what, fit)


def decode_image(
    data: bytes, *, name: str, what: str = "image", fit: int | None = None
) -> torch.Tensor:
    """:func:`load_image` for the bytes of an image file, e.g. ones sent to another machine;
    ``name`` is how error messages call the file.

    Shape:
        ``(1, 3, H, W)``, as load_image.

    Raises:
        InputError: the bytes are not a readable image, or one larger than MAX_INPUT_PIXELS.
    """
    return _decode(io.BytesIO(data), name, what, fit)


def _decode(source: pathlib.Path | BinaryIO, name: str, what: str, fit: int | None) -> torch.Tensor:
    """A file, or a stream of its bytes, decoded as load_image describes."""
    try:
        with warnings.catch_warnings():
            # The size is checked against MAX_INPUT_PIXELS below, with a message of our own.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                _check_pixels(img, name, what)
                wide = _read_sixteen_bit_colour(source, img)
                if wide is not None:
                    return wide
                if fit is not None:
                    img = _reduced(img, fit)
                # Decode everything now, inside the try: Image.open only reads the header, and a
                # truncated file would otherwise fail later, far from here, as a bare traceback.
                img.load()
                return to_tensor(img)
    except Image.DecompressionBombError:  # past Pillow's own limit, which is above ours
        raise InputError(
            f"{what} '{name}' has more than {MAX_INPUT_PIXELS / 1e6:.0f} megapixels, "
            "the most impasto reads: scale it down first (a run uses it at --size anyway)"
        ) from None
    except READ_ERRORS as error:
        raise unreadable(name, what, error) from error


def _check_pixels(img: PIL.Image.Image, path: str | os.PathLike[str], what: str) -> None:
    width, height = img.size
    if width * height > MAX_INPUT_PIXELS:
        raise InputError(
            f"{what} '{os.fspath(path)}' is {width}x{height} px ({width * height / 1e6:.0f} "
            f"megapixels); impasto reads images up to {MAX_INPUT_PIXELS / 1e6:.0f} megapixels: "
            "scale it down first (a run uses it at --size anyway)"
        )


def _reduced(img: PIL.Image.Image, fit: int) -> PIL.Image.Image:
    """``img`` decoded at a whole fraction of its size, still at least twice ``fit`` on its long
    side (see load_image); ``img`` itself when it is not four times that."""
    factor = max(img.size) // (2 * fit)
    if factor < 2:
        return img
    if img.format in ("JPEG", "MPO"):
        # The decoder skips what it does not need (DCT scaling): no smaller than asked.
        img.draft(img.mode, (img.width // factor, img.height // factor))
        factor = max(img.size) // (2 * fit)
        if factor < 2:
            return img
    source = img
    if img.mode not in _REDUCIBLE:
        img = img if img.mode in _REDUCE_AS else _to_basic_mode(img)
        img = img.convert(_REDUCE_AS[img.mode]) if img.mode in _REDUCE_AS else img
    reduced = img.reduce(factor)
    # The turn still to apply, as the loaded file tells it: a TIFF keeps it in its own tags,
    # which reduce() does not carry (a recent Pillow turns TIFFs itself as it loads them).
    try:
        exif = source.getexif()
        turn = exif.get(_EXIF_ORIENTATION, 1)
        if turn in _ORIENT and reduced.getexif().get(_EXIF_ORIENTATION, 1) != turn:
            reduced.info["exif"] = exif.tobytes()
    except Exception:  # noqa: BLE001 -- a malformed EXIF block is ignored, as in to_tensor
        pass
    return reduced


def _unshared(img: PIL.Image.Image) -> PIL.Image.Image:
    """``img``, or where _reduced would call ``draft`` on it (a JPEG not yet loaded), a fresh
    handle on its file: ``draft`` changes the image it is called on, and a caller's image used
    again at a larger size must not come back reduced. Without a file, it is decoded whole."""
    if img.format not in ("JPEG", "MPO") or not getattr(img, "tile", None):
        return img
    name = getattr(img, "filename", None)
    if name:
        try:
            return Image.open(name)
        except OSError:
            pass
    img.load()
    return img


def to_tensor(img: PIL.Image.Image, *, fit: int | None = None) -> torch.Tensor:
    """Convert an open Pillow image to impasto's tensor, with the same conversions as load_image
    (``fit`` included: an image opened from a file and not yet loaded gives the same tensor as
    load_image of that file).

    Pillow errors (for example from decoding a truncated file) propagate unchanged; load_image
    is what turns them into :class:`InputError`.

    Returns:
        float32, contiguous, sRGB, values in ``[0, 1]``.

    Shape:
        ``(1, 3, H, W)``, H and W after the EXIF rotation.
    """
    if fit is not None:
        img = _reduced(_unshared(img), fit)
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

    if icc_profile and not is_srgb_profile(icc_profile):
        img = icc_to_srgb(img, icc_profile)
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


def _read_sixteen_bit_colour(
    file: pathlib.Path | BinaryIO, img: PIL.Image.Image
) -> torch.Tensor | None:
    """Read a 16-bit colour PNG or TIFF at full precision, or return None to leave it to Pillow.

    Pillow opens such files as 8-bit RGB(A), dropping the low byte of every sample, so they are
    decoded again here with pypng or tifffile. Only files whose colours need no conversion are
    taken (no profile, or an sRGB one, see is_srgb_profile); everything else, 8-bit files
    included, returns None. The EXIF orientation and alpha are handled as in to_tensor.

    Shape:
        returns ``(1, 3, H, W)``, float32, H and W as displayed.

    Raises:
        ValueError: the file is damaged (for load_image to report).
    """
    icc_profile = img.info.get("icc_profile")
    if icc_profile and not is_srgb_profile(icc_profile):
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


def _read_png_sixteen_bit(file: pathlib.Path | BinaryIO) -> tuple[np.ndarray, str | None] | None:
    """Samples of a 16-bit PNG as floats, (H, W, C), and "straight" when the last is alpha.

    Returns None for a PNG of 8 bits or fewer. tRNS transparency comes back as an alpha
    channel, and an sBIT chunk (fewer significant bits) is taken into account.
    """
    import png  # pypng, only needed for 16-bit files

    try:
        with _opened(file) as stream:
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


def _read_tiff_sixteen_bit(file: pathlib.Path | BinaryIO) -> tuple[np.ndarray, str | None] | None:
    """Samples of a 16-bit RGB TIFF's first page as floats, (H, W, C), and its kind of alpha.

    Returns None for any other TIFF (8-bit, float, palette, CMYK...), which Pillow reads.
    """
    import tifffile  # only needed for 16-bit files

    with _opened(file) as stream, tifffile.TiffFile(stream) as tiff:
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


def _opened(file: pathlib.Path | BinaryIO) -> contextlib.AbstractContextManager[BinaryIO]:
    """The file opened for reading, or the stream itself from its start (Pillow has read it)."""
    if isinstance(file, pathlib.Path):
        return open(file, "rb")
    file.seek(0)
    return contextlib.nullcontext(file)


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
