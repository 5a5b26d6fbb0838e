"""impasto: neural style transfer (Gatys et al. 2015) as a library and a command-line program.

    from impasto import stylize, StyleConfig
    image = stylize("photo.jpg", "painting.jpg", StyleConfig(size=512))

Importing the package loads torch but nothing else: no weights, no files, no network.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from impasto.errors import ImpastoError, InputError, UsageError, WeightsError

from impasto._version import __version__

# Imported eagerly: the function ``stylize`` must win over the submodule of the same name, which
# a lazy attribute cannot guarantee once ``impasto.stylize`` has been imported elsewhere.
from impasto.config import StyleConfig  # noqa: E402
from impasto.stylize import resume, stylize  # noqa: E402

__all__ = [
    "ImpastoError",
    "InputError",
    "Progress",
    "StyleConfig",
    "UsageError",
    "WeightsError",
    "__version__",
    "load_image",
    "read_metadata",
    "resume",
    "save_image",
    "stylize",
]

_LAZY = {
    "Progress": "impasto.optimize",
    "load_image": "impasto.image",
    "save_image": "impasto.image",
    "read_metadata": "impasto.image",
}

if TYPE_CHECKING:
    from impasto.image import load_image, read_metadata, save_image
    from impasto.optimize import Progress


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'impasto' has no attribute {name!r}")
