"""Tests for impasto.image.write: round trips, refusing bad outputs early, writing atomically,
16-bit output and the embedded sRGB profile. All test images are tiny."""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL.Image
import png
import pytest
import tifffile
import torch
from PIL import Image, ImageCms, JpegImagePlugin

from impasto.errors import ImpastoError, UsageError
from impasto.image import (
    SUPPORTED_SAVE_EXTENSIONS,
    check_output_path,
    load_image,
    save_image,
    snapshot_path,
    to_pil,
)
from tests.image_helpers import as_levels, check_tensor, random_rgb

# ---------------------------------------------------------------------------------------------
# round trips through save_image / load_image
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("extension", [".png", ".tif", ".tiff", ".bmp", ".PNG"])
def test_lossless_round_trip_is_exact(tmp_path: Path, extension: str) -> None:
    pixels = random_rgb()
    image = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).float() / 255
    out = save_image(image, tmp_path / f"out{extension}")
    assert out == tmp_path / f"out{extension}"
    loaded = load_image(out)
    check_tensor(loaded, 12, 17)
    np.testing.assert_array_equal(as_levels(loaded), pixels)


@pytest.mark.parametrize("extension", [".jpg", ".jpeg", ".webp"])
def test_lossy_round_trip_is_close(tmp_path: Path, extension: str) -> None:
    # A smooth image, as lossy codecs are meant for, so the error measures the codec setup.
    y, x = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 48), indexing="ij")
    image = torch.stack([x, y, (x + y) / 2]).unsqueeze(0)
    loaded = load_image(save_image(image, tmp_path / f"out{extension}"))
    check_tensor(loaded, 32, 48)
    assert (loaded - image).abs().mean() < 0.01


def test_jpeg_is_written_444_at_the_requested_quality(tmp_path: Path) -> None:
    image = torch.from_numpy(random_rgb(64, 64)).permute(2, 0, 1).unsqueeze(0).float() / 255
    high = save_image(image, tmp_path / "high.jpg")
    low = save_image(image, tmp_path / "low.jpg", quality=10)
    with Image.open(high) as img:
        assert JpegImagePlugin.get_sampling(img) == 0  # 4:4:4, no chroma subsampling
    assert low.stat().st_size < high.stat().st_size


@pytest.mark.parametrize("quality", [0, 101])
def test_save_rejects_quality_out_of_range(tmp_path: Path, quality: int) -> None:
    with pytest.raises(UsageError, match="quality"):
        save_image(torch.zeros(1, 3, 4, 4), tmp_path / "out.jpg", quality=quality)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# to_pil
# ---------------------------------------------------------------------------------------------


def test_to_pil_rounds_and_clamps() -> None:
    values = torch.tensor([-0.1, 0.0, 0.5, 1.0, 1.1, 0.2 / 255, 0.6 / 255, float("nan")])
    image = values.expand(3, 1, -1)  # (3, H=1, W=8)
    pil = to_pil(image)
    assert pil.mode == "RGB" and pil.size == (8, 1)
    np.testing.assert_array_equal(np.asarray(pil)[0, :, 1], [0, 0, 128, 255, 255, 0, 1, 0])


def test_to_pil_accepts_batch_of_one_with_grad() -> None:
    image = torch.rand(1, 3, 4, 6, requires_grad=True)
    pil = to_pil(image)
    assert pil.size == (6, 4)
    np.testing.assert_array_equal(np.asarray(pil), np.asarray(to_pil(image.detach()[0])))


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (1, 4, 4, 4), (4, 4), (1, 1, 3, 4, 4)])
def test_to_pil_rejects_other_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        to_pil(torch.rand(shape))


# ---------------------------------------------------------------------------------------------
# check_output_path / save_image: refusing early, writing atomically
# ---------------------------------------------------------------------------------------------


def test_supported_extensions() -> None:
    assert SUPPORTED_SAVE_EXTENSIONS == (
        ".png",
        ".jpg",
        ".jpeg",
        ".webp",
        ".tif",
        ".tiff",
        ".bmp",
    )


