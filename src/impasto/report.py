"""Pictures of a run, for people who would rather look than read.

:func:`make_report` draws one run on one page: the content, the style(s) and the result side by
side, and under them the loss of each term over the steps. :func:`contact_sheet` lays out a grid
of results (several styles on one photo, one style on several photos, or every pair), with the
originals as a header row and column.

Both draw with matplotlib, an optional extra (``pip install 'impasto[report]'``), imported only
when a picture is drawn. They use a :class:`matplotlib.figure.Figure` on an Agg canvas, never
pyplot: no global state is touched, no display is needed, and two pictures can be drawn at once.
The figure is rendered to pixels and written through :func:`impasto.image.save_image`, so the
file is written atomically (an existing file is replaced whole or left alone) in any format
save_image knows, PNG being the natural one.

Everything is laid out in pixels rather than left to matplotlib's layout engines: the images are
resized once (antialiased) to the size they are shown at and pasted pixel for pixel, so a
picture looks the same whatever the inputs' sizes, and nothing is resampled twice.

Argument mistakes (label lists whose length does not match the images, a tensor of the wrong
shape) are programming errors and raise :class:`ValueError` (:class:`TypeError` for an image that
is not a tensor at all); a missing matplotlib raises
:class:`~impasto.errors.UsageError`, as does an output path that cannot be written.
"""

from __future__ import annotations

import math
import os
import pathlib
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from impasto.errors import UsageError
from impasto.image import check_output_path, resize_to, save_image

if TYPE_CHECKING:
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure
    from matplotlib.text import Text

__all__ = ["contact_sheet", "make_report"]

# Pixels per inch of the figures. Everything below is in pixels; font sizes are in points
# (1 pt = DPI / 72 px), so at 100 dpi a 12 pt label is about 17 px tall.
_DPI = 100

_REPORT_WIDTH = 1600  # px; the image row and the plot fill it
_MARGIN = 48  # outer margin, px
_GAP = 28  # between images, px
_RESULT_SCALE = 1.6  # the result is shown this many times taller than the inputs
_INPUT_MAX_AREA = 0.8  # an input covers at most this much of the result's area
_RESULT_MAX_HEIGHT = 720  # px; a tall portrait must not make the page a poster
_PLOT_HEIGHT = 380  # px, the loss axes alone
_LEGEND_ROOM = 270  # px right of the loss axes, for the legend
_LEGEND_NAME = 20  # characters of a term's name in the legend, at most

_SHEET_MAX_WIDTH = 1600  # px; a wider grid gets smaller cells
_SHEET_CELL = 400  # px, the longest side of a cell at most
_SHEET_TEXT_COLUMN = 180  # px, row labels when there are no row header images
_SHEET_MIN_WIDTH = 480  # px, so that a single cell still has room for a title

_INK = "#222222"
_SECONDARY = "#666666"
_FRAME = "#d0d0d0"
_EMPTY = "#f2f2f2"
_GRID = "#e6e6e6"
_TOTAL_COLOUR = "#111111"
# Colours of the loss terms, in order of first appearance (matplotlib's tab10, less its grey).
_TERM_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#17becf", "#bcbd22",
)  # fmt: skip

_ASCENT = 0.76  # height of an "l" in DejaVu Sans, matplotlib's font, in ems
_TITLE_PT = 20
_SUBTITLE_PT = 13
_LABEL_PT = 13
_DETAIL_PT = 11
_TICK_PT = 11

_MISSING_MATPLOTLIB = (
    "{what} needs matplotlib, which is not installed: pip install 'impasto[report]'"
)


# --------------------------------------------------------------------------------------------
# The run report
# --------------------------------------------------------------------------------------------


