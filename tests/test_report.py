"""Tests for impasto.report: the run report and the contact sheet.

The pictures are checked by what a person would look for: each input image is on the page (solid
colours that nothing else in the figure uses, found as solid blocks) in its place in the row or
grid, upright and with its aspect ratio, with no label drawn over it and nothing running off the
page; the loss curves are drawn in their colours under the images; the file is a PNG of the
promised size.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.errors import UsageError
from impasto.report import contact_sheet, make_report

pytest.importorskip("matplotlib")

# Pure colours: the figure's own ink is greys and matplotlib's muted tab10 palette, never these.
RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
YELLOW = (255, 255, 0)
MAGENTA = (255, 0, 255)
CYAN = (0, 255, 255)
ORANGE = (255, 128, 0)
PURPLE = (128, 0, 255)

# The first colours matplotlib's tab10 gives, which report.py uses for the terms in order.
TERM_COLOURS = [(0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E), (0x2C, 0xA0, 0x2C), (0xD6, 0x27, 0x28)]


def solid(colour: tuple[int, int, int], height: int = 12, width: int = 16) -> torch.Tensor:
    """An image of one colour. Shape: (1, 3, height, width)."""
    values = torch.tensor(colour, dtype=torch.float32) / 255.0
    return values.view(1, 3, 1, 1).expand(1, 3, height, width).clone()


def history(steps: int = 40, *, extra: bool = False) -> list[dict[str, float]]:
    out = []
    for i in range(steps):
        losses = {
            "content": 0.05 + 0.5 * (1 - math.exp(-i / 8)),
            "style": 30 * math.exp(-i / 6) + 0.4,
            "tv": 0.02 * math.exp(-i / 20) + 0.003,
        }
        if extra:
            losses["histogram"] = 0.2 * math.exp(-i / 15)
        out.append(losses)
    return out


def read(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB"))


def colour_mask(pixels: np.ndarray, colour: tuple[int, int, int], tolerance: int = 0) -> np.ndarray:
    difference = np.abs(pixels.astype(np.int16) - np.array(colour, dtype=np.int16))
    return (difference <= tolerance).all(axis=-1)


def has_block(pixels: np.ndarray, colour: tuple[int, int, int], side: int) -> bool:
    """Whether some side x side square of the picture is exactly ``colour``."""
    mask = colour_mask(pixels, colour).astype(np.int64)
    sums = np.pad(mask.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    windows = sums[side:, side:] - sums[:-side, side:] - sums[side:, :-side] + sums[:-side, :-side]
    return bool((windows == side * side).any())


def block_bottom(pixels: np.ndarray, colour: tuple[int, int, int]) -> int:
    """The last row holding ``colour``."""
    return int(np.nonzero(colour_mask(pixels, colour).any(axis=1))[0].max())


def bounds(pixels: np.ndarray, colour: tuple[int, int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the pixels of exactly ``colour``, inclusive."""
    rows, cols = np.nonzero(colour_mask(pixels, colour))
    return int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())


def centre(pixels: np.ndarray, colour: tuple[int, int, int]) -> tuple[float, float]:
    """(y, x) of the middle of the block of ``colour``."""
    top, bottom, left, right = bounds(pixels, colour)
    return (top + bottom) / 2, (left + right) / 2


def assert_uncovered(pixels: np.ndarray, colour: tuple[int, int, int]) -> None:
    """The block of ``colour`` is one solid rectangle: no text or line drawn over it."""
    top, bottom, left, right = bounds(pixels, colour)
    inside = pixels[top + 2 : bottom - 1, left + 2 : right - 1]  # clear of the frame's antialiasing
    assert inside.size and colour_mask(inside, colour).all(), colour


def assert_nothing_off_the_page(pixels: np.ndarray, margin: int = 8) -> None:
    """A white band all round: no text, legend or image was cut by the page's edge."""
    for band in (pixels[:margin], pixels[-margin:], pixels[:, :margin], pixels[:, -margin:]):
        assert (band == 255).all()


def count_runs(present: np.ndarray) -> int:
    """How many separate runs of True a 1-D mask has."""
    return int(np.count_nonzero(np.diff(present.astype(np.int8)) == 1) + present[0])


