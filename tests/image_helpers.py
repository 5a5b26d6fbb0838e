"""Helpers shared by the image tests (test_image_*.py): tiny random images, and checks of what
load_image returns and of the errors it raises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from impasto.errors import InputError, UsageError


def random_rgb(height: int = 12, width: int = 17, seed: int = 0) -> np.ndarray:
    """A random 8-bit RGB array, (H, W, 3)."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def as_levels(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> (H, W, 3) 8-bit levels, rounded."""
    return (image[0].permute(1, 2, 0) * 255).round().to(torch.int64).numpy()


def check_tensor(image: torch.Tensor, height: int, width: int) -> None:
    assert image.shape == (1, 3, height, width)
    assert image.dtype == torch.float32
    assert image.is_contiguous()
    assert image.min() >= 0.0 and image.max() <= 1.0


def assert_input_error(error: pytest.ExceptionInfo[InputError], path: Path, text: str) -> None:
    message = str(error.value)
    assert str(path) in message
    assert text in message
    assert "\n" not in message
    assert error.value.exit_code == 2
    assert isinstance(error.value, UsageError)


def grey_png(path: Path, width: int, height: int, level: int = 128) -> Path:
    """A valid 8-bit grey PNG of any size, written row by row: a 13000 x 13000 image is a
    200 KB file, made without ever holding its pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    packer = zlib.compressobj(9)
    row = b"\0" + bytes([level]) * width  # filter type 0, then the samples
    rows = [packer.compress(row * 64) for _ in range(height // 64)]
    idat = b"".join(rows) + packer.compress(row * (height % 64)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path