@pytest.mark.parametrize("name", ["out.gif", "out.xyz", "out.Gif"])
def test_unsupported_extension(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError) as error:
        save_image(torch.rand(1, 3, 4, 4), tmp_path / name)
    message = str(error.value)
    assert f"'{Path(name).suffix}'" in message
    assert all(extension in message for extension in SUPPORTED_SAVE_EXTENSIONS)
    assert error.value.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_missing_extension(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no extension"):
        check_output_path(tmp_path / "output")


def test_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "out.png"
    with pytest.raises(UsageError, match="does not exist") as error:
        save_image(torch.rand(1, 3, 4, 4), path)
    assert str(path.parent) in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        check_output_path(tmp_path / "file" / "out.png")


def test_output_is_an_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "out.png").mkdir()
    with pytest.raises(UsageError, match="folder"):
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "out.png")
    assert list((tmp_path / "out.png").iterdir()) == []


def test_read_only_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            # Running as root: permission bits do not stop root, so make os.access report
            # what it would for anyone else. The check itself is what is under test.
            assert os.geteuid() == 0
            real_access = os.access

            def access(path: os.PathLike[str] | str, mode: int, **kwargs: object) -> bool:
                if Path(path) == folder and mode & os.W_OK:
                    return False
                return real_access(path, mode, **kwargs)  # type: ignore[arg-type]

            monkeypatch.setattr(os, "access", access)
        with pytest.raises(UsageError, match="not writable"):
            save_image(torch.rand(1, 3, 4, 4), folder / "out.png")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_check_output_path_accepts_and_returns_path(tmp_path: Path) -> None:
    assert check_output_path(str(tmp_path / "a.JPG")) == tmp_path / "a.JPG"
    assert list(tmp_path.iterdir()) == []  # checking writes nothing


def test_save_writes_through_a_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    real_save = PIL.Image.Image.save
    seen: list[tuple[bytes, list[str]]] = []

    def spying_save(self: PIL.Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        real_save(self, fp, *args, **kwargs)  # type: ignore[arg-type]
        # While encoding, the target still holds the old file; the new one is a hidden '.part'.
        seen.append((target.read_bytes(), sorted(p.name for p in tmp_path.iterdir())))

    monkeypatch.setattr(PIL.Image.Image, "save", spying_save)
    save_image(torch.rand(1, 3, 4, 4), target)
    [(old_content, names)] = seen
    assert old_content == b"old"
    [part] = [name for name in names if name != "out.png"]
    assert part.startswith(".out.png") and part.endswith(".part")
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    with Image.open(target) as img:
        assert img.format == "PNG" and img.size == (4, 4)


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (OSError(28, "No space left on device"), ImpastoError),
        (RuntimeError("encoder bug"), RuntimeError),
    ],
)
def test_failed_save_leaves_the_target_untouched(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    expected: type[Exception],
) -> None:
    target = tmp_path / "out.jpg"
    original = io.BytesIO()
    Image.new("RGB", (3, 3), (1, 2, 3)).save(original, format="JPEG")
    target.write_bytes(original.getvalue())

    def failing_save(self: PIL.Image.Image, fp: io.BufferedWriter, *a: object, **k: object) -> None:
        fp.write(b"\xff\xd8 half an image")
        fp.flush()
        raise failure

    monkeypatch.setattr(PIL.Image.Image, "save", failing_save)
    with pytest.raises(expected) as error:
        save_image(torch.rand(1, 3, 4, 4), target)
    if expected is ImpastoError:
        assert not isinstance(error.value, UsageError)  # a runtime failure: exit code 1
        assert str(target) in str(error.value) and "No space left" in str(error.value)
    assert target.read_bytes() == original.getvalue()
    assert [p.name for p in tmp_path.iterdir()] == ["out.jpg"]  # no '.part' left behind


def test_saved_file_gets_normal_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        path = save_image(torch.rand(1, 3, 2, 2), tmp_path / "out.png")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_save_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bmp"
    save_image(torch.zeros(1, 3, 2, 2), target)
    save_image(torch.ones(3, 5, 5), target)
    loaded = load_image(target)
    check_tensor(loaded, 5, 5)
    assert loaded.min() == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["out.bmp"]


# ---------------------------------------------------------------------------------------------
# snapshot_path
# ---------------------------------------------------------------------------------------------