def make_report(
    path: str | os.PathLike[str],
    *,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    result: torch.Tensor,
    history: Sequence[Mapping[str, float]],
    elapsed: float,
    style_labels: Sequence[str] | None = None,
    title: str | None = None,
    blend: Sequence[float] | None = None,
) -> pathlib.Path:
    """Draw one run on one picture and write it to ``path``, atomically.

    The top row shows the content image, each style image and the result (the largest), each
    with its label and size; the style weights of a blend are shown under the styles' labels.
    Below, one curve per loss term over the steps (log scale) and their total. The title (by
    default "Style transfer") is followed by the number of steps and the time taken. The
    picture is 1600 px wide; its height follows from the images' aspect ratios.

    Args:
        path: the output file; any extension :func:`~impasto.image.save_image` writes (PNG is
            the natural choice for text and lines).
        content: the content image.
        styles: the style image(s), one or more.
        result: the stylised image.
        history: the loss terms of each step, in order, one mapping per step (``Progress.losses``
            of each step), e.g. ``{"content": 0.4, "style": 1.2, "tv": 0.01}``. Any names are
            drawn, in the order they first appear; a term missing from some steps leaves a gap;
            a term never above 0 cannot go on a log scale and is listed beside the plot instead.
            The total is drawn when more than one term is.
        elapsed: the run's duration in seconds.
        style_labels: one label per style (e.g. the file names), shown after "Style" (or
            "Style 1", "Style 2"...).
        title: a short heading (e.g. the main options); long text is wrapped.
        blend: one weight per style, shown under its label.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Shape:
        ``content``, ``result`` and each style: ``(1, 3, H, W)``, values in ``[0, 1]``; each
        may have its own size.

    Raises:
        UsageError: matplotlib is not installed, or ``path`` cannot be written (checked before
            anything is drawn).
        ValueError: no style, a tensor that is not ``(1, 3, H, W)``, or ``style_labels`` or
            ``blend`` whose length differs from the number of styles.
        TypeError: an image that is not a tensor.
    """
    out = check_output_path(path)
    _check_image(content, "content")
    _check_image(result, "result")
    if len(styles) == 0:
        raise ValueError("make_report needs at least one style image, got none")
    for i, style in enumerate(styles):
        _check_image(style, f"styles[{i}]")
    if style_labels is not None and len(style_labels) != len(styles):
        raise ValueError(
            f"style_labels has {len(style_labels)} entries for {len(styles)} style images"
        )
    if blend is not None and len(blend) != len(styles):
        raise ValueError(f"blend has {len(blend)} weights for {len(styles)} style images")
    figure_cls, canvas_cls = _matplotlib("the run report (--report)")

    panels: list[tuple[torch.Tensor, str, str]] = [(content, "Content", _size_text(content))]
    for i, style in enumerate(styles):
        label = "Style" if len(styles) == 1 else f"Style {i + 1}"
        if style_labels is not None:
            label += f": {style_labels[i]}"
        detail = _size_text(style)
        if blend is not None:
            detail += f"  ·  weight {blend[i]:.3g}"
        panels.append((style, label, detail))
    panels.append((result, "Result", _size_text(result)))

    # Sizes: every input h px tall, the result RESULT_SCALE * h, the row filling the width. An
    # input that would then cover more than INPUT_MAX_AREA of the result's area (a panorama
    # next to a portrait) is shown smaller, so that the result stays the largest picture.
    aspects = [_aspect(image) for image, _, _ in panels]
    result_area = _RESULT_SCALE**2 * aspects[-1]  # in units of h * h
    # Width of each input in units of h: a * h' with a * h'^2 at most INPUT_MAX_AREA * area.
    units = [min(a, math.sqrt(_INPUT_MAX_AREA * result_area * a)) for a in aspects[:-1]]
    units.append(_RESULT_SCALE * aspects[-1])
    room = _REPORT_WIDTH - 2 * _MARGIN - _GAP * (len(panels) - 1)
    small = min(room / sum(units), _RESULT_MAX_HEIGHT / _RESULT_SCALE)
    widths = [max(1, round(u * small)) for u in units]
    heights = [max(1, round(w / a)) for w, a in zip(widths, aspects)]

    title_lines = _wrap(title or "Style transfer", _REPORT_WIDTH - 2 * _MARGIN, _TITLE_PT)
    steps = len(history)
    subtitle = f"{steps} step{'s' if steps != 1 else ''} in {_duration_text(elapsed)}"
    if steps:
        subtitle += f"  ({_duration_text(elapsed / steps)} per step)"

    # Vertical layout, from the top, in pixels.
    title_top = _MARGIN
    subtitle_top = title_top + len(title_lines) * _line_px(_TITLE_PT) + 6
    labels_top = subtitle_top + _line_px(_SUBTITLE_PT) + 28
    images_top = labels_top + _line_px(_LABEL_PT) + _line_px(_DETAIL_PT) + 8
    plot_top = images_top + max(heights) + 64
    plot_bottom = plot_top + _PLOT_HEIGHT
    height = plot_bottom + 56 + _MARGIN  # room for the x label and a note under the plot

    page = _Page(figure_cls, canvas_cls, _REPORT_WIDTH, height)
    page.text(_MARGIN, title_top, "\n".join(title_lines), size=_TITLE_PT, weight="bold")
    page.text(_MARGIN, subtitle_top, subtitle, size=_SUBTITLE_PT, color=_SECONDARY)

    x = _MARGIN
    for (image, label, detail), w, h in zip(panels, widths, heights):
        page.text(x, labels_top, label, size=_LABEL_PT, weight="bold", max_width=w)
        page.text(
            x,
            labels_top + _line_px(_LABEL_PT),
            detail,
            size=_DETAIL_PT,
            color=_SECONDARY,
            max_width=w,
        )
        page.image(image, x, images_top, w, h)
        x += w + _GAP

    _draw_losses(page, history, plot_top)
    return save_image(page.render(), out)


