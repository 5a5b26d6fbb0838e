"""The sRGB colour profile: recognising it in a file, converting other profiles to it, and the
bytes of the one save_image embeds. Pillow only (Little CMS through ImageCms)."""

from __future__ import annotations

import functools
import io
from typing import Any

import PIL.Image

__all__ = ["icc_to_srgb", "is_srgb_profile", "srgb_icc_bytes"]

# Descriptions of profiles that are sRGB itself: Little CMS's built-in one (what save_image
# embeds) and the common IEC 61966-2.1 one. Pixels tagged with them are used as they are, which
# keeps 8-bit values exact and 16-bit ones at full precision (a pass through Little CMS would
# round both). Matching on a description containing "sRGB" would be wrong: linear-light
# profiles are often called "sRGB linear" or the like.
_SRGB_PROFILE_NAMES = frozenset({"sRGB built-in", "sRGB IEC61966-2.1"})


@functools.lru_cache(maxsize=1)
def _srgb_profile() -> Any:
    """The built-in sRGB profile, made once on first use (never at import time)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def srgb_icc_bytes() -> bytes | None:
    """The ICC profile save_image embeds: Little CMS's built-in sRGB, made once, on first use.

    None when Pillow was built without Little CMS; files are then written untagged.
    """
    try:
        return _srgb_profile().tobytes()
    except ImportError:
        return None


@functools.lru_cache(maxsize=16)
def is_srgb_profile(icc_profile: bytes) -> bool:
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


def icc_to_srgb(img: PIL.Image.Image, icc_profile: bytes) -> PIL.Image.Image:
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
