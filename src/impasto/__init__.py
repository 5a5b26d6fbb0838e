"""impasto: neural style transfer (Gatys et al. 2015) as a library and a command-line program.

    from impasto import Stylizer, StyleConfig
    engine = Stylizer()                                  # the network, loaded once
    image = engine.stylize("photo.jpg", "painting.jpg", StyleConfig(size=512))

    import impasto
    image = impasto.stylize("photo.jpg", "painting.jpg")  # the same, on an engine kept for you
    for result in impasto.batch("photos/", "painting.jpg", output="out/"):  # many, resumable
        print(result.item.name, result.ok)

Importing the package loads nothing: torch, the weights and every submodule are imported when
first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from impasto._version import __version__
from impasto.errors import ImpastoError, InputError, UsageError, WeightsError

__all__ = [
    "ImpastoError",
    "InputError",
    "Progress",
    "RunRecord",
    "StyleConfig",
    "Stylizer",
    "UsageError",
    "WeightsError",
    "__version__",
    "batch",
    "load_image",
    "read_metadata",
    "read_record",
    "resume",
    "save_image",
    "stylize",
    "to_pil",
]

_LAZY = {
    "batch": "impasto.batching.run",
    "Progress": "impasto.optimize",
    "RunRecord": "impasto.record",
    "StyleConfig": "impasto.config",
    "Stylizer": "impasto.engine",
    "load_image": "impasto.image",
    "read_metadata": "impasto.image",
    "read_record": "impasto.record",
    "resume": "impasto.engine",
    "save_image": "impasto.image",
    "stylize": "impasto.engine",
    "to_pil": "impasto.image",
}

if TYPE_CHECKING:
    from impasto.batching.run import batch
    from impasto.config import StyleConfig
    from impasto.engine import Stylizer, resume, stylize
    from impasto.image import load_image, read_metadata, save_image, to_pil
    from impasto.optimize import Progress
    from impasto.record import RunRecord, read_record


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'impasto' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
