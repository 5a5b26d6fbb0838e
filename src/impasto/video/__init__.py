"""Video with temporal consistency (Ruder, Dosovitskiy & Brox, "Artistic style transfer for
videos", GCPR 2016), on the one engine: the painting's statistics are computed once.

One module per stage:

    options   VideoOptions: the video's own knobs, bounded, no torch
    clip      frames in: a video file (PyAV) or an image sequence, --frames A:B, --every N
    flow      optical flow between input frames (OpenCV's DIS), warping, and the forward-backward
              consistency check that marks where the flow can be trusted
    temporal  the temporal loss, an ``extra`` term of the engine's objective
    runner    frame after frame: the first coarse to fine, each later one started from the
              last stylized frame warped by the flow; frames written as they finish (resumable)
    encode    frames out: the video (H.264 where PyAV has it), the audio copied through
    metrics   the flicker figure of ``impasto score --video``

PyAV and OpenCV are the ``video`` extra: imported only inside these modules, when used.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from impasto.errors import UsageError

EXTRA = 'pip install "impasto[video]"'


def require(module: str, what: str = "impasto video") -> ModuleType:
    """Import ``av`` or ``cv2`` for the video extra, or say how to install it (UsageError)."""
    package = {"av": "PyAV", "cv2": "OpenCV (opencv-python-headless)"}.get(module, module)
    try:
        return import_module(module)
    except ImportError:
        raise UsageError(f"{what} needs {package}, which is not installed: {EXTRA}") from None