def _draw_losses(page: _Page, history: Sequence[Mapping[str, float]], top: int) -> None:
    """The loss curves, log scale, in a box of _PLOT_HEIGHT px starting ``top`` px down."""
    left = _MARGIN + 72  # room for the tick labels and the y label
    ax = page.axes(left, top, _REPORT_WIDTH - left - _MARGIN - _LEGEND_ROOM, _PLOT_HEIGHT)
    ax.set_title(
        "Loss per step", loc="left", fontsize=_LABEL_PT, fontweight="bold", color=_INK, pad=12
    )

    names, values = _loss_table(history)
    steps = np.arange(1, len(history) + 1)
    curves: list[tuple[str, np.ndarray, str, float]] = []
    for i, name in enumerate(names):
        curves.append((name, values[:, i], _TERM_COLOURS[i % len(_TERM_COLOURS)], 1.8))
    if sum(_has_positive(values[:, i]) for i in range(len(names))) > 1:
        # (With one curve on the plot the total would hide it.) nansum would turn a step where
        # every term is missing into 0; keep it missing.
        present = ~np.isnan(values).all(axis=1)
        total = np.where(present, np.nansum(values, axis=1), np.nan)
        curves.append(("total", total, _TOTAL_COLOUR, 2.6))

    positive = [_has_positive(series) for _, series, _, _ in curves]
    drawable = [curve for curve, ok in zip(curves, positive) if ok]
    unplotted = [curve[0] for curve, ok in zip(curves, positive) if not ok]
    if not drawable:
        reason = "no steps recorded" if not history else "no loss above 0 to draw on a log scale"
        ax.text(
            0.5,
            0.5,
            reason,
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=_LABEL_PT,
            color=_SECONDARY,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        return

    marker = "o" if len(steps) == 1 else None  # a single step is a point, not a line
    for name, series, colour, width in drawable:
        # Log scale: zero and negative values are left out of the line rather than clipped.
        shown = np.where(series > 0, series, np.nan)
        finite = series[np.isfinite(series)]
        label = name if len(name) <= _LEGEND_NAME else name[: _LEGEND_NAME - 1] + "…"
        if finite.size:
            label += f"  {_number_text(finite[-1])}"
        ax.plot(steps, shown, color=colour, linewidth=width, label=label, marker=marker)
    ax.set_yscale("log")
    ax.set_xlim(1, max(len(steps), 2))
    ax.set_xlabel("step", fontsize=_DETAIL_PT + 1, color=_SECONDARY)
    ax.set_ylabel("loss (weighted)", fontsize=_DETAIL_PT + 1, color=_SECONDARY)
    ax.grid(True, which="major", color=_GRID, linewidth=1.0)
    ax.grid(True, which="minor", axis="y", color=_GRID, linewidth=0.5, alpha=0.6)
    ax.set_axisbelow(True)
    legend = ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        frameon=False,
        fontsize=_DETAIL_PT + 1,
        title="final value",
        title_fontsize=_DETAIL_PT,
        alignment="left",
        handlelength=2.2,
    )
    legend.get_title().set_color(_SECONDARY)
    for text in legend.get_texts():
        text.set_color(_INK)
    if unplotted:
        page.text(
            _REPORT_WIDTH - _MARGIN - _LEGEND_ROOM + 16,
            top + _PLOT_HEIGHT - 2 * _line_px(_DETAIL_PT),
            "never above 0, not drawn:\n" + ", ".join(unplotted),
            size=_DETAIL_PT,
            color=_SECONDARY,
            max_width=_LEGEND_ROOM - 16,
        )