# ---------------------------------------------------------------------------------------------
# make_report
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_styles", [1, 2])
def test_report_shows_every_image_with_the_result_largest(tmp_path, n_styles):
    styles = [solid(BLUE, 20, 30), solid(YELLOW, 30, 20)][:n_styles]
    out = make_report(
        tmp_path / "report.png",
        content=solid(GREEN),
        styles=styles,
        result=solid(RED),
        history=history(),
        elapsed=12.5,
        title="a title",
        blend=[0.7, 0.3][:n_styles],
    )
    assert out == tmp_path / "report.png"
    pixels = read(out)
    height, width = pixels.shape[:2]
    assert width == 1600 and 700 < height < 1800
    for colour in [GREEN, BLUE, YELLOW][: n_styles + 1] + [RED]:
        assert has_block(pixels, colour, 40), colour
    red, green = colour_mask(pixels, RED).sum(), colour_mask(pixels, GREEN).sum()
    assert red > 1.5 * green  # same aspect, the result shown larger
    # Content, the styles in order, then the result, left to right in one row.
    xs = [centre(pixels, colour)[1] for colour in [GREEN, BLUE, YELLOW][: n_styles + 1] + [RED]]
    assert xs == sorted(xs)
    tops = [bounds(pixels, colour)[0] for colour in [GREEN, BLUE, YELLOW][: n_styles + 1] + [RED]]
    assert max(tops) - min(tops) <= 2  # the row's images start at the same height


def test_report_draws_a_curve_for_every_term_under_the_images(tmp_path):
    out = make_report(
        tmp_path / "report.png",
        content=solid(GREEN),
        styles=[solid(BLUE)],
        result=solid(RED),
        history=history(200, extra=True),
        elapsed=90,
    )
    pixels = read(out)
    below = pixels[block_bottom(pixels, RED) + 1 :]
    assert (below < 200).any(axis=-1).mean() > 0.005  # the plot is drawn down there
    # Each term's curve runs across the plot: far more pixels of its colour than its legend key.
    for colour in TERM_COLOURS:
        assert colour_mask(below, colour, tolerance=30).sum() > 300, colour
    # ... and the total is drawn in near-black.
    assert colour_mask(below, (0x11, 0x11, 0x11), tolerance=30).sum() > 300


@pytest.mark.parametrize(
    "steps",
    [
        [],
        [{"content": 1.0, "style": 2.0}],
        [{"fit": 1.0 / (i + 1), "zero": 0.0, "note": "text"} for i in range(10)],
        [{"content": 0.0}] * 5,  # nothing drawable on a log scale
        [{"content": 1.0}, {"content": 0.5, "style@256": 3.0}, {"style@512": float("nan")}],
    ],
    ids=["empty", "one-step", "zero-term", "all-zero", "terms-come-and-go"],
)
def test_report_copes_with_any_history(tmp_path, steps):
    out = make_report(
        tmp_path / "report.png",
        content=solid(GREEN),
        styles=[solid(BLUE)],
        result=solid(RED),
        history=steps,
        elapsed=0.3,
    )
    assert has_block(read(out), RED, 40)


def test_report_writes_other_formats(tmp_path):
    out = make_report(
        tmp_path / "report.jpg",
        content=solid(GREEN),
        styles=[solid(BLUE)],
        result=solid(RED),
        history=history(5),
        elapsed=1,
    )
    with Image.open(out) as img:
        assert img.format == "JPEG" and img.width == 1600


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"styles": []}, "at least one style"),
        ({"style_labels": ["a", "b"]}, "style_labels has 2 entries for 1 style"),
        ({"blend": [0.5, 0.5]}, "blend has 2 weights for 1 style"),
        ({"result": torch.rand(3, 8, 8)}, r"result must be an image tensor \(1, 3, H, W\)"),
        ({"styles": [torch.rand(1, 1, 8, 8)]}, r"styles\[0\] must be"),
    ],
)
def test_report_argument_mistakes_are_value_errors(tmp_path, changes, message):
    arguments = {
        "content": solid(GREEN),
        "styles": [solid(BLUE)],
        "result": solid(RED),
        "history": [],
        "elapsed": 1.0,
    }
    arguments.update(changes)
    with pytest.raises(ValueError, match=message):
        make_report(tmp_path / "report.png", **arguments)
    assert not (tmp_path / "report.png").exists()


def test_report_image_that_is_not_a_tensor_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="content must be an image tensor"):
        make_report(
            tmp_path / "report.png",
            content=np.zeros((8, 8, 3)),  # type: ignore[arg-type]
            styles=[solid(BLUE)],
            result=solid(RED),
            history=[],
            elapsed=1.0,
        )
    assert list(tmp_path.iterdir()) == []


def test_report_output_path_is_checked_before_drawing(tmp_path):
    with pytest.raises(UsageError, match="impasto can write"):
        make_report(
            tmp_path / "report.gif",
            content=solid(GREEN),
            styles=[solid(BLUE)],
            result=solid(RED),
            history=[],
            elapsed=1.0,
        )
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# contact_sheet
# ---------------------------------------------------------------------------------------------


