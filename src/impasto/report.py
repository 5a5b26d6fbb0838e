"""Pictures of a run: :func:`make_report` (inputs, result and loss curves on one page) and
:func:`contact_sheet` (a labelled grid of results with the originals as headers).

Drawn with matplotlib (the ``report`` extra, imported only when drawing) on a Figure with an Agg
canvas, never pyplot, laid out by constrained layout and written atomically by ``save_image``.
"""

from __future__ import annotations

import os
import pathlib
import textwrap
from collections.abc import Mapping, Sequence, Sized
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np
import torch

from impasto.errors import UsageError
from impasto.image import check_output_path, save_image

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, FigureBase

__all__ = ["contact_sheet", "make_report", "require_matplotlib"]

_DPI = 100  # pixels per figure inch
_MARGIN = 32  # px around the page, outside the layout's own padding
_PAD = 12  # px around each axes, so two of them make the gap between images
_PAGE_WIDTH = 1600  # px, the report's width and the sheet's largest
_RESULT_SCALE = 1.6  # the result is shown this many times taller than the inputs
_INPUT_MAX_AREA = 0.8  # of the result's area, so a panorama beside a portrait stays smaller
_RESULT_MAX_HEIGHT = 720  # px, so a tall portrait does not make the page a poster
_PLOT_HEIGHT = 380  # px, the loss axes alone
_LEGEND_NAME = 220  # px of a term's name in the legend, so that a long one cannot crowd the plot
_SHEET_CELL = 400  # px, the longest side of a cell at most
_SHEET_TEXT_COLUMN = 180  # px for row labels when there are no row header images
_HEADER_SCALE = 0.75  # header images are smaller, so that they read as the originals

_INK, _SECONDARY, _FRAME, _EMPTY, _GRID = "#222222", "#666666", "#d0d0d0", "#f2f2f2", "#e6e6e6"
_HEADING: dict[str, Any] = {"fontsize": 20, "fontweight": "bold", "color": _INK}
_LABEL: dict[str, Any] = {"fontsize": 13, "fontweight": "bold", "color": _INK}
_DETAIL: dict[str, Any] = {"fontsize": 11, "color": _SECONDARY}


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
    """Draw one run on a picture 1600 px wide and write it to ``path`` (any save_image format).

    Content, style(s) and result (the largest) side by side, labelled with their sizes (and
    ``blend`` weights); under them each loss term of ``history`` (``Progress.losses`` per step)
    and their total on a log scale: a missing value leaves a gap, a term never above 0 is only
    listed. The ``title`` (default "Style transfer") is wrapped when long.

    Shape:
        each image ``(1, 3, H, W)`` in ``[0, 1]``, each of its own size.

    Raises:
        UsageError: matplotlib is missing or ``path`` cannot be written (before any drawing).
        ValueError: no style, an image not ``(1, 3, H, W)``, or ``style_labels`` or ``blend``
            whose length is not the number of styles. TypeError: an image that is not a tensor.
    """
    out = check_output_path(path)
    if len(styles) == 0:
        raise ValueError("make_report needs at least one style image, got none")
    _check_images([(content, "content"), (result, "result")])
    _check_images([(style, f"styles[{i}]") for i, style in enumerate(styles)])
    _check_length(style_labels, "style_labels", len(styles), "style images")
    _check_length(blend, "blend", len(styles), "style images", unit="weights")
    figure = _page("the run report (--report)")

    panels = [(content, "Content", _size_text(content))]
    for i, style in enumerate(styles):
        label = "Style" if len(styles) == 1 else f"Style {i + 1}"
        label += f": {style_labels[i]}" if style_labels is not None else ""
        weight = f"  ·  weight {blend[i]:.3g}" if blend is not None else ""
        panels.append((style, label, _size_text(style) + weight))
    panels.append((result, "Result", _size_text(result)))

    # Widths in units of the inputs' height h, then h chosen for the row to fill the page.
    aspects = [_aspect(image) for image, _, _ in panels]
    result_area = _RESULT_SCALE**2 * aspects[-1]
    units = [min(a, (_INPUT_MAX_AREA * result_area * a) ** 0.5) for a in aspects[:-1]]
    units.append(_RESULT_SCALE * aspects[-1])
    room = _PAGE_WIDTH - 2 * _MARGIN - 2 * _PAD * len(panels)
    h = min(room / sum(units), _RESULT_MAX_HEIGHT / _RESULT_SCALE)
    widths = [u * h for u in units]
    images = max(w / a for w, a in zip(widths, aspects))
    images += _line_px(_LABEL) + _line_px(_DETAIL) + 4 * _PAD
    plot = _PLOT_HEIGHT + 2 * _line_px(_LABEL) + _line_px(_DETAIL) + 4 * _PAD
    heading = _fit(title or "Style transfer", _PAGE_WIDTH - 2 * _MARGIN, figure, _HEADING, 3)
    _arrange(figure, _PAGE_WIDTH, images + plot, heading, left=True)

    # Two subfigures, so that the plot's tick labels and legend do not squeeze the images.
    top, bottom = figure.subfigures(2, 1, height_ratios=[images, plot])  # type: ignore[misc]
    row = top.subplots(1, len(panels), width_ratios=widths, squeeze=False)[0]
    for ax, (image, label, detail), width in zip(row, panels, widths):
        _show(ax, image, anchor="NW")  # top-left, so that the labels over the images line up
        ax.set_title(_fit(label, width, figure, _LABEL), loc="left", **_LABEL)
        ax.set_xlabel(_fit(detail, width, figure, _DETAIL), loc="left", **_DETAIL)

    steps = len(history)
    summary = f"{steps} step{'s' if steps != 1 else ''} in {_duration_text(elapsed)}"
    summary += f" ({_duration_text(elapsed / steps)} per step)" if steps else ""
    _plot_losses(bottom.subplots(), history, f"Loss per step  ·  {summary}")
    return save_image(_render(figure), out)