def _loss_table(history: Sequence[Mapping[str, float]]) -> tuple[list[str], np.ndarray]:
    """Term names in order of first appearance, and their values, NaN where a step lacks one.

    Shape:
        returns ``(steps, terms)``, float64.
    """
    names: list[str] = []
    for losses in history:
        for name, value in losses.items():
            if name not in names and _is_number(value):
                names.append(name)
    table = np.full((len(history), len(names)), np.nan)
    column = {name: i for i, name in enumerate(names)}
    for step, losses in enumerate(history):
        for name, value in losses.items():
            if name in column and _is_number(value):
                table[step, column[name]] = float(value)
    table[~np.isfinite(table)] = np.nan  # an infinite value is as undrawable as a missing one
    return names, table


def _has_positive(series: np.ndarray) -> bool:
    """Whether any value can be drawn on a log scale."""
    return bool(np.any(np.isfinite(series) & (series > 0)))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------
# The contact sheet
# --------------------------------------------------------------------------------------------


def contact_sheet(
    path: str | os.PathLike[str],
    cells: Sequence[Sequence[torch.Tensor | None]],
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    row_headers: Sequence[torch.Tensor | None] | None = None,
    col_headers: Sequence[torch.Tensor | None] | None = None,
    corner: str | None = None,
    title: str | None = None,
) -> pathlib.Path:
    """Lay out a grid of images with labelled rows and columns and write it to ``path``.

    Typically rows are content photos and columns are styles: ``cells[r][c]`` is photo ``r`` in
    style ``c``, ``row_headers`` are the photos and ``col_headers`` the styles, shown as a first
    column and a header row, each with its label under it. Without header images the labels are
    text alone, column labels over the grid and row labels left of it. Works for one row, one
    column, or any grid; every cell gets the same box (the images' median aspect ratio), each
    image fitted in it with its aspect ratio kept. A ``None`` cell or header is drawn as an
    empty grey box. The sheet is at most 1600 px wide; cells are at most 400 px on a side.

    Args:
        path: the output file; any extension :func:`~impasto.image.save_image` writes.
        cells: the rows of the grid, each with one entry per column.
        row_labels: one label per row.
        col_labels: one label per column.
        row_headers: optional, one image (or None) per row, shown first in its row.
        col_headers: optional, one image (or None) per column, shown over its column.
        corner: optional short text for the top-left corner, e.g. "photo \\\\ style".
        title: optional heading over the sheet; long text is wrapped.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Shape:
        every image ``(1, 3, H, W)``, values in ``[0, 1]``, each of any size.

    Raises:
        UsageError: matplotlib is not installed, or ``path`` cannot be written (checked before
            anything is drawn).
        ValueError: no cells, a row whose length differs from ``len(col_labels)``, a label or
            header list whose length differs from the number of rows or columns, or a tensor
            that is not ``(1, 3, H, W)``.
        TypeError: an image that is not a tensor (nor None).
    """
    out = check_output_path(path)
    rows, cols = len(cells), len(col_labels)
    if rows == 0 or cols == 0:
        raise ValueError(f"contact_sheet needs at least one row and one column, got {rows}x{cols}")
    if len(row_labels) != rows:
        raise ValueError(f"row_labels has {len(row_labels)} entries for {rows} rows of cells")
    for r, row in enumerate(cells):
        if len(row) != cols:
            raise ValueError(
                f"cells row {r} has {len(row)} entries, but col_labels names {cols} columns"
            )
    if row_headers is not None and len(row_headers) != rows:
        raise ValueError(f"row_headers has {len(row_headers)} entries for {rows} rows of cells")
    if col_headers is not None and len(col_headers) != cols:
        raise ValueError(f"col_headers has {len(col_headers)} entries for {cols} columns")
    named: list[tuple[torch.Tensor | None, str]] = [
        (image, f"cells[{r}][{c}]") for r, row in enumerate(cells) for c, image in enumerate(row)
    ]
    named += [(image, f"row_headers[{r}]") for r, image in enumerate(row_headers or [])]
    named += [(image, f"col_headers[{c}]") for c, image in enumerate(col_headers or [])]
    images = [image for image, _ in named if image is not None]
    for image, what in named:
        if image is not None:
            _check_image(image, what)
    figure_cls, canvas_cls = _matplotlib("the contact sheet (impasto sheet)")

    # One box shape for every cell, so rows and columns line up.
    aspect = float(np.median([_aspect(image) for image in images])) if images else 1.0
    aspect = min(max(aspect, 0.5), 2.0)
    has_row_images = row_headers is not None
    has_col_images = col_headers is not None
    box_cols = cols + (1 if has_row_images else 0)
    text_column = 0 if has_row_images else _SHEET_TEXT_COLUMN + _GAP
    room = _SHEET_MAX_WIDTH - 2 * _MARGIN - text_column - _GAP * (box_cols - 1)
    box_w = min(room / box_cols, _SHEET_CELL if aspect >= 1 else _SHEET_CELL * aspect)
    box_w = max(1, math.floor(box_w))
    box_h = max(1, round(box_w / aspect))

    caption = _line_px(_LABEL_PT) + 14  # a label under an image, with its spacing
    grid_w = text_column + box_cols * box_w + (box_cols - 1) * _GAP
    width = max(grid_w + 2 * _MARGIN, _SHEET_MIN_WIDTH)
    left = (width - grid_w) // 2

    # Columns: x of the row-label area (text or header image), then of each column of cells.
    first_x = left
    cell_x = [left + text_column + (box_cols - cols + c) * (box_w + _GAP) for c in range(cols)]
    first_w = box_w if has_row_images else _SHEET_TEXT_COLUMN

    # Rows, from the top.
    y = _MARGIN
    title_lines = _wrap(title, width - 2 * _MARGIN, _TITLE_PT) if title else []
    title_top = y
    if title_lines:
        y += len(title_lines) * _line_px(_TITLE_PT) + 24
    header_top = y
    header_h = box_h if has_col_images else _line_px(_LABEL_PT)
    y += header_h + (caption if has_col_images else 12) + 16
    row_gap = caption if has_row_images else _GAP
    row_top = [y + r * (box_h + row_gap) for r in range(rows)]
    height = row_top[-1] + box_h + (caption if has_row_images else 0) + _MARGIN

    page = _Page(figure_cls, canvas_cls, width, height)
    if title_lines:
        page.text(left, title_top, "\n".join(title_lines), size=_TITLE_PT, weight="bold")

    # Header row: the column images with their labels under them, or the labels alone.
    for c in range(cols):
        if has_col_images:
            assert col_headers is not None
            # On the box's bottom, so that the labels under the header images line up.
            label_top = 6 + page.fitted_image(
                col_headers[c], cell_x[c], header_top, box_w, box_h, bottom_aligned=True
            )
        else:
            label_top = header_top
        page.text(
            cell_x[c] + box_w / 2,
            label_top,
            str(col_labels[c]),
            size=_LABEL_PT,
            weight="bold",
            ha="center",
            max_width=box_w,
        )
    if corner:
        page.text(
            first_x + first_w / 2,
            header_top + header_h / 2,
            corner,
            size=_DETAIL_PT + 1,
            color=_SECONDARY,
            ha="center",
            va="center",
            max_width=first_w,
        )
    # A hairline under the header row, so the originals read as headers, not as results.
    page.hline(left, left + grid_w, row_top[0] - 14)
    if has_row_images:
        rule_x = cell_x[0] - _GAP // 2
        page.vline(rule_x, header_top, height - _MARGIN)

    for r in range(rows):
        top = row_top[r]
        if has_row_images:
            assert row_headers is not None
            # The label right under the picture, even when it is shorter than its box.
            label_top = 6 + page.fitted_image(row_headers[r], first_x, top, box_w, box_h)
            page.text(
                first_x + box_w / 2,
                label_top,
                str(row_labels[r]),
                size=_LABEL_PT,
                weight="bold",
                ha="center",
                max_width=box_w,
            )
        else:
            page.text(
                first_x + _SHEET_TEXT_COLUMN,
                top + box_h / 2,
                _wrap_label(str(row_labels[r])),
                size=_LABEL_PT,
                weight="bold",
                ha="right",
                va="center",
                max_width=_SHEET_TEXT_COLUMN,
            )
        for c in range(cols):
            page.fitted_image(cells[r][c], cell_x[c], top, box_w, box_h)

    return save_image(page.render(), out)