def test_sheet_shows_every_cell_and_header(tmp_path):
    cells = [
        [solid(RED), solid(GREEN), solid(BLUE)],
        [solid(YELLOW), None, solid(MAGENTA, 16, 12)],
    ]
    out = contact_sheet(
        tmp_path / "sheet.png",
        cells,
        row_labels=["photo 1", "photo 2"],
        col_labels=["style 1", "style 2", "style 3"],
        row_headers=[solid(CYAN), None],
        col_headers=[solid(ORANGE), solid(PURPLE), None],
        corner="photo \\ style",
        title="A sheet",
    )
    pixels = read(out)
    assert pixels.shape[1] <= 1600
    for colour in (RED, GREEN, BLUE, YELLOW, MAGENTA, CYAN, ORANGE, PURPLE):
        assert has_block(pixels, colour, 40), colour
        assert_uncovered(pixels, colour)
    x = {colour: centre(pixels, colour)[1] for colour in (RED, GREEN, BLUE, CYAN, ORANGE, PURPLE)}
    y = {colour: centre(pixels, colour)[0] for colour in (RED, YELLOW, CYAN, ORANGE, MAGENTA)}
    # The grid in order: the row header, then the cells left to right; rows top to bottom.
    assert x[CYAN] < x[RED] < x[GREEN] < x[BLUE]
    assert y[ORANGE] < y[RED] < y[YELLOW]
    # Each header in its cells' row or column.
    top, bottom, left, right = bounds(pixels, RED)
    assert top < y[CYAN] < bottom and left < x[ORANGE] < right
    top, bottom, left, right = bounds(pixels, GREEN)
    assert left < x[PURPLE] < right
    top, bottom, left, right = bounds(pixels, YELLOW)
    assert top < y[MAGENTA] < bottom
    # The missing cell (row 2, column 2) is an empty grey box where it belongs.
    assert tuple(pixels[round(y[YELLOW]), round(x[GREEN])]) == (0xF2, 0xF2, 0xF2)


@pytest.mark.parametrize(("rows", "cols"), [(1, 4), (4, 1), (1, 1), (3, 5)])
@pytest.mark.parametrize("headers", [True, False])
def test_sheet_any_grid(tmp_path, rows, cols, headers):
    cells = [[solid(RED, 20, 30) for _ in range(cols)] for _ in range(rows)]
    out = contact_sheet(
        tmp_path / "sheet.png",
        cells,
        row_labels=[f"row {r}" for r in range(rows)],
        col_labels=[
            f"column {c} with a name far too long to fit over its cell" for c in range(cols)
        ],
        row_headers=[solid(GREEN)] * rows if headers else None,
        col_headers=[solid(BLUE)] * cols if headers else None,
    )
    pixels = read(out)
    height, width = pixels.shape[:2]
    assert width <= 1600 and height < 3000
    assert has_block(pixels, RED, 30)
    if headers:
        assert has_block(pixels, GREEN, 30) and has_block(pixels, BLUE, 30)
    # As many separate columns and rows of results as asked for.
    red = colour_mask(pixels, RED)
    assert count_runs(red.any(axis=0)) == cols and count_runs(red.any(axis=1)) == rows
    assert_nothing_off_the_page(pixels)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"row_labels": ["only one"]}, "row_labels has 1 entries for 2 rows"),
        ({"col_labels": ["a", "b"]}, "cells row 0 has 3 entries, but col_labels names 2 columns"),
        ({"cells": [[None, None, None], [None, None]]}, "cells row 1 has 2 entries"),
        ({"row_headers": [None]}, "row_headers has 1 entries for 2 rows"),
        ({"col_headers": [None] * 4}, "col_headers has 4 entries for 3 columns"),
        ({"cells": []}, "at least one row and one column"),
        ({"cells": [[torch.rand(1, 4, 8, 8), None, None]] * 2}, r"cells\[0\]\[0\] must be"),
    ],
)
def test_sheet_mismatched_counts_are_value_errors(tmp_path, changes, message):
    arguments = {
        "cells": [[None] * 3, [None] * 3],
        "row_labels": ["r1", "r2"],
        "col_labels": ["a", "b", "c"],
    }
    arguments.update(changes)
    with pytest.raises(ValueError, match=message):
        contact_sheet(tmp_path / "sheet.png", **arguments)
    assert not (tmp_path / "sheet.png").exists()


def test_sheet_image_that_is_not_a_tensor_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match=r"row_headers\[1\] must be an image tensor"):
        contact_sheet(
            tmp_path / "sheet.png",
            [[solid(RED)], [solid(GREEN)]],
            row_labels=["r1", "r2"],
            col_labels=["c"],
            row_headers=[None, np.zeros((8, 8, 3))],  # type: ignore[list-item]
        )
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Both: images shown as they are, text kept off them, the optional dependency, atomic writes
# ---------------------------------------------------------------------------------------------