def _plot_losses(ax: Axes, history: Sequence[Mapping[str, float]], title: str) -> None:
    """One line per loss term and their total on a log scale, the final values in the legend."""
    names, values = _loss_table(history)
    curves = [(name, values[:, i], f"C{i}", 1.8) for i, name in enumerate(names)]
    if (values > 0).any(axis=0).sum() > 1:  # beside a single term, the total would hide it
        # A step where every term is missing stays missing rather than summing to 0.
        present = ~np.isnan(values).all(axis=1)
        total = np.where(present, np.nansum(values, axis=1), np.nan)
        curves.append(("total", total, "#111111", 2.6))
    steps = np.arange(1, len(history) + 1)
    marker = "o" if len(steps) == 1 else None  # a single step is a point, not a line
    for name, series, colour, width in curves:
        finite = series[np.isfinite(series)]
        name = _fit(name, _LEGEND_NAME, ax.figure, {"fontsize": 12})
        label = f"{name}  {_number_text(finite[-1]) if finite.size else 'none'}"
        if (series > 0).any():
            # Zero and negative values are left out of the line rather than clipped.
            shown = np.where(series > 0, series, np.nan)
            ax.plot(steps, shown, color=colour, linewidth=width, marker=marker, label=label)
        else:
            ax.plot([], [], linestyle="none", label=f"{label} (never above 0, not drawn)")

    ax.set_title(title, loc="left", **_LABEL)
    ax.set_xlabel("step", **_DETAIL)
    ax.set_ylabel("loss (weighted)", **_DETAIL)
    ax.spines[["top", "right"]].set_visible(False)
    ax.spines[["left", "bottom"]].set_color("#999999")
    ax.tick_params(labelsize=_DETAIL["fontsize"], colors=_SECONDARY, which="both")
    if any((series > 0).any() for _, series, _, _ in curves):
        ax.set(yscale="log", xlim=(1, max(len(steps), 2)), axisbelow=True)
        ax.grid(True, which="both", color=_GRID, linewidth=0.8)
    else:
        reason = "no steps recorded" if not history else "no loss above 0 to draw on a log scale"
        ax.text(0.5, 0.5, reason, transform=ax.transAxes, ha="center", va="center", **_DETAIL)
        ax.set(xticks=[], yticks=[])
    if curves:
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.02, 1),
            frameon=False,
            fontsize=12,
            title="final value",
            alignment="left",
        )


