"""Tests for impasto.image.read: every kind of file into (1, 3, H, W) sRGB, and the user errors
of reading. Every test image is made here with Pillow/numpy/pypng/tifffile; all are tiny."""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import numpy as np
import PIL.Image
import png
import pytest
import tifffile
import torch
from PIL import Image, ImageCms

from impasto.errors import InputError
from impasto.image import load_image, save_image, to_tensor
from tests.image_helpers import (
    as_levels,
    assert_input_error,
    check_tensor,
    grey_png,
    random_rgb,
)

# ---------------------------------------------------------------------------------------------
# reading: orientation, colour management, modes
# ---------------------------------------------------------------------------------------------


def exif_with_orientation(orientation: int) -> PIL.Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


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
# reading 16-bit colour files
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# decode_image: the same from a file's bytes (what a batch sends to another machine)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix, bit_depth", [(".jpg", 8), (".png", 16), (".tif", 16)])
def test_decode_image_reads_bytes_as_load_image_reads_the_file(tmp_path, suffix, bit_depth):
    from impasto.image import decode_image

    # A smooth ramp: 16-bit files then hold levels an 8-bit reading would round away.
    ramp = torch.linspace(0, 1, 3 * 20 * 24).reshape(1, 3, 20, 24)
    path = save_image(ramp, tmp_path / f"ramp{suffix}", bit_depth=bit_depth)
    from_file = load_image(path)
    from_bytes = decode_image(path.read_bytes(), name="ramp", what="content image")
    assert torch.equal(from_bytes, from_file)
    if bit_depth == 16:  # the 16-bit path was taken, not Pillow's 8-bit one
        assert not torch.equal(from_bytes, torch.round(from_bytes * 255) / 255)


def test_decode_image_names_the_file_it_was_given():
    from impasto.image import decode_image

    with pytest.raises(InputError, match=r"^content image 'photos/a\.jpg' could not be read"):
        decode_image(b"not an image at all", name="photos/a.jpg", what="content image")


# ---------------------------------------------------------------------------------------------
# large files: a pixel limit read from the header, and decoding no larger than needed
# ---------------------------------------------------------------------------------------------


def test_a_small_file_describing_a_huge_image_is_refused_from_its_header(tmp_path: Path) -> None:
    from impasto.image.read import MAX_INPUT_PIXELS

    over = grey_png(tmp_path / "over.png", 13000, 13500)  # 175.5 MP, a 200 KB file
    assert 13000 * 13500 > MAX_INPUT_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw DecompressionBombWarning reaches the user
        with pytest.raises(InputError) as error:
            load_image(over, what="content image", fit=512)
    assert_input_error(error, over, "is 13000x13500 px (176 megapixels); impasto reads images up")
    assert "content image" in str(error.value)
    # Past Pillow's own limit too, the message is impasto's.
    far = grey_png(tmp_path / "far.png", 20000, 20000)
    with pytest.raises(InputError) as error:
        load_image(far, what="style image")
    assert_input_error(error, far, "has more than 175 megapixels, the most impasto reads")


def test_a_huge_image_is_decoded_reduced_to_what_the_run_needs(tmp_path: Path) -> None:
    # The file: 13000 x 13000 grey, 169 MP, which the run uses at 512 px. Whole, it took
    # 5 GB and 40 s in float32 before being shrunk; reduced, it never exists at full size.
    big = grey_png(tmp_path / "big.png", 13000, 13000, level=200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = load_image(big, what="content image", fit=512)
    assert image.shape[:2] == (1, 3) and 1024 <= image.shape[-1] < 2048
    assert image.shape[-1] == image.shape[-2]
    assert torch.allclose(image, torch.full_like(image, 200 / 255))


@pytest.mark.parametrize("fit", [64, 100, 200])
def test_a_reduced_photo_resizes_to_the_same_picture(fit: int) -> None:
    from impasto.image import resize_long_side

    photo = Path(__file__).resolve().parent.parent / "examples" / "mountains.jpg"
    whole = resize_long_side(load_image(photo), fit)
    reduced = load_image(photo, fit=fit)
    assert max(reduced.shape[-2:]) < max(load_image(photo).shape[-2:]) / 1.9
    assert max(reduced.shape[-2:]) >= 2 * fit
    small = resize_long_side(reduced, fit)
    assert small.shape == whole.shape
    # Within a level or two on average: the resize cannot tell a reduced file from a whole one.
    assert float((small - whole).abs().mean()) < 2 / 255
    # An image opened by the caller and not yet loaded gives the very same tensor.
    assert torch.equal(to_tensor(Image.open(photo), fit=fit), reduced)


def test_an_image_only_a_little_larger_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.fromarray(random_rgb(300, 390)).save(path)
    assert load_image(path, fit=100).shape == (1, 3, 300, 390)  # under 4x: not worth it


@pytest.mark.parametrize("extension", [".jpg", ".tif", ".png"])
def test_a_reduced_image_keeps_its_orientation(tmp_path: Path, extension: str) -> None:
    # Stored 800 wide and 200 high, to be turned a quarter: displayed 200 wide, 800 high, with
    # the stored top row (bright) on the right.
    stored = np.zeros((200, 800, 3), dtype=np.uint8)
    stored[:40] = 250
    path = tmp_path / f"turned{extension}"
    Image.fromarray(stored).save(path, exif=exif_with_orientation(6))
    image = load_image(path, fit=50)
    assert image.shape[-2] > image.shape[-1] and image.shape[-2] < 800
    width = image.shape[-1]
    assert float(image[..., : width // 2].mean()) < 0.1 and float(image[..., -2:].mean()) > 0.8


def test_transparent_pixels_lend_no_colour_when_reduced(tmp_path: Path) -> None:
    # Transparent red beside opaque blue, the border inside a block of the reduction: averaged
    # straight, the red would show as purple over white; premultiplied it does not.
    pixels = np.zeros((40, 802, 4), dtype=np.uint8)
    pixels[:, :402] = (255, 0, 0, 0)
    pixels[:, 402:] = (0, 0, 255, 255)
    path = tmp_path / "edge.png"
    Image.fromarray(pixels).save(path)
    image = load_image(path, fit=100)
    assert image.shape[-1] < 802
    red, green = image[0, 0], image[0, 1]
    assert float((red - green).abs().max()) < 2 / 255


def test_a_callers_image_is_not_changed_by_a_reduced_read() -> None:
    # The first read decodes a reduced copy; the caller's image, used again larger, is whole.
    photo = Path(__file__).resolve().parent.parent / "examples" / "mountains.jpg"
    img = Image.open(photo)
    small = to_tensor(img, fit=64)
    assert max(small.shape[-2:]) < max(img.size) / 1.9
    assert torch.equal(to_tensor(img), load_image(photo))
    with open(photo, "rb") as f:  # opened from a stream: read whole, the same either way
        streamed = Image.open(io.BytesIO(f.read()))
        assert torch.equal(to_tensor(streamed, fit=64), to_tensor(streamed, fit=64))
        assert torch.equal(to_tensor(streamed), load_image(photo))