def test_snapshot_path(tmp_path: Path) -> None:
    assert snapshot_path("out.png", 50) == Path("out_0050.png")
    assert snapshot_path("out.png", 0) == Path("out_0000.png")
    assert snapshot_path("out.png", 12345) == Path("out_12345.png")
    assert snapshot_path(tmp_path / "my.result.jpg", 7) == tmp_path / "my.result_0007.jpg"
    with pytest.raises(ValueError):
        snapshot_path("out.png", -1)


# ---------------------------------------------------------------------------------------------
# output files: 16-bit, sRGB profile
# ---------------------------------------------------------------------------------------------


def gradient(height: int = 6, width: int = 700) -> torch.Tensor:
    """A smooth (1, 3, H, W) image with many more than 256 distinct values per channel."""
    y, x = torch.meshgrid(
        torch.linspace(0, 1, height, dtype=torch.float64),
        torch.linspace(0, 1, width, dtype=torch.float64),
        indexing="ij",
    )
    return torch.stack([x, 1 - x, (x + y) / 2]).unsqueeze(0).float()


def stored_samples(path: Path) -> np.ndarray:
    """The samples exactly as stored in a PNG or TIFF, (H, W, C), without Pillow."""
    if path.suffix == ".png":
        width, height, rows, info = png.Reader(filename=str(path)).asDirect()
        samples = np.vstack([np.asarray(row) for row in rows])
        dtype = np.uint16 if info["bitdepth"] == 16 else np.uint8
        return samples.reshape(height, width, info["planes"]).astype(dtype)
    return tifffile.imread(path)


def profile_description(icc_profile: bytes) -> str:
    return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc_profile)))


@pytest.mark.parametrize("extension", [".png", ".tif", ".tiff"])
def test_16_bit_round_trip_keeps_full_precision(tmp_path: Path, extension: str) -> None:
    image = gradient()
    path = save_image(image, tmp_path / f"out{extension}", bit_depth=16)
    samples = stored_samples(path)
    assert samples.dtype == np.uint16 and samples.shape == (6, 700, 3)
    for channel in range(3):  # far more levels than an 8-bit file can hold
        assert len(np.unique(samples[..., channel])) > 256
    expected = (image[0].permute(1, 2, 0).double() * 65535).round().numpy()
    np.testing.assert_array_equal(samples, expected)  # round(x * 65535)

    loaded = load_image(path)
    check_tensor(loaded, 6, 700)
    assert (loaded - image).abs().max() <= 1 / 65535
    # Saved again, the loaded image gives the same file contents: no drift through 8 bits.
    again = save_image(loaded, tmp_path / f"again{extension}", bit_depth=16)
    np.testing.assert_array_equal(stored_samples(again), samples)


@pytest.mark.parametrize("extension", [".png", ".tif"])
def test_8_bit_file_cannot_meet_the_16_bit_bound(tmp_path: Path, extension: str) -> None:
    image = gradient()
    path = save_image(image, tmp_path / f"out{extension}")  # bit_depth=8
    assert stored_samples(path).dtype == np.uint8
    assert (load_image(path) - image).abs().max() > 1 / 65535


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_16_bit_values_are_rounded_and_clamped(tmp_path: Path, bit_depth: int) -> None:
    values = torch.tensor([-0.5, 0.0, 0.3 / 65535, 0.7 / 65535, 0.5, 1.0, 7.0, float("nan")])
    path = save_image(values.expand(1, 3, 1, -1), tmp_path / "out.png", bit_depth=bit_depth)
    top = 2**bit_depth - 1
    expected = [0, 0, 0, 1 if bit_depth == 16 else 0, round(0.5 * top), top, top, 0]
    np.testing.assert_array_equal(stored_samples(path)[0, :, 1], expected)