def _loss_table(history: Sequence[Mapping[str, float]]) -> tuple[list[str], np.ndarray]:
    """Term names in order of first appearance, and their values ``(steps, terms)`` or NaN."""
    names = list(dict.fromkeys(n for step in history for n, v in step.items() if _is_number(v)))
    table = np.full((len(history), len(names)), np.nan)
    for step, losses in enumerate(history):
        for i, name in enumerate(names):
            if _is_number(value := losses.get(name)):
                table[step, i] = float(value)
    table[~np.isfinite(table)] = np.nan  # an infinite value is as undrawable as a missing one
    return names, table


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


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
    """Lay out a labelled grid of images, at most 1600 px wide, and write it to ``path``.

    Typically ``cells[r][c]`` is photo ``r`` in style ``c``, ``row_headers`` the photos and
    ``col_headers`` the styles, shown smaller as a first column and a header row, labelled under
    them; without header images the labels are text over and left of the grid. Every image is
    fitted, its aspect ratio kept, in the same box (the median aspect ratio, at most 400 px a
    side); ``None`` is an empty grey box. ``corner`` is short text for the top-left corner (e.g.
    "photo \\\\ style"); a long ``title`` is wrapped.

    Shape:
        each image ``(1, 3, H, W)`` in ``[0, 1]``, each of its own size.

    Raises:
        UsageError: matplotlib is missing or ``path`` cannot be written (before any drawing).
        ValueError: no cells, a row, label list or header list whose length does not match the
            grid, or an image not ``(1, 3, H, W)``. TypeError: an image that is not a tensor.
    """
    out = check_output_path(path)
    rows, cols = len(cells), len(col_labels)
    if rows == 0 or cols == 0:
        raise ValueError(f"contact_sheet needs at least one row and one column, got {rows}x{cols}")
    _check_length(row_labels, "row_labels", rows, "rows of cells")
    for r, row in enumerate(cells):
        if len(row) != cols:
            message = f"cells row {r} has {len(row)} entries, but col_labels names {cols} columns"
            raise ValueError(message)
    _check_length(row_headers, "row_headers", rows, "rows of cells")
    _check_length(col_headers, "col_headers", cols, "columns")
    named = [(im, f"cells[{r}][{c}]") for r, row in enumerate(cells) for c, im in enumerate(row)]
    named += [(image, f"row_headers[{r}]") for r, image in enumerate(row_headers or [])]
    named += [(image, f"col_headers[{c}]") for c, image in enumerate(col_headers or [])]
    _check_images(named)
    figure = _page("the contact sheet (impasto sheet)")

    # The whole grid, headers included: the results start at row r0, column c0.
    r0, c0 = int(col_headers is not None), int(row_headers is not None)
    first: list[torch.Tensor | None] = list(row_headers or [None] * rows)
    grid = [[first[r]] * c0 + list(cells[r]) for r in range(rows)]
    if col_headers is not None:
        grid.insert(0, [*([None] * c0), *col_headers])

    aspects = [_aspect(image) for image, _ in named if image is not None]
    aspect = min(max(float(np.median(aspects)) if aspects else 1.0, 0.5), 2.0)
    text_column = 0 if c0 else _SHEET_TEXT_COLUMN
    room = _PAGE_WIDTH - 2 * _MARGIN - text_column - 2 * _PAD * (cols + c0)
    box_w = min(room / (cols + c0 * _HEADER_SCALE), _SHEET_CELL * min(aspect, 1.0))
    box_h = box_w / aspect
    col_w = [box_w * _HEADER_SCALE] * c0 + [box_w] * cols
    row_h = [box_h * _HEADER_SCALE] * r0 + [box_h] * rows
    # A first guess with room for labels of three lines; the trial layout below corrects it.
    width = 2 * _MARGIN + text_column + sum(col_w) + 2 * _PAD * len(col_w)
    guess = sum(row_h) + (2 * _PAD + 3 * _line_px(_LABEL)) * (len(grid) + 1)
    _arrange(figure, width, guess, "", left=False)

    spec = figure.add_gridspec(len(grid), cols + c0, width_ratios=col_w, height_ratios=row_h)
    axes: dict[tuple[int, int], Axes] = {}
    for r, c in np.ndindex(len(grid), cols + c0):
        if r < r0 and c < c0:
            continue
        anchor = "S" if r < r0 else "N" if c < c0 else "C"  # so that header labels line up
        ax = axes[r, c] = _show(figure.add_subplot(spec[r, c]), grid[r][c], aspect, anchor)
        if r < r0:
            ax.set_xlabel(_fit(col_labels[c - c0], col_w[c], figure, _LABEL, 2), **_LABEL)
        elif c < c0:
            ax.set_xlabel(_fit(row_labels[r - r0], col_w[c], figure, _LABEL, 2), **_LABEL)
        elif r == 0:  # no header images above
            ax.set_title(_fit(col_labels[c - c0], col_w[c], figure, _LABEL, 2), **_LABEL)
        if c == c0 == 0 and r >= r0:  # no header images on the left
            text = _fit(row_labels[r - r0], _SHEET_TEXT_COLUMN, figure, _LABEL, 3)
            ax.set_ylabel(text, rotation=0, ha="right", va="center", **_LABEL)
    if corner:  # diagonally above-left of the first result, out of the layout's way
        text = _fit(corner, _SHEET_TEXT_COLUMN, figure, _DETAIL)
        axes[r0, c0].annotate(
            text,
            (0, 1),
            xycoords="axes fraction",
            xytext=(-_PAD, _PAD),
            ha="right",
            va="bottom",
            textcoords="offset pixels",
            in_layout=False,
            **_DETAIL,
        )

    # Constrained layout's margins do not depend on the page size, so a trial layout tells how
    # much of the page is not cells; the page is then that plus the cells at their planned size.
    figure.draw_without_rendering()
    cell, page = axes[max(axes)].get_position(original=True), figure.bbox  # a box_w x box_h result
    other_w = page.width - cell.width * page.width / box_w * sum(col_w)
    other_h = page.height - 2 * _MARGIN - cell.height * page.height / box_h * sum(row_h)
    scale = min(1.0, (_PAGE_WIDTH - other_w) / sum(col_w))
    width = other_w + scale * sum(col_w)
    heading = _fit(title, width - 2 * _MARGIN, figure, _HEADING, 3) if title else ""
    _arrange(figure, width, other_h + scale * sum(row_h), heading, left=False)
    return save_image(_render(figure), out)


