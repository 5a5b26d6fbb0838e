"""Tests for impasto.image: reading every kind of file into (1, 3, H, W) sRGB, resizing, and
writing atomically. Every test image is made here with Pillow/numpy; all are tiny."""

from __future__ import annotations

import functools
import io
import json
import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL.Image
import png
import pytest
import tifffile
import torch
from PIL import Image, ImageCms, JpegImagePlugin, PngImagePlugin

import impasto
from impasto.errors import ImpastoError, InputError, UsageError
from impasto.image import (
    SUPPORTED_SAVE_EXTENSIONS,
    check_output_path,
    load_image,
    read_metadata,
    resize_long_side,
    resize_to,
    save_image,
    snapshot_path,
    to_pil,
    to_tensor,
)

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


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


def linear_rgb_icc_profile() -> bytes:
    """A minimal ICC v2 display profile: sRGB primaries but a linear (gamma 1.0) curve.

    Pixels tagged with it are linear light, so a correct conversion to sRGB must brighten
    mid-tones a lot (linear 0.5 is sRGB ~0.735): a loader that ignores the profile fails.
    """

    def s15f16(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15f16(x) + s15f16(y) + s15f16(z)

    curve = b"curv" + b"\0" * 4 + struct.pack(">I", 1) + struct.pack(">H", 0x0100) + b"\0\0"
    text = b"desc" + b"\0" * 4 + struct.pack(">I", 7) + b"linear\0"
    text += struct.pack(">II", 0, 0) + struct.pack(">HB", 0, 0) + b"\0" * 67
    text += b"\0" * (-len(text) % 4)
    tags = [
        (b"desc", text),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (
        struct.pack(">I", size)
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 24
        + s15f16(0.9642)
        + s15f16(1.0)
        + s15f16(0.8249)
    )
    header += b"\0" * (128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + data


def srgb_encode(linear: float) -> float:
    return 12.92 * linear if linear <= 0.0031308 else 1.055 * linear ** (1 / 2.4) - 0.055


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
# reading: orientation, colour management, modes
# ---------------------------------------------------------------------------------------------


def exif_with_orientation(orientation: int) -> PIL.Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored 4 wide x 2 high, red top-left pixel. Orientation 6 = "rotate 90 degrees clockwise
    # to display": shown 2 wide x 4 high, the red pixel in the top-right corner.
    pixels = np.zeros((2, 4, 3), dtype=np.uint8)
    pixels[0, 0] = (255, 0, 0)
    path = tmp_path / "rotated.png"
    Image.fromarray(pixels).save(path, exif=exif_with_orientation(6))
    loaded = load_image(path)
    check_tensor(loaded, 4, 2)
    levels = as_levels(loaded)
    np.testing.assert_array_equal(levels[0, 1], (255, 0, 0))
    assert levels.sum() == 255  # nothing else red anywhere


def test_exif_orientation_of_jpeg_swaps_the_size(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    Image.new("RGB", (40, 16), (200, 10, 10)).save(path, exif=exif_with_orientation(8))
    check_tensor(load_image(path), 40, 16)


def test_unrotated_image_keeps_its_size(tmp_path: Path) -> None:
    path = tmp_path / "plain.jpg"
    Image.new("RGB", (40, 16)).save(path, exif=exif_with_orientation(1))
    check_tensor(load_image(path), 16, 40)


def test_icc_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    path = tmp_path / "linear.png"
    pixels = np.array([[[0, 0, 0], [128, 128, 128], [255, 255, 255]]], dtype=np.uint8)
    Image.fromarray(pixels).save(path, icc_profile=linear_rgb_icc_profile())
    levels = as_levels(load_image(path))
    expected_mid = 255 * srgb_encode(128 / 255)  # ~188
    assert abs(levels[0, 1] - expected_mid).max() <= 2
    assert levels[0, 0].max() <= 1 and levels[0, 2].min() >= 254


def test_srgb_icc_profile_leaves_pixels_unchanged(tmp_path: Path) -> None:
    pixels = random_rgb(16, 16)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "srgb.png"
    Image.fromarray(pixels).save(path, icc_profile=srgb)
    difference = np.abs(as_levels(load_image(path)) - pixels)
    assert difference.max() <= 2 and difference.mean() < 0.5


def test_corrupt_icc_profile_is_ignored(tmp_path: Path) -> None:
    pixels = random_rgb()
    path = tmp_path / "corrupt_icc.png"
    Image.fromarray(pixels).save(path, icc_profile=b"this is not an ICC profile" * 8)
    with Image.open(path) as img:
        assert img.info.get("icc_profile")  # the broken profile really is embedded
    np.testing.assert_array_equal(as_levels(load_image(path)), pixels)


def test_alpha_is_composited_over_white(tmp_path: Path) -> None:
    pixels = np.array(
        [[[10, 20, 30, 255], [10, 20, 30, 0], [255, 0, 0, 128], [0, 0, 0, 0]]], dtype=np.uint8
    )
    path = tmp_path / "alpha.png"
    Image.fromarray(pixels).save(path)  # RGBA
    loaded = load_image(path)
    check_tensor(loaded, 1, 4)
    rgb = loaded[0, :, 0, :].T  # (4 pixels, 3)
    torch.testing.assert_close(rgb[0], torch.tensor([10, 20, 30]) / 255.0, rtol=0, atol=0)
    torch.testing.assert_close(rgb[1], torch.ones(3), rtol=0, atol=0)
    torch.testing.assert_close(rgb[3], torch.ones(3), rtol=0, atol=0)
    a = 128 / 255
    torch.testing.assert_close(rgb[2], torch.tensor([1.0, 1 - a, 1 - a]), rtol=0, atol=1e-6)


def test_gray_alpha_is_composited_over_white() -> None:
    img = Image.fromarray(np.array([[[0, 255], [0, 0], [100, 255]]], dtype=np.uint8), "LA")
    rgb = to_tensor(img)[0, :, 0, :].T
    torch.testing.assert_close(rgb[0], torch.zeros(3), rtol=0, atol=0)
    torch.testing.assert_close(rgb[1], torch.ones(3), rtol=0, atol=0)
    torch.testing.assert_close(rgb[2], torch.full((3,), 100 / 255), rtol=0, atol=0)


def test_palette_with_transparency(tmp_path: Path) -> None:
    img = Image.new("P", (3, 1))
    img.putpalette([0, 0, 255, 255, 0, 0] + [0, 0, 0] * 254)
    img.putdata([0, 1, 0])
    path = tmp_path / "palette.png"
    img.save(path, transparency=0)  # index 0 (blue) is transparent
    levels = as_levels(load_image(path))
    np.testing.assert_array_equal(levels[0], [[255, 255, 255], [255, 0, 0], [255, 255, 255]])


@pytest.mark.parametrize("extension", [".png", ".gif", ".bmp"])
def test_palette_image_is_read(tmp_path: Path, extension: str) -> None:
    img = Image.new("P", (2, 2))
    img.putpalette([0, 128, 255, 250, 100, 0] + [0, 0, 0] * 254)
    img.putdata([0, 1, 1, 0])
    path = tmp_path / f"palette{extension}"
    img.save(path)
    levels = as_levels(load_image(path))
    np.testing.assert_array_equal(levels[0, 0], (0, 128, 255))
    np.testing.assert_array_equal(levels[0, 1], (250, 100, 0))


def test_grayscale_gives_three_equal_channels(tmp_path: Path) -> None:
    gray = np.random.default_rng(1).integers(0, 256, (5, 7), dtype=np.uint8)
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path)  # mode L
    loaded = load_image(path)
    check_tensor(loaded, 5, 7)
    for channel in range(3):
        torch.testing.assert_close(loaded[0, channel], torch.from_numpy(gray).float() / 255)


def test_bilevel_image() -> None:
    img = Image.new("1", (2, 1))
    img.putpixel((1, 0), 1)
    torch.testing.assert_close(to_tensor(img)[0, :, 0, :].T, torch.tensor([[0.0] * 3, [1.0] * 3]))


@pytest.mark.parametrize("extension", [".png", ".tif"])
def test_16_bit_grayscale_keeps_its_precision(tmp_path: Path, extension: str) -> None:
    values = np.array([[0, 1, 257, 32768, 65535]], dtype=np.uint16)
    path = tmp_path / f"gray16{extension}"
    Image.fromarray(values).save(path)
    with Image.open(path) as img:
        assert img.mode.startswith("I")  # really a 16-bit file
    loaded = load_image(path)
    check_tensor(loaded, 1, 5)
    expected = torch.from_numpy(values.astype(np.float32)) / 65535.0
    for channel in range(3):
        torch.testing.assert_close(loaded[0, channel], expected, rtol=0, atol=0)
    assert loaded[0, 0, 0, 4].item() == 1.0
    assert loaded[0, 0, 0, 2].item() == np.float32(257 / 65535)
    assert 0 < loaded[0, 0, 0, 1].item() < 1 / 255  # below one 8-bit level: not through 8 bits


def test_32_bit_integer_and_big_endian_16_bit_modes() -> None:
    as_int = Image.fromarray(np.array([[0, 257, 65535, 70000]], dtype=np.int32))
    assert as_int.mode == "I"
    torch.testing.assert_close(
        to_tensor(as_int)[0, 1, 0], torch.tensor([0.0, 257 / 65535, 1.0, 1.0]), rtol=0, atol=0
    )
    big_endian = Image.new("I;16B", (2, 1), 257)
    torch.testing.assert_close(
        to_tensor(big_endian)[0, 2, 0], torch.full((2,), 257 / 65535), rtol=0, atol=0
    )


def test_float_grayscale_is_clamped() -> None:
    img = Image.fromarray(np.array([[-0.5, 0.25, 2.0]], dtype=np.float32))
    assert img.mode == "F"
    torch.testing.assert_close(to_tensor(img)[0, 0, 0], torch.tensor([0.0, 0.25, 1.0]))


def test_cmyk_jpeg_is_read(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    img = Image.new("CMYK", (16, 8), (0, 0, 0, 0))  # no ink: white
    img.paste((255, 0, 0, 0), (0, 0, 8, 8))  # full cyan on the left half
    img.save(path, quality=95)
    loaded = load_image(path)
    check_tensor(loaded, 8, 16)
    assert loaded[0, :, :, 12:].min() > 0.95
    cyan = loaded[0, :, 4, 2]
    assert cyan[0] < 0.05 and cyan[1] > 0.95 and cyan[2] > 0.95


def test_ycbcr_and_lab_modes_are_converted() -> None:
    ycbcr = Image.new("RGB", (2, 2), (30, 160, 90)).convert("YCbCr")
    assert abs(as_levels(to_tensor(ycbcr))[0, 0] - (30, 160, 90)).max() <= 2
    check_tensor(to_tensor(Image.new("LAB", (3, 2), (128, 128, 128))), 2, 3)


@pytest.mark.parametrize(
    ("extension", "options"),
    [(".webp", {"lossless": True}), (".tiff", {}), (".bmp", {})],
)
def test_other_formats_are_read(tmp_path: Path, extension: str, options: dict) -> None:
    pixels = random_rgb(6, 9)
    path = tmp_path / f"written_by_pillow{extension}"
    Image.fromarray(pixels).save(path, **options)
    np.testing.assert_array_equal(as_levels(load_image(path)), pixels)


def test_to_tensor_from_open_image() -> None:
    pixels = random_rgb(3, 5)
    image = to_tensor(Image.fromarray(pixels))
    check_tensor(image, 3, 5)
    np.testing.assert_array_equal(as_levels(image), pixels)


# ---------------------------------------------------------------------------------------------
# reading: user errors
# ---------------------------------------------------------------------------------------------


def assert_input_error(error: pytest.ExceptionInfo[InputError], path: Path, text: str) -> None:
    message = str(error.value)
    assert str(path) in message
    assert text in message
    assert "\n" not in message
    assert error.value.exit_code == 2
    assert isinstance(error.value, UsageError)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jpg"
    with pytest.raises(InputError) as error:
        load_image(path, what="content image")
    assert str(error.value) == f"content image '{path}' does not exist"


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError) as error:
        load_image(tmp_path, what="style image")
    assert_input_error(error, tmp_path, "is a folder, not an image")
    assert str(error.value).startswith("style image '")


@pytest.mark.parametrize("content", [b"hello, this is plain text\n", b""])
def test_not_an_image(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(content)
    with pytest.raises(InputError) as error:
        load_image(path)
    assert_input_error(error, path, "could not be read as an image: ")
    assert str(error.value).startswith(f"image '{path}' could not be read as an image: ")


@pytest.mark.parametrize("extension", [".jpg", ".png"])
def test_truncated_file(tmp_path: Path, extension: str) -> None:
    whole = io.BytesIO()
    Image.fromarray(random_rgb(64, 64)).save(whole, format=extension[1:].replace("jpg", "jpeg"))
    path = tmp_path / f"truncated{extension}"
    path.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    with pytest.raises(InputError) as error:
        load_image(path)
    assert_input_error(error, path, "could not be read as an image: ")


# ---------------------------------------------------------------------------------------------
# resizing
# ---------------------------------------------------------------------------------------------


def test_resize_long_side_landscape_and_portrait() -> None:
    landscape = torch.rand(1, 3, 200, 300)
    assert resize_long_side(landscape, 150).shape == (1, 3, 100, 150)
    portrait = torch.rand(1, 3, 300, 200)
    assert resize_long_side(portrait, 150).shape == (1, 3, 150, 100)
    assert resize_long_side(portrait, 600).shape == (1, 3, 600, 400)  # enlarging too


def test_resize_long_side_rounds_and_keeps_one_pixel() -> None:
    assert resize_long_side(torch.rand(1, 3, 2, 3), 2).shape == (1, 3, 1, 2)  # 1.33 -> 1
    assert resize_long_side(torch.rand(1, 3, 3, 5), 6).shape == (1, 3, 4, 6)  # 3.6 -> 4
    assert resize_long_side(torch.rand(1, 3, 1000, 1), 10).shape == (1, 3, 10, 1)


def test_resize_keeps_a_constant_image_constant() -> None:
    image = torch.full((1, 3, 37, 53), 0.37)
    for size in (20, 53, 80):
        torch.testing.assert_close(
            resize_long_side(image, size),
            torch.full_like(resize_long_side(image, size), 0.37),
            rtol=0,
            atol=1e-5,
        )


def test_resize_output_is_clamped() -> None:
    # Hard 0/1 edges make bicubic overshoot, both enlarging and shrinking.
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2
    image = checker.float().expand(1, 3, 16, 16)
    for size in (7, 40):
        resized = resize_long_side(image, size)
        assert resized.min() >= 0.0 and resized.max() <= 1.0


def test_resize_is_antialiased_when_shrinking() -> None:
    # One-pixel stripes shrunk 3x: plain bicubic sampling aliases them into full-contrast
    # stripes; an antialiasing filter averages them to grey.
    stripes = torch.zeros(1, 3, 8, 300)
    stripes[..., 1::2] = 1.0
    shrunk = resize_to(stripes, 8, 100)
    assert shrunk.shape == (1, 3, 8, 100)
    assert (shrunk - 0.5).abs().max() < 0.1


def test_resize_returns_the_input_when_already_that_size() -> None:
    image = torch.rand(1, 3, 20, 30)
    assert resize_long_side(image, 30) is image
    assert resize_to(image, 20, 30) is image


def test_resize_to_exact_size() -> None:
    resized = resize_to(torch.rand(1, 3, 20, 30), 33, 7)
    assert resized.shape == (1, 3, 33, 7) and resized.dtype == torch.float32


def test_resize_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        resize_long_side(torch.rand(1, 3, 4, 4), 0)
    with pytest.raises(ValueError):
        resize_to(torch.rand(3, 4, 4), 2, 2)


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
        ".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp",
    )  # fmt: skip


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
# output files: 16-bit, sRGB profile, metadata
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


def write_16_bit_png(
    path: Path, samples: np.ndarray, *, alpha: bool = False, exif: bytes = b""
) -> None:
    """A 16-bit PNG written without impasto: (H, W, C) uint16, optionally with an eXIf chunk."""
    height, width, planes = samples.shape
    writer = png.Writer(width, height, greyscale=planes < 3, alpha=alpha, bitdepth=16)
    encoded = io.BytesIO()
    writer.write(encoded, samples.reshape(height, -1).tolist())
    header, *rest = png.Reader(bytes=encoded.getvalue()).chunks()
    extra = [(b"eXIf", exif.removeprefix(b"Exif\0\0"))] if exif else []
    with path.open("wb") as stream:
        png.write_chunks(stream, [header, *extra, *rest])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16_bit_files_are_turned_like_8_bit_ones(tmp_path: Path, orientation: int) -> None:
    pixels = random_rgb(3, 5, seed=orientation)
    exif = exif_with_orientation(orientation)
    Image.fromarray(pixels).save(tmp_path / "eight.png", exif=exif)
    expected = load_image(tmp_path / "eight.png")  # Pillow's exif_transpose

    wide = pixels.astype(np.uint16) * 257  # the same values in 16 bits
    write_16_bit_png(tmp_path / "sixteen.png", wide, exif=exif.tobytes())
    tifffile.imwrite(
        tmp_path / "sixteen.tif",
        wide,
        photometric="rgb",
        extratags=[(0x0112, 3, 1, orientation, True)],
    )
    for name in ("sixteen.png", "sixteen.tif"):
        torch.testing.assert_close(load_image(tmp_path / name), expected, rtol=0, atol=0)


def test_16_bit_alpha_is_composited_over_white(tmp_path: Path) -> None:
    rgba = np.array([[[65535, 0, 0, 32768], [0, 1, 2, 65535], [5, 5, 5, 0]]], dtype=np.uint16)
    a = 32768 / 65535
    expected = torch.tensor([[1.0, 1 - a, 1 - a], [0, 1 / 65535, 2 / 65535], [1.0, 1.0, 1.0]])
    write_16_bit_png(tmp_path / "rgba.png", rgba, alpha=True)
    tifffile.imwrite(
        tmp_path / "straight.tif", rgba, photometric="rgb", extrasamples=["unassalpha"]
    )
    premultiplied = rgba.copy()
    premultiplied[0, 0, 0] = 32768  # 1.0 * a
    tifffile.imwrite(
        tmp_path / "premultiplied.tif",
        premultiplied,
        photometric="rgb",
        extrasamples=["assocalpha"],
    )
    for name in ("rgba.png", "straight.tif", "premultiplied.tif"):
        loaded = load_image(tmp_path / name)
        check_tensor(loaded, 1, 3)
        torch.testing.assert_close(loaded[0, :, 0].T, expected, rtol=0, atol=1e-6)


def test_16_bit_gray_with_alpha_png(tmp_path: Path) -> None:
    write_16_bit_png(
        tmp_path / "la.png", np.array([[[1000, 65535], [9, 0]]], dtype=np.uint16), alpha=True
    )
    loaded = load_image(tmp_path / "la.png")
    torch.testing.assert_close(loaded[0, :, 0].T, torch.tensor([[1000 / 65535] * 3, [1.0] * 3]))


def test_16_bit_file_in_another_colour_space_is_converted(tmp_path: Path) -> None:
    # Colour management needs Pillow's 8-bit path; right colours matter more than precision.
    path = tmp_path / "linear.tif"
    gray = np.full((1, 3, 3), 32768, dtype=np.uint16)
    tifffile.imwrite(path, gray, photometric="rgb", iccprofile=linear_rgb_icc_profile())
    expected_mid = 255 * srgb_encode(0.5)  # ~188: a loader that ignores the profile gives 128
    assert abs(as_levels(load_image(path)) - expected_mid).max() <= 2


@pytest.mark.parametrize("extension", [".png", ".tif"])
def test_truncated_16_bit_file(tmp_path: Path, extension: str) -> None:
    whole = save_image(torch.rand(1, 3, 64, 64), tmp_path / f"whole{extension}", bit_depth=16)
    path = tmp_path / f"truncated{extension}"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(InputError) as error:
        load_image(path)
    assert_input_error(error, path, "could not be read as an image: ")


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


METADATA = {
    "content": "photo.jpg",
    "style": ["starry night.jpg", "the scream.png"],
    "style_weight": 1e6,
    "seed": 0,
    "size": [512, 384],
    "title": "Café ✓ 日本",  # non-ASCII must survive every format
    "nested": {"layers": {"conv4_2": 1.0}, "tv": None, "flag": True},
}


@pytest.mark.parametrize(
    ("extension", "bit_depth"),
    [
        (".png", 8),
        (".png", 16),
        (".tif", 8),
        (".tiff", 16),
        (".jpg", 8),
        (".jpeg", 8),
        (".webp", 8),
    ],
)
def test_metadata_round_trips(tmp_path: Path, extension: str, bit_depth: int) -> None:
    path = save_image(
        torch.rand(1, 3, 8, 8), tmp_path / f"out{extension}", bit_depth=bit_depth, metadata=METADATA
    )
    assert read_metadata(path) == METADATA
    assert read_metadata(str(path)) == METADATA


@pytest.mark.parametrize(
    ("extension", "bit_depth"), [(".png", 8), (".png", 16), (".tif", 8), (".tif", 16)]
)
def test_metadata_is_where_other_tools_look(tmp_path: Path, extension: str, bit_depth: int) -> None:
    path = save_image(
        torch.rand(1, 3, 4, 4), tmp_path / f"out{extension}", bit_depth=bit_depth, metadata={"a": 1}
    )
    software = f"impasto {impasto.__version__}"
    with Image.open(path) as img:
        if extension == ".png":
            assert img.text["Software"] == software  # type: ignore[attr-defined]
            assert json.loads(img.text["impasto"]) == {"a": 1}  # type: ignore[attr-defined]
        else:
            assert img.tag_v2[0x0131] == software  # type: ignore[attr-defined]
            assert json.loads(img.tag_v2[0x010E]) == {"a": 1}  # type: ignore[attr-defined]
    if extension == ".png":
        chunks = dict(png.Reader(filename=str(path)).chunks())
        assert chunks[b"tEXt"] == b"Software\0" + software.encode()
        assert chunks[b"iTXt"].startswith(b"impasto\0\0\0\0\0")  # uncompressed, no language


@pytest.mark.parametrize("extension", [".jpg", ".webp"])
def test_software_tag_in_exif(tmp_path: Path, extension: str) -> None:
    path = save_image(torch.rand(1, 3, 4, 4), tmp_path / f"out{extension}", metadata={"a": 1})
    with Image.open(path) as img:
        assert img.getexif()[0x0131] == f"impasto {impasto.__version__}"
        if extension == ".jpg":
            assert json.loads(img.info["comment"]) == {"a": 1}


@pytest.mark.parametrize("extension", [".png", ".tif", ".jpg", ".webp", ".bmp"])
def test_file_without_metadata_gives_none(tmp_path: Path, extension: str) -> None:
    # Written by impasto without metadata, and written by something else (a "photo").
    assert read_metadata(save_image(torch.rand(1, 3, 4, 4), tmp_path / f"out{extension}")) is None
    photo = tmp_path / f"photo{extension}"
    Image.fromarray(random_rgb()).save(photo)
    assert read_metadata(photo) is None


def test_bmp_stores_no_metadata(tmp_path: Path) -> None:
    path = save_image(torch.rand(1, 3, 4, 4), tmp_path / "out.bmp", metadata={"a": 1})
    assert read_metadata(path) is None
    check_tensor(load_image(path), 4, 4)


def test_foreign_or_broken_metadata_gives_none(tmp_path: Path) -> None:
    # JSON in generic fields, but not written by impasto: not taken for impasto's metadata.
    Image.fromarray(random_rgb()).save(tmp_path / "commented.jpg", comment='{"a": 1}')
    tifffile.imwrite(tmp_path / "shaped.tif", random_rgb(), photometric="rgb")  # '{"shape": ...}'
    # impasto's own keyword, but not a JSON object.
    for name, text in [("not_json.png", "{not json"), ("a_list.png", "[1, 2]"), ("empty.png", "")]:
        info = PngImagePlugin.PngInfo()
        info.add_itxt("impasto", text)
        Image.fromarray(random_rgb()).save(tmp_path / name, pnginfo=info)
    for path in sorted(tmp_path.iterdir()):
        assert read_metadata(path) is None, path.name


def test_read_metadata_user_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(InputError) as error:
        read_metadata(missing)
    assert str(error.value) == f"image '{missing}' does not exist"
    with pytest.raises(InputError) as error:
        read_metadata(tmp_path)
    assert_input_error(error, tmp_path, "is a folder, not an image")
    text = tmp_path / "notes.png"
    text.write_text("hello, this is plain text\n")
    with pytest.raises(InputError) as error:
        read_metadata(text, what="init image")
    assert_input_error(error, text, "could not be read as an image: ")
    assert str(error.value).startswith("init image '")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(save_image(torch.rand(1, 3, 32, 32), tmp_path / "ok.png").read_bytes()[:60])
    with pytest.raises(InputError) as error:
        read_metadata(corrupt)
    assert_input_error(error, corrupt, "could not be read as an image: ")


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


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"path": Path("x.png")}, ValueError),
        ({"loss": float("nan")}, ValueError),
        (["not", "a", "mapping"], TypeError),
    ],
)
def test_metadata_must_be_json(tmp_path: Path, metadata: object, expected: type[Exception]) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(expected, match="metadata"):
        save_image(torch.rand(1, 3, 4, 4), target, metadata=metadata)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_too_much_metadata_for_a_jpeg_comment(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JPEG comment"):
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "out.jpg", metadata={"x": "a" * 70_000})
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
