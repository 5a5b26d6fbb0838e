"""Tests for impasto.image.metadata: the JSON record save_image stores, where other tools find
it, reading it back, and importing the module without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import png
import pytest
import tifffile
import torch
from PIL import Image, PngImagePlugin

import impasto
from impasto.errors import InputError
from impasto.image import load_image, read_metadata, save_image
from tests.image_helpers import assert_input_error, check_tensor, random_rgb

# ---------------------------------------------------------------------------------------------
# the stored record: where each format keeps it, reading it back
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# what save_image refuses to store
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# importing: the package's names are lazy, and the record is read without torch
# ---------------------------------------------------------------------------------------------


def run_python(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter and return what it prints."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_metadata_is_read_without_torch_or_numpy(tmp_path: Path) -> None:
    # The top-level package is replaced by a bare one, so that only what impasto.image and its
    # metadata module import is counted (impasto/__init__.py is the next test's business).
    path = save_image(torch.rand(1, 3, 4, 4), tmp_path / "out.png", metadata=METADATA)
    code = """if True:
        import importlib.util, json, sys, types
        bare = types.ModuleType("impasto")
        bare.__path__ = list(importlib.util.find_spec("impasto").submodule_search_locations)
        sys.modules["impasto"] = bare
        from impasto.image.metadata import read_metadata
        print(json.dumps(read_metadata(sys.argv[1])))
        print(json.dumps(sorted(m for m in ("numpy", "torch") if m in sys.modules)))
    """
    stored, heavy = run_python(code, str(path)).splitlines()
    assert json.loads(stored) == METADATA
    assert json.loads(heavy) == []


def test_importing_metadata_does_not_import_torch() -> None:
    code = "import sys, impasto.image.metadata; print('torch' in sys.modules)"
    assert run_python(code).strip() == "False"


def test_public_names_come_from_their_modules() -> None:
    import impasto.image
    from impasto.image import metadata, read, resize, write

    for name in impasto.image.__all__:
        value = getattr(impasto.image, name)
        homes = [m for m in (metadata, read, resize, write) if getattr(m, name, None) is value]
        assert homes and name in homes[0].__all__, name
    assert set(impasto.image.__all__) <= set(dir(impasto.image))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        impasto.image.nope  # noqa: B018
