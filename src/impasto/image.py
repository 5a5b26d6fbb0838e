"""Reading, converting, resizing and writing images: the only module that touches files and Pillow.

Everything else in impasto works on float32 torch tensors of shape ``(1, 3, H, W)``, in sRGB,
with values in ``[0, 1]``. This module is the border: whatever a user hands in (a JPEG from a
phone with an EXIF rotation, a PNG with transparency, a 16-bit grayscale TIFF, a CMYK JPEG with
an embedded profile) comes out as that tensor, and the tensor goes back to a file without ever
leaving a half-written output behind.

User mistakes (a missing file, a text file named ``.jpg``, an output folder that does not exist,
an extension impasto cannot write) raise :class:`~impasto.errors.InputError` or
:class:`~impasto.errors.UsageError` with a one-line message; programming mistakes (a tensor of
the wrong shape) raise :class:`ValueError`.
"""

from __future__ import annotations

import functools
import io
import math
import os
import pathlib
import tempfile
from typing import Any

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

# Pillow format name and encoder options for each extension. JPEG keeps full-resolution chroma
# (subsampling=0, i.e. 4:4:4): the default 4:2:0 visibly smears the fine coloured brush strokes
# that style transfer is all about.
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


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def load_image(path: str | os.PathLike[str], *, what: str = "image") -> torch.Tensor:
    """Read an image file (JPEG, PNG, WebP, TIFF, BMP: anything Pillow reads) at its native size.

    The EXIF orientation is applied, an embedded ICC profile is converted to sRGB, transparency
    is composited over white, grayscale is repeated to three channels, and 16-bit grayscale
    keeps its precision. Multi-frame files (animated WebP, multi-page TIFF) give their first
    frame.

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
    file = pathlib.Path(path)
    shown = os.fspath(path)
    if file.is_dir():
        raise InputError(f"{what} '{shown}' is a folder, not an image")
    if not file.exists():
        raise InputError(f"{what} '{shown}' does not exist")
    try:
        with Image.open(file) as img:
            # Decode everything now, inside the try: Image.open only reads the header, and a
            # truncated file would otherwise fail later, far from here, as a bare traceback.
            img.load()
            return to_tensor(img)
    except _READ_ERRORS as error:
        raise InputError(
            f"{what} '{shown}' could not be read as an image: {_short_reason(error)}"
        ) from error


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

    if icc_profile:
        img = _icc_to_srgb(img, icc_profile)
    if img.mode != "RGB":
        # L repeats its channel; CMYK (no usable profile) gets Pillow's naive conversion.
        img = img.convert("RGB")

    rgb = _uint8_to_unit_float(np.asarray(img))  # (H, W, 3)
    rgb = rgb.permute(2, 0, 1).unsqueeze(0)
    if alpha is not None:
        a = alpha.unsqueeze(0).unsqueeze(0)  # (1, 1, H, W)
        # Over white: c * a + 1 * (1 - a). An opaque pixel (a == 1) keeps its exact value.
        rgb = rgb * a + (1.0 - a)
    return rgb.contiguous()


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
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"to_pil takes one image, got a batch of shape {tuple(image.shape)}")
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"to_pil expects (1, 3, H, W) or (3, H, W), got {tuple(image.shape)}")
    levels = (
        torch.nan_to_num(image.detach().to("cpu", torch.float32), nan=0.0)
        .clamp(0.0, 1.0)
        .mul(255.0)
        .round()  # to the nearest level; 0.5 * 255 = 127.5 goes to 128 (half to even)
        .to(torch.uint8)
    )
    pixels = levels.permute(1, 2, 0).contiguous().numpy()  # (H, W, 3)
    return Image.fromarray(pixels)  # uint8 (H, W, 3) is RGB


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


def check_output_path(path: str | os.PathLike[str]) -> pathlib.Path:
    """Check that an image can be written at ``path``, before any (long) work starts.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        UsageError: the extension is not one of SUPPORTED_SAVE_EXTENSIONS, the path is an
            existing folder, or its folder does not exist, is not a folder or is not writable.
    """
    out = pathlib.Path(path)
    shown = os.fspath(path)
    supported = ", ".join(SUPPORTED_SAVE_EXTENSIONS)
    extension = out.suffix.lower()
    if extension not in SUPPORTED_SAVE_EXTENSIONS:
        found = f"extension '{out.suffix}'" if out.suffix else "no extension"
        raise UsageError(f"output '{shown}' has {found}; impasto can write {supported}")
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


def save_image(
    image: torch.Tensor, path: str | os.PathLike[str], *, quality: int = 95
) -> pathlib.Path:
    """Write an image tensor to ``path``, atomically, in the format its extension names.

    The image is encoded into a temporary file in the same folder, flushed to disk, then
    renamed onto the target in one step: a crash, a full disk or an interrupt never leaves a
    truncated output, and an existing file is either fully replaced or left untouched.

    Args:
        image: values in ``[0, 1]`` (clamped), see :func:`to_pil`.
        path: the output file; its extension picks PNG, JPEG, WebP, TIFF or BMP.
        quality: JPEG and WebP quality, 1 to 100 (JPEG is written 4:4:4, not subsampled).

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Shape:
        ``image``: ``(1, 3, H, W)`` or ``(3, H, W)``.

    Raises:
        UsageError: the path fails :func:`check_output_path`, or ``quality`` is out of range.
        ImpastoError: the file system refused the write (disk full, permissions...).
    """
    out = check_output_path(path)
    if not 1 <= quality <= 100:
        raise UsageError(f"quality must be between 1 and 100, got {quality}")
    pil_image = to_pil(image)
    image_format = _SAVE_FORMATS[out.suffix.lower()]
    options: dict[str, Any] = {}
    if image_format == "JPEG":
        options = {"quality": quality, "subsampling": 0}
    elif image_format == "WEBP":
        options = {"quality": quality}

    folder = out.parent
    try:
        descriptor, temp_name = tempfile.mkstemp(
            prefix="." + out.name, suffix=".part", dir=folder
        )
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
            pil_image.save(stream, format=image_format, **options)
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
