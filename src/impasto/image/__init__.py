"""Image files <-> impasto's tensors: the only package that touches image files and Pillow.

Everything else in impasto works on float32 torch tensors of shape ``(1, 3, H, W)``, in sRGB,
with values in ``[0, 1]``. One module per job:

- ``read``: file (or its bytes) -> tensor (EXIF orientation, ICC -> sRGB, alpha over white, 16-bit files).
- ``resize``: tensor -> tensor of another size.
- ``write``: tensor -> file, atomically (8 or 16 bits, tagged sRGB, with a JSON record).
- ``metadata``: that JSON record, where each format keeps it and reading it back (no torch).

User mistakes (a missing file, a text file named ``.jpg``, an output folder that does not exist,
an extension impasto cannot write) raise :class:`~impasto.errors.InputError` or
:class:`~impasto.errors.UsageError` with a one-line message; programming mistakes (a tensor of
the wrong shape) raise :class:`ValueError`.

The names below are imported on first use (PEP 562), so that ``impasto.image.metadata`` can be
imported without torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = [
    "SUPPORTED_SAVE_EXTENSIONS",
    "check_output_path",
    "decode_image",
    "load_image",
    "long_side_size",
    "read_metadata",
    "resize_long_side",
    "resize_to",
    "save_image",
    "snapshot_path",
    "to_pil",
    "to_tensor",
]

# Public name -> the submodule that defines it.
_LAZY = {
    "decode_image": "read",
    "load_image": "read",
    "to_tensor": "read",
    "long_side_size": "resize",
    "resize_long_side": "resize",
    "resize_to": "resize",
    "SUPPORTED_SAVE_EXTENSIONS": "write",
    "check_output_path": "write",
    "save_image": "write",
    "snapshot_path": "write",
    "to_pil": "write",
    "read_metadata": "metadata",
}

if TYPE_CHECKING:
    from impasto.image.metadata import read_metadata
    from impasto.image.read import decode_image, load_image, to_tensor
    from impasto.image.resize import long_side_size, resize_long_side, resize_to
    from impasto.image.write import (
        SUPPORTED_SAVE_EXTENSIONS,
        check_output_path,
        save_image,
        snapshot_path,
        to_pil,
    )


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
