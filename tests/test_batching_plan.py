"""impasto.batching.plan: which items a batch holds, their output names, the pairs CSV, and
every mistake in the arguments refused with one line before anything runs. No torch."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from impasto.batching.plan import (
    IMAGE_EXTENSIONS,
    OUTPUT_EXTENSIONS,
    check_output_folder,
    find_images,
    plan,
    read_pairs,
)
from impasto.config import StyleConfig
from impasto.errors import UsageError


def _image(path: Path, size: tuple[int, int] = (8, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 30, 200)).save(path)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    for name in ("b.jpg", "a.png", "c.JPG"):
        _image(folder / name)
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.jpg").write_text("a temporary file, not a photo")
    _image(folder / "nested" / "deep.jpg")
    return folder


def test_a_folder_gives_its_images_sorted_and_not_its_subfolders(photos):
    names = [p.name for p in find_images([photos], "content")]
    assert names == ["a.png", "b.jpg", "c.JPG"]


def test_patterns_files_and_repeats(photos):
    found = find_images(
        [str(photos / "*.jpg"), photos / "a.png", str(photos / "**" / "deep.jpg"), photos],
        "content",
    )
    # Each file once, in the order first named; ** reaches subfolders; *.jpg is case-sensitive.
    assert [p.name for p in found] == ["b.jpg", "a.png", "deep.jpg", "c.JPG"]


@pytest.mark.parametrize(
    "source, message",
    [
        ("missing", "content 'missing' does not exist"),
        ("empty", "content folder '{}' has no images (.jpg"),
        ("nomatch/*.jpg", "content pattern '{}' matches no file"),
        ("text/*", "content pattern '{}' matches 1 file but no image"),
    ],
)
def test_sources_that_name_no_image_are_refused(tmp_path, source, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    given = str(tmp_path / source) if source != "missing" else "missing"
    with pytest.raises(UsageError) as error:
        find_images([given], "content")
    assert str(error.value).startswith(message.format(given))


def test_every_photo_in_every_style_grouped_by_style(photos, tmp_path):
    styles = [_image(tmp_path / "s" / "starry.jpg"), _image(tmp_path / "s" / "wave.png")]
    items = plan([photos], styles, StyleConfig(size=64))
    assert [i.name for i in items] == [
        "a__starry.png",
        "b__starry.png",
        "c__starry.png",
        "a__wave.png",
        "b__wave.png",
        "c__wave.png",
    ]
    assert all(i.config == StyleConfig(size=64) for i in items)


def test_colliding_names_get_a_fingerprint_that_stays_the_same(tmp_path):
    one = _image(tmp_path / "x" / "photo.jpg")
    two = _image(tmp_path / "y" / "photo.jpg")
    style = _image(tmp_path / "starry.jpg")
    names = [i.name for i in plan([one, two], [style])]
    assert len(set(names)) == 2
    assert all(n.startswith("photo__starry__") and n.endswith(".png") for n in names)
    # The same inputs give the same names in a later run (the manifest finds them again),
    # and a third photo joining the batch does not rename the other two.
    assert [i.name for i in plan([one, two], [style])] == names
    three = _image(tmp_path / "z" / "photo.jpg")
    assert [i.name for i in plan([one, two, three], [style])][:2] == names


def test_format_and_bit_depth_name_and_check_the_outputs(photos, tmp_path):
    style = _image(tmp_path / "starry.jpg")
    assert plan([photos / "a.png"], [style], image_format="tif", bit_depth=16)[0].name == (
        "a__starry.tif"
    )
    with pytest.raises(UsageError, match="--bit-depth 16 needs --format png or tif, not jpg"):
        plan([photos / "a.png"], [style], image_format="jpg", bit_depth=16)
    with pytest.raises(UsageError, match="--format must be one of png, jpg, webp, tif"):
        plan([photos / "a.png"], [style], image_format="gif")
    assert set(OUTPUT_EXTENSIONS) <= {e for e in IMAGE_EXTENSIONS}


def test_an_init_image_is_refused_in_a_batch(photos, tmp_path):
    style = _image(tmp_path / "starry.jpg")
    with pytest.raises(UsageError, match="--init in a batch must be content, noise, style"):
        plan([photos], [style], StyleConfig(init=str(style)))


def test_arguments_that_cannot_make_a_batch(photos, tmp_path):
    style = _image(tmp_path / "starry.jpg")
    with pytest.raises(UsageError, match="give at least one style image with --style"):
        plan([photos], [])
    with pytest.raises(UsageError, match="give the photos"):
        plan([], [style])
    csv = tmp_path / "pairs.csv"
    csv.write_text("a.jpg,b.jpg\n")
    with pytest.raises(UsageError, match="--pairs, not both"):
        plan([photos], [style], pairs=csv)


# ---------------------------------------------------------------------------------------------
# The pairs CSV


def test_pairs_rows_with_options_and_outputs(tmp_path):
    _image(tmp_path / "img" / "p.jpg")
    _image(tmp_path / "img" / "s.jpg")
    _image(tmp_path / "img" / "t.jpg")
    csv = tmp_path / "pairs.csv"
    csv.write_text(
        "content,style,style-weight,output,iterations\n"
        "# a comment, then a blank line\n"
        "\n"
        "img/p.jpg,img/s.jpg,20,,\n"
        "img/p.jpg,img/s.jpg,,,30\n"
        "img/p.jpg,img/t.jpg,,mine.jpg,\n"
    )
    base = StyleConfig(size=96, style_weight=5)
    items = plan(pairs=csv, config=base)
    by_style = [(i.style.name, i.config.style_weight, i.config.iterations, i.name) for i in items]
    # Relative to the CSV's folder; empty cells keep the batch's values; the same pair with
    # other options gets two names; an output cell names the file.
    assert by_style[0][:3] == ("s.jpg", 20.0, None)
    assert by_style[1][:3] == ("s.jpg", 5.0, (30,))
    assert by_style[0][3] != by_style[1][3] and by_style[0][3].startswith("p__s__")
    assert by_style[2] == ("t.jpg", 5.0, None, "mine.jpg")
    assert all(i.config.size == 96 for i in items)


def test_pairs_without_a_header_are_content_style(tmp_path):
    p, s = _image(tmp_path / "p.jpg"), _image(tmp_path / "s.jpg")
    csv = tmp_path / "pairs.csv"
    csv.write_text(f"{p},{s}\n")  # absolute paths are kept as they are
    [row] = read_pairs(csv, StyleConfig())
    assert (row.content, row.style) == (p, s)


@pytest.mark.parametrize(
    "text, message",
    [
        ("content,style\np.jpg,s.jpg,20\n", "pairs.csv line 2: 3 columns, expected 2"),
        ("p.jpg,s.jpg,20\n", "pairs.csv line 1: 3 columns, expected 2 (content,style); to give"),
        (
            "content,style,stlye_weight\n",
            "line 1: unknown column 'stlye_weight' (did you mean 'style_weight'?)",
        ),
        ("content,style,device\n", "line 1: 'device' is set for the whole batch (--device)"),
        ("content,output\n", "line 1: the header has no 'style' column"),
        ("content,style,size,size\n", "line 1: column 'size' appears twice"),
        (
            "content,style,size\np.jpg,s.jpg,big\n",
            "line 2: --size expects a whole number, not 'big'",
        ),
        ("content,style,size\np.jpg,s.jpg,0\n", "line 2: --size must be a whole number from 1"),
        ("p.jpg,gone.jpg\n", "line 1: style image 'gone.jpg' does not exist"),
        ("p.jpg,\n", "line 1: the style cell is empty"),
        (
            "content,style,output\np.jpg,s.jpg,../x.png\n",
            "line 2: output '../x.png' must be a file name",
        ),
        ("content,style,output\np.jpg,s.jpg,x.gif\n", "line 2: output 'x.gif' must end in one of"),
        ("p.jpg,s.jpg\n\np.jpg,s.jpg\n", "pairs.csv line 3 repeats pairs.csv line 1"),
        (
            "content,style,output\np.jpg,s.jpg,o.png\np.jpg,s.jpg,O.png\n",
            "line 3: output 'O.png' is also written by",
        ),
        ("# only a comment\n", "pairs file 'pairs.csv' has no rows"),
        ('p.jpg,"s.jpg\n', "pairs.csv line 1: not valid CSV"),
    ],
)
def test_a_malformed_pairs_csv_names_the_line(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    _image(tmp_path / "p.jpg")
    _image(tmp_path / "s.jpg")
    (tmp_path / "pairs.csv").write_text(text)
    with pytest.raises(UsageError) as error:
        plan(pairs="pairs.csv")
    assert message in str(error.value)


def test_a_missing_pairs_file(tmp_path):
    with pytest.raises(UsageError, match="pairs file '.*nope.csv' does not exist"):
        plan(pairs=tmp_path / "nope.csv")


# ---------------------------------------------------------------------------------------------
# The output folder


def test_output_folder_checks(photos, tmp_path):
    style = _image(tmp_path / "starry.jpg")
    items = plan([photos], [style])
    assert check_output_folder(tmp_path / "new" / "out", items) == tmp_path / "new" / "out"
    assert not (tmp_path / "new").exists()  # checking makes nothing
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        check_output_folder(a_file, items)
    with pytest.raises(UsageError, match="cannot make output folder .* is a file"):
        check_output_folder(a_file / "out", items)
    with pytest.raises(UsageError, match="holds 'a.png', an input of this batch"):
        check_output_folder(photos, items)