def two_tone(height: int, width: int) -> torch.Tensor:
    """Red over blue, so that a picture shown upside down or squashed is caught."""
    image = solid(BLUE, height, width)
    image[:, :, : height // 2] = solid(RED, height // 2, width)
    return image


def assert_upright_with_aspect(pixels: np.ndarray, aspect: float) -> None:
    red_top, red_bottom, red_left, red_right = bounds(pixels, RED)
    blue_top, blue_bottom, blue_left, blue_right = bounds(pixels, BLUE)
    assert red_bottom < blue_top  # red above blue, as in the image
    assert abs(red_left - blue_left) <= 1 and abs(red_right - blue_right) <= 1
    shown = (red_right - red_left + 1) / (blue_bottom - red_top + 1)
    assert shown == pytest.approx(aspect, rel=0.03)


@pytest.mark.parametrize("aspect", [2.0, 0.5])
def test_images_are_shown_upright_with_their_aspect_ratio(tmp_path, aspect):
    image = two_tone(40, round(40 * aspect))
    report = make_report(
        tmp_path / "report.png",
        content=solid(GREEN),
        styles=[solid(YELLOW)],
        result=image,
        history=history(5),
        elapsed=1.0,
    )
    assert_upright_with_aspect(read(report), aspect)
    sheet = contact_sheet(
        tmp_path / "sheet.png",
        [[image, solid(GREEN, 30, 30)]],
        row_labels=["r"],
        col_labels=["a", "b"],
    )
    assert_upright_with_aspect(read(sheet), aspect)


def test_long_text_wraps_or_is_cut_but_never_covers_an_image(tmp_path):
    long = "a_file_name_with_no_spaces_that_goes_on_and_on_" * 3 + ".jpg"
    words = "a title with many words that cannot possibly fit on one line of the page " * 6
    out = make_report(
        tmp_path / "report.png",
        content=solid(GREEN, 30, 8),
        styles=[solid(BLUE, 8, 30), solid(YELLOW)],
        result=solid(RED, 30, 8),
        history=[{long: 1.0 / (i + 1), "style": 2.0} for i in range(10)],
        elapsed=3.0,
        style_labels=[long, words],
        blend=[0.123456789, 0.876543211],
        title=words + long,
    )
    pixels = read(out)
    assert pixels.shape[1] == 1600 and pixels.shape[0] < 1800
    for colour in (GREEN, BLUE, YELLOW, RED):
        assert_uncovered(pixels, colour)
    assert_nothing_off_the_page(pixels)

    for headers in (True, False):
        out = contact_sheet(
            tmp_path / "sheet.png",
            [[solid(RED), solid(MAGENTA)], [solid(YELLOW), solid(CYAN)]],
            row_labels=[long, words],
            col_labels=[words, long],
            row_headers=[solid(GREEN), solid(BLUE)] if headers else None,
            col_headers=[solid(ORANGE), solid(PURPLE)] if headers else None,
            corner="photo \\ style",
            title=words,
        )
        pixels = read(out)
        colours = (RED, MAGENTA, YELLOW, CYAN) + ((GREEN, BLUE, ORANGE, PURPLE) if headers else ())
        for colour in colours:
            assert_uncovered(pixels, colour)
        assert_nothing_off_the_page(pixels)


def draw_both(folder: Path) -> list[tuple[Path, object]]:
    """Calls drawing a report and a sheet into ``folder``, as (path, thunk) pairs."""
    report = folder / "report.png"
    sheet = folder / "sheet.png"
    return [
        (
            report,
            lambda: make_report(
                report,
                content=solid(GREEN),
                styles=[solid(BLUE)],
                result=solid(RED),
                history=history(5),
                elapsed=1.0,
            ),
        ),
        (sheet, lambda: contact_sheet(sheet, [[solid(RED)]], row_labels=["r"], col_labels=["c"])),
    ]


def test_without_matplotlib_a_usage_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for path, draw in draw_both(tmp_path):
        with pytest.raises(UsageError, match=r"needs matplotlib.*pip install 'impasto\[report\]'"):
            draw()
        assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_drawing_leaves_the_existing_file_untouched(tmp_path, monkeypatch):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    def broken_draw(self):
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(FigureCanvasAgg, "draw", broken_draw)
    for path, draw in draw_both(tmp_path):
        path.write_bytes(b"the previous picture")
        with pytest.raises(RuntimeError, match="renderer broke"):
            draw()
        assert path.read_bytes() == b"the previous picture"
    assert sorted(os.listdir(tmp_path)) == ["report.png", "sheet.png"]  # no temporary files


def test_a_drawing_replaces_the_existing_file_whole(tmp_path):
    for path, draw in draw_both(tmp_path):
        path.write_bytes(b"x" * 10_000_000)  # larger than the picture: no tail may remain
        draw()
        with Image.open(path) as img:
            img.load()
        assert path.stat().st_size < 10_000_000