def _wrap_label(text: str) -> str:
    """A row label on at most three lines of the text column (the rest is cut by max_width)."""
    lines = _wrap(text, _SHEET_TEXT_COLUMN, _LABEL_PT)
    return "\n".join(lines[:3])


# --------------------------------------------------------------------------------------------
# Drawing in pixels
# --------------------------------------------------------------------------------------------


class _Page:
    """A white figure addressed in pixels from its top-left corner."""

    def __init__(self, figure_cls: type, canvas_cls: type, width: int, height: int) -> None:
        self.width, self.height = int(width), int(height)
        self.figure: Figure = figure_cls(
            figsize=(self.width / _DPI, self.height / _DPI), dpi=_DPI, facecolor="white"
        )
        self.canvas = canvas_cls(self.figure)
        self._renderer: RendererBase = self.canvas.get_renderer()

    def _y(self, top: float) -> float:
        """Matplotlib's y (pixels up from the bottom) of a point ``top`` px down from the top."""
        return self.height - top

    def text(
        self,
        x: float,
        top: float,
        text: str,
        *,
        size: float,
        color: str = _INK,
        weight: str = "normal",
        ha: str = "left",
        va: str = "top",
        max_width: float | None = None,
    ) -> Text:
        """Text anchored at (x, top); cut with an ellipsis where it is wider than max_width.

        ``va="top"`` puts the top of the tallest letters at ``top``.
        """
        from matplotlib.transforms import IdentityTransform

        y = self._y(top)
        if va == "top" and "\n" not in text:
            # Aligning the top of each line's own bounding box would set "Content" and "Style"
            # at different heights (an "l" or "y" changes the box); align the baselines instead.
            y -= _ASCENT * size * _DPI / 72
            va = "baseline"
        artist = self.figure.text(
            x,
            y,
            text,
            transform=IdentityTransform(),
            fontsize=size,
            color=color,
            fontweight=weight,
            ha=ha,
            va=va,
            linespacing=1.25,
        )
        if max_width is not None:
            self._fit(artist, max_width)
        return artist

    def _fit(self, artist: Text, max_width: float) -> None:
        """Shorten each line of ``artist`` until it fits in ``max_width`` pixels."""
        lines = artist.get_text().split("\n")
        fitted = []
        for line in lines:
            artist.set_text(line)
            if self._text_width(artist) <= max_width:
                fitted.append(line)
                continue
            # Binary search the longest prefix that fits with its ellipsis.
            low, high = 0, len(line)
            while low < high:
                middle = (low + high + 1) // 2
                artist.set_text(line[:middle].rstrip() + "…")
                if self._text_width(artist) <= max_width:
                    low = middle
                else:
                    high = middle - 1
            fitted.append(line[:low].rstrip() + "…" if low else "…")
        artist.set_text("\n".join(fitted))

    def _text_width(self, artist: Text) -> float:
        return float(artist.get_window_extent(renderer=self._renderer).width)

    def image(self, image: torch.Tensor, x: float, top: float, width: int, height: int) -> None:
        """Paste ``image`` resized to exactly width x height px, with its top-left at (x, top)."""
        pixels = _to_pixels(resize_to(_as_cpu_float(image), height, width))
        self.figure.figimage(
            pixels, xo=round(x), yo=round(self._y(top)) - height, origin="upper", zorder=2
        )
        self.frame(round(x), round(top), width, height)

    def fitted_image(
        self,
        image: torch.Tensor | None,
        x: float,
        top: float,
        width: int,
        height: int,
        *,
        bottom_aligned: bool = False,
    ) -> float:
        """``image`` as large as fits in the box, centred (or sitting on the box's bottom).

        An empty grey box stands for None. Returns how far down the picture ends, for a label
        under it.
        """
        if image is None:
            self.box(x, top, width, height, face=_EMPTY)
            return top + height
        aspect = _aspect(image)
        w, h = width, round(width / aspect)
        if h > height:
            w, h = round(height * aspect), height
        w, h = max(1, w), max(1, h)
        image_top = top + (height - h if bottom_aligned else (height - h) // 2)
        self.image(image, x + (width - w) // 2, image_top, w, h)
        return image_top + h

    def frame(self, x: float, top: float, width: int, height: int) -> None:
        """A hairline just outside an image, so white images keep their edges on white."""
        self.box(x - 1, top - 1, width + 2, height + 2, face="none")

    def box(self, x: float, top: float, width: float, height: float, *, face: str) -> None:
        from matplotlib.patches import Rectangle
        from matplotlib.transforms import IdentityTransform

        self.figure.add_artist(
            Rectangle(
                (x, self._y(top) - height),
                width,
                height,
                transform=IdentityTransform(),
                facecolor=face,
                edgecolor=_FRAME,
                linewidth=0.75,
                zorder=1,
            )
        )

    def hline(self, x0: float, x1: float, top: float) -> None:
        self._line([x0, x1], [top, top])

    def vline(self, x: float, top0: float, top1: float) -> None:
        self._line([x, x], [top0, top1])

    def _line(self, xs: list[float], tops: list[float]) -> None:
        from matplotlib.lines import Line2D
        from matplotlib.transforms import IdentityTransform

        self.figure.add_artist(
            Line2D(
                xs,
                [self._y(t) for t in tops],
                transform=IdentityTransform(),
                color=_FRAME,
                linewidth=1.0,
            )
        )

    def axes(self, x: float, top: float, width: float, height: float) -> Any:
        """Plain axes occupying the given box (its frame; tick labels go outside it)."""
        ax = self.figure.add_axes(
            (
                x / self.width,
                (self.height - top - height) / self.height,
                width / self.width,
                height / self.height,
            ),
            facecolor="white",
        )
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        for side in ("left", "bottom"):
            ax.spines[side].set_color("#999999")
        ax.tick_params(labelsize=_TICK_PT, colors=_SECONDARY, which="both")
        return ax

    def render(self) -> torch.Tensor:
        """The finished figure as an image tensor.

        Shape:
            returns ``(1, 3, height, width)``, float32 in ``[0, 1]``.
        """
        self.canvas.draw()
        rgba = np.asarray(self.canvas.buffer_rgba())
        rgb = torch.from_numpy(rgba[..., :3].copy())  # the buffer is the canvas's own memory
        return rgb.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def require_matplotlib(what: str = "the contact sheet (impasto sheet)") -> None:
    """Raise the UsageError saying how to install matplotlib now, before any work is done."""
    _matplotlib(what)


def _matplotlib(what: str) -> tuple[type, type]:
    """matplotlib's Figure and Agg canvas classes, or a UsageError saying how to install it."""
    try:
        # The package itself first: a broken or blocked matplotlib must fail here even when
        # its submodules were imported earlier.
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise UsageError(_MISSING_MATPLOTLIB.format(what=what)) from error
    return Figure, FigureCanvasAgg


def _check_image(image: Any, what: str) -> None:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{what} must be an image tensor (1, 3, H, W), got {type(image).__name__}")
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3 or image.numel() == 0:
        raise ValueError(f"{what} must be an image tensor (1, 3, H, W), got {tuple(image.shape)}")


def _as_cpu_float(image: torch.Tensor) -> torch.Tensor:
    return torch.nan_to_num(image.detach().to("cpu", torch.float32), nan=0.0).clamp(0.0, 1.0)


def _to_pixels(image: torch.Tensor) -> np.ndarray:
    """8-bit RGB pixels, rounded as save_image rounds. Shape: ``(1, 3, H, W)`` -> ``(H, W, 3)``."""
    levels = image[0].mul(255.0).round().to(torch.uint8)
    return levels.permute(1, 2, 0).contiguous().numpy()


def _aspect(image: torch.Tensor) -> float:
    """Width over height."""
    return int(image.shape[-1]) / int(image.shape[-2])


def _size_text(image: torch.Tensor) -> str:
    return f"{int(image.shape[-1])} × {int(image.shape[-2])} px"


def _line_px(points: float) -> int:
    """Height of one line of text at ``points``, with the 1.25 line spacing used here."""
    return math.ceil(points * _DPI / 72 * 1.25)


def _wrap(text: str, width_px: float, points: float) -> list[str]:
    """Lines of ``text`` that fit ``width_px``, from an average glyph width (0.55 em)."""
    chars = max(8, int(width_px / (0.55 * points * _DPI / 72)))
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, chars) or [""]
    return lines


def _duration_text(seconds: float) -> str:
    """``0.42 s``, ``12.3 s``, ``4 min 05 s``, ``1 h 02 min``."""
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.2g} s" if seconds < 1 else f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _number_text(value: float) -> str:
    """A loss value in four significant digits, in scientific notation when far from 1."""
    if value != 0 and not 1e-3 <= abs(value) < 1e4:
        return f"{value:.3e}"
    return f"{value:.4g}"