def _show(ax: Axes, image: torch.Tensor | None, aspect: float = 1.0, anchor: str = "C") -> Axes:
    """``image`` on ``ax`` with its aspect ratio kept and a hairline frame; None is a grey box."""
    ax.set(xticks=[], yticks=[], anchor=anchor)
    ax.spines[:].set_color(_FRAME)  # keeps a white image's edge visible on the white page
    if image is None:
        ax.set_facecolor(_EMPTY)
        ax.set_box_aspect(1 / aspect)
    else:
        ax.imshow(_pixels(image))
    return ax


def require_matplotlib(what: str = "the contact sheet (impasto sheet)") -> None:
    """Raise the UsageError saying how to install matplotlib now, before any work is done."""
    _page(what)


def _page(what: str) -> Figure:
    """A white, constrained-layout figure on an Agg canvas, or UsageError: matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401  (first, so a blocked package fails even when cached)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        message = f"{what} needs matplotlib, which is not installed: pip install 'impasto[report]'"
        raise UsageError(message) from error
    figure = Figure(dpi=_DPI, facecolor="white", layout="constrained")
    FigureCanvasAgg(figure)  # attaches itself as figure.canvas
    return figure


def _arrange(figure: Figure, width: float, content: float, heading: str, *, left: bool) -> None:
    """Size the page for ``content`` px of layout under ``heading``, which sits in the margin."""
    top = _MARGIN + (_line_px(_HEADING) * (heading.count("\n") + 1) + _PAD if heading else 0)
    width, height = round(width), round(content + top + _MARGIN)
    figure.set_size_inches(width / _DPI, height / _DPI)
    if heading:  # placed by hand: in the layout, matplotlib would pin it to the page's edge
        x, ha = ((_MARGIN + _PAD) / width, "left") if left else (0.5, "center")
        figure.suptitle(heading, x=x, y=1 - _MARGIN / height, ha=ha, va="top", **_HEADING)
    rect = (_MARGIN / width, _MARGIN / height, 1 - 2 * _MARGIN / width, content / height)
    engine: Any = figure.get_layout_engine()
    engine.set(w_pad=_PAD / _DPI, h_pad=_PAD / _DPI, wspace=0, hspace=0, rect=rect)


def _render(figure: Figure) -> torch.Tensor:
    """The drawn figure as an image tensor. Shape: returns ``(1, 3, H, W)``, float32 in [0, 1]."""
    canvas: Any = figure.canvas
    canvas.draw()
    rgb = torch.from_numpy(np.asarray(canvas.buffer_rgba())[..., :3].copy())  # not the canvas's
    return rgb.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def _fit(text: str, width: float, figure: FigureBase, style: dict[str, Any], lines: int = 1) -> str:
    """``text`` wrapped to ``width`` px on at most ``lines`` lines, the rest cut with "…", as
    the layout would shrink the images to make room for a label wider than its image."""
    from matplotlib.font_manager import FontProperties

    font = FontProperties(size=style["fontsize"], weight=style.get("fontweight", "normal"))
    renderer: Any = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    measured = renderer.get_text_width_height_descent(text, font, ismath=False)[0]
    if measured <= width:
        return text
    # Characters per line from this text's own mean glyph width, less a little for uneven lines.
    chars = max(4, int(0.95 * len(text) * width / measured))
    wrapped = textwrap.wrap(text, chars)  # a word longer than a line is split, not dropped
    if len(wrapped) > lines:
        wrapped = wrapped[: lines - 1] + [wrapped[lines - 1][: chars - 1].rstrip() + "…"]
    return "\n".join(wrapped)


def _check_images(named: Sequence[tuple[Any, str]]) -> None:
    """TypeError or ValueError for each (image, name) that is neither None nor ``(1, 3, H, W)``."""
    for image, what in named:
        expected = f"{what} must be an image tensor (1, 3, H, W)"
        if image is None:
            continue
        if not isinstance(image, torch.Tensor):
            raise TypeError(f"{expected}, got {type(image).__name__}")
        if image.dim() != 4 or image.shape[:2] != (1, 3) or image.numel() == 0:
            raise ValueError(f"{expected}, got {tuple(image.shape)}")


def _check_length(values: Sized | None, name: str, n: int, of: str, unit: str = "entries") -> None:
    if values is not None and len(values) != n:
        raise ValueError(f"{name} has {len(values)} {unit} for {n} {of}")


def _pixels(image: torch.Tensor) -> np.ndarray:
    """8-bit RGB, rounded as save_image rounds. Shape: ``(1, 3, H, W)`` -> ``(H, W, 3)``."""
    image = torch.nan_to_num(image.detach().to("cpu", torch.float32), nan=0.0).clamp(0.0, 1.0)
    return image[0].mul(255.0).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def _aspect(image: torch.Tensor) -> float:
    """Width over height."""
    return int(image.shape[-1]) / int(image.shape[-2])


def _size_text(image: torch.Tensor) -> str:
    return f"{int(image.shape[-1])} × {int(image.shape[-2])} px"


def _line_px(style: dict[str, Any]) -> float:
    """Height of a line of text in ``style``, with matplotlib's 1.2 line spacing, in px."""
    return style["fontsize"] * _DPI / 72 * 1.2


def _duration_text(seconds: float) -> str:
    """``0.42 s``, ``4.5 s``, ``12 s``, ``4 min 05 s``, ``1 h 02 min``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _number_text(value: float) -> str:
    """A loss value in four significant digits, in scientific notation when far from 1."""
    return f"{value:.3e}" if value != 0 and not 1e-3 <= abs(value) < 1e4 else f"{value:.4g}"