@pytest.mark.parametrize(
    ("extension", "bit_depth"),
    [(".png", 8), (".png", 16), (".tif", 8), (".tif", 16), (".jpg", 8), (".webp", 8)],
)
def test_srgb_profile_is_embedded(tmp_path: Path, extension: str, bit_depth: int) -> None:
    path = save_image(torch.rand(1, 3, 4, 5), tmp_path / f"out{extension}", bit_depth=bit_depth)
    with Image.open(path) as img:
        icc_profile = img.info.get("icc_profile")
    assert icc_profile
    assert "sRGB" in profile_description(icc_profile)
    if extension == ".tif":  # the InterColorProfile tag, as other TIFF readers see it
        with tifffile.TiffFile(path) as tiff:
            assert tiff.pages[0].tags["InterColorProfile"].value == icc_profile


def test_16_bit_png_chunks_are_in_order(tmp_path: Path) -> None:
    path = save_image(torch.rand(1, 3, 4, 5), tmp_path / "out.png", bit_depth=16, metadata={})
    names = [name for name, _ in png.Reader(filename=str(path)).chunks()]
    assert names[0] == b"IHDR" and names[-1] == b"IEND"
    assert names.index(b"iCCP") < names.index(b"IDAT")  # where the PNG specification wants it
    assert {b"tEXt", b"iTXt"} <= set(names)


@pytest.mark.parametrize("extension", [".jpg", ".jpeg", ".webp", ".bmp", ".JPG"])
def test_16_bit_needs_png_or_tiff(tmp_path: Path, extension: str) -> None:
    target = tmp_path / f"out{extension}"
    with pytest.raises(UsageError) as error:
        save_image(torch.rand(1, 3, 4, 4), target, bit_depth=16)
    message = str(error.value)
    assert "16-bit" in message and "PNG" in message and "TIFF" in message
    assert ".png" in message and ".tif" in message and str(target) in message
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file
    with pytest.raises(UsageError, match="16-bit"):  # refused early, before any work
        check_output_path(target, bit_depth=16)


@pytest.mark.parametrize("bit_depth", [0, 1, 12, 32, True])
def test_bit_depth_must_be_8_or_16(tmp_path: Path, bit_depth: int) -> None:
    with pytest.raises(UsageError, match="bit depth must be 8 or 16"):
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "out.png", bit_depth=bit_depth)
    assert list(tmp_path.iterdir()) == []


def spy_or_fail_16_bit_writer(
    monkeypatch: pytest.MonkeyPatch, extension: str, call: object
) -> None:
    """Replace the library function that writes a 16-bit PNG or TIFF with ``call``."""
    module, name = (png, "write_chunks") if extension == ".png" else (tifffile, "imwrite")
    monkeypatch.setattr(module, name, functools.partial(call, getattr(module, name)))


@pytest.mark.parametrize("extension", [".png", ".tif"])
def test_16_bit_save_writes_through_a_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extension: str
) -> None:
    target = tmp_path / f"out{extension}"
    target.write_bytes(b"old")
    seen: list[tuple[bytes, list[str]]] = []

    def spying(real: Callable[..., object], *args: object, **kwargs: object) -> object:
        result = real(*args, **kwargs)
        seen.append((target.read_bytes(), sorted(p.name for p in tmp_path.iterdir())))
        return result

    spy_or_fail_16_bit_writer(monkeypatch, extension, spying)
    save_image(torch.rand(1, 3, 4, 4), target, bit_depth=16)
    [(old_content, names)] = seen
    assert old_content == b"old"  # while encoding, the target still holds the old file
    [part] = [name for name in names if name != target.name]
    assert part.startswith(f".{target.name}") and part.endswith(".part")
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
    assert stored_samples(target).dtype == np.uint16


@pytest.mark.parametrize("extension", [".png", ".tif"])
def test_failed_16_bit_save_leaves_the_target_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extension: str
) -> None:
    target = save_image(torch.rand(1, 3, 4, 4), tmp_path / f"out{extension}", bit_depth=16)
    before = target.read_bytes()

    def failing(real: object, stream: io.BufferedWriter, *args: object, **kwargs: object) -> None:
        stream.write(b"half a file")
        raise OSError(28, "No space left on device")

    spy_or_fail_16_bit_writer(monkeypatch, extension, failing)
    with pytest.raises(ImpastoError, match="No space left") as error:
        save_image(torch.rand(1, 3, 4, 4), target, bit_depth=16)
    assert not isinstance(error.value, UsageError)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no '.part' left behind
