"""What a batch is: its items (a photo, a style, the settings, the output's name), found from
folders, glob patterns or a pairs CSV, and checked before anything runs or is written.

No torch here: every mistake in the arguments is refused at once, before a network loads.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from impasto.config import INITS, StyleConfig, opt_name, parse_value
from impasto.errors import UsageError, did_you_mean

# What a folder or a pattern contributes: files with these extensions (any case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")
# Formats a batch writes; each keeps the run's record inside the file (BMP cannot).
OUTPUT_FORMATS = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tif": ".tif"}
OUTPUT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")
SIXTEEN_BIT_EXTENSIONS = (".png", ".tif", ".tiff")
# Settings of the whole batch, never of one row: one engine runs every item on one device.
BATCH_WIDE = ("device",)
PAIRS_COLUMNS = ("content", "style", "output")

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Item:
    """One picture of a batch: ``content`` in the style of ``style`` with ``config``, written
    as ``name`` in the output folder. ``where`` says where it was asked for (a CSV line)."""

    content: Path
    style: Path
    config: StyleConfig
    name: str
    bit_depth: int = 8
    where: str = ""

    @property
    def label(self) -> str:
        return f"{self.content.name} x {self.style.name}"

    def settings(self) -> dict[str, Any]:
        return settings_of(self.config, self.bit_depth)


def settings_of(config: StyleConfig, bit_depth: int) -> dict[str, Any]:
    """Everything besides the inputs that decides an output's pixels and file, as JSON gives
    it back (tuples as lists), so that settings compare equal to those stored."""
    return json.loads(json.dumps({"config": config.to_dict(), "bit_depth": bit_depth}))


def canonical(settings: dict[str, Any]) -> str:
    """One text per settings, for comparing and hashing them."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------------------------
# Finding the images


def is_image_name(path: PathLike) -> bool:
    name = os.path.basename(os.fspath(path))
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def find_images(sources: Iterable[PathLike], what: str) -> list[Path]:
    """The image files ``sources`` name, in order, each once: a folder gives its images (not
    those of its subfolders), a glob pattern (``*``, ``?``, ``[]``; ``**`` for any depth) the
    images it matches, a file itself."""
    found: dict[Path, Path] = {}
    for source in sources:
        text = os.fspath(source)
        path = Path(text)
        if glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise UsageError(f"{what} pattern '{text}' matches no file")
            images = [Path(m) for m in matches if is_image_name(m) and os.path.isfile(m)]
            if not images:
                files = f"{len(matches)} file" + "s" * (len(matches) != 1)
                raise UsageError(
                    f"{what} pattern '{text}' matches {files} but no image ({_extensions()})"
                )
        elif path.is_dir():
            images = sorted(p for p in path.iterdir() if p.is_file() and is_image_name(p))
            if not images:
                raise UsageError(f"{what} folder '{text}' has no images ({_extensions()})")
        elif path.exists():
            images = [path]
        else:
            raise UsageError(f"{what} '{text}' does not exist")
        for image in images:
            found.setdefault(image.resolve(), image)
    return list(found.values())


def _extensions() -> str:
    return ", ".join(IMAGE_EXTENSIONS)


# ----------------------------------------------------------------------------------------------
# The pairs CSV


@dataclass(frozen=True)
class _Row:
    content: Path
    style: Path
    config: StyleConfig
    output: str | None
    where: str


def read_pairs(path: PathLike, base: StyleConfig) -> list[_Row]:
    """The rows of a pairs CSV: ``content,style`` per line, or, under a header row that starts
    with ``content``, the columns content, style, output (a file name) and any style option
    (``style_weight``, ``size``, ...; an empty cell keeps the batch's value). Relative paths are
    relative to the CSV's folder; lines starting with ``#`` and blank lines are skipped."""
    csv_path = Path(path)
    shown = os.fspath(path)
    if csv_path.is_dir():
        raise UsageError(f"pairs file '{shown}' is a folder, not a CSV file")
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"pairs file '{shown}' does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"pairs file '{shown}' could not be read as UTF-8 text: {e}") from None
    rows: list[_Row] = []
    header: list[str] | None = None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        lines = [(reader.line_num, cells) for cells in reader]
    except csv.Error as e:
        raise UsageError(f"{shown} line {reader.line_num}: not valid CSV ({e})") from None
    for number, cells in lines:
        cells = [c.strip() for c in cells]
        if not any(cells) or cells[0].startswith("#"):
            continue
        where = f"{shown} line {number}"
        if header is None and cells[0].lower() == "content":
            header = _header(cells, where)
            continue
        rows.append(_row(cells, header, csv_path.parent, base, where))
    if not rows:
        raise UsageError(f"pairs file '{shown}' has no rows (expected content,style per line)")
    return rows


def _header(cells: list[str], where: str) -> list[str]:
    """The column names of a header row, each a pairs column or a StyleConfig field."""
    options = [f.name for f in fields(StyleConfig) if f.name not in BATCH_WIDE]
    known = (*PAIRS_COLUMNS, *options)
    names = [c.lower().removeprefix("--").replace("-", "_") for c in cells]
    for cell, name in zip(cells, names):
        if name in BATCH_WIDE:
            raise UsageError(
                f"{where}: '{cell}' is set for the whole batch (--{opt_name(name)}), not per row"
            )
        if name not in known:
            raise UsageError(
                f"{where}: unknown column '{cell}'{did_you_mean(name, known)}; columns are "
                "content, style, output and the style options (size, style_weight, ...)"
            )
    for name in ("content", "style"):
        if name not in names:
            raise UsageError(f"{where}: the header has no '{name}' column")
    repeated = {n for n in names if names.count(n) > 1}
    if repeated:
        raise UsageError(f"{where}: column '{sorted(repeated)[0]}' appears twice")
    return names


def _row(
    cells: list[str], header: list[str] | None, folder: Path, base: StyleConfig, where: str
) -> _Row:
    names = header or ["content", "style"]
    if len(cells) < len(names) or any(cells[len(names) :]):
        expected = ",".join(names)
        hint = (
            ""
            if header
            else "; to give options, start the file with a header row, e.g. content,style,style_weight"
        )
        raise UsageError(f"{where}: {len(cells)} columns, expected {len(names)} ({expected}){hint}")
    values = dict(zip(names, cells))
    paths = {}
    for column in ("content", "style"):
        if not values[column]:
            raise UsageError(f"{where}: the {column} cell is empty")
        given = Path(values[column])
        path = given if given.is_absolute() else folder / given
        if path.is_dir():
            raise UsageError(f"{where}: {column} image '{values[column]}' is a folder")
        if not path.exists():
            raise UsageError(f"{where}: {column} image '{values[column]}' does not exist")
        paths[column] = path
    options = {}
    for name, text in values.items():
        if name in PAIRS_COLUMNS or not text:
            continue
        try:
            options[name] = parse_value(name, text)
        except UsageError as e:
            raise UsageError(f"{where}: {e}") from None
    try:
        typed = StyleConfig.typed(options)
        config = StyleConfig(**{**base.to_dict(), **typed}).check_typed(typed) if options else base
    except UsageError as e:
        raise UsageError(f"{where}: {e}") from None
    return _Row(paths["content"], paths["style"], config, values.get("output") or None, where)


# ----------------------------------------------------------------------------------------------
# The plan


def plan(
    contents: Sequence[PathLike] = (),
    styles: Sequence[PathLike] = (),
    config: StyleConfig | None = None,
    *,
    pairs: PathLike | None = None,
    image_format: str = "png",
    bit_depth: int = 8,
) -> list[Item]:
    """Every item of a batch, those of one style together (so an engine computes a style's
    statistics once and keeps them), each with the name of its output file.

    Either ``contents`` x ``styles`` (folders, patterns or files: every photo in every style),
    or the rows of a ``pairs`` CSV (see :func:`read_pairs`).
    """
    config = config or StyleConfig()
    if image_format not in OUTPUT_FORMATS:
        raise UsageError(
            f"--format must be one of {', '.join(OUTPUT_FORMATS)}, not '{image_format}'"
            f"{did_you_mean(image_format, OUTPUT_FORMATS)}"
        )
    if bit_depth not in (8, 16):
        raise UsageError(f"--bit-depth must be 8 or 16, not {bit_depth}")
    if bit_depth == 16 and OUTPUT_FORMATS[image_format] not in SIXTEEN_BIT_EXTENSIONS:
        raise UsageError(f"--bit-depth 16 needs --format png or tif, not {image_format}")
    if pairs is not None and (contents or styles):
        raise UsageError("give photos and --style, or --pairs, not both")
    if pairs is not None:
        rows = read_pairs(pairs, config)
    else:
        if not contents:
            raise UsageError("give the photos (files, folders or patterns), or --pairs CSV")
        if not styles:
            raise UsageError("give at least one style image with --style")
        photos = find_images(contents, "content")
        paintings = find_images(styles, "style")
        rows = [_Row(c, s, config, None, "") for s in paintings for c in photos]
    for row in rows:
        _check_config(row.config, row.where)
    extension = OUTPUT_FORMATS[image_format]
    items = _named(rows, extension, bit_depth)
    order = {}
    for item in items:  # styles in the order first met, photos in their order within each
        order.setdefault(item.style.resolve(), len(order))
    return sorted(items, key=lambda item: order[item.style.resolve()])


def _check_config(config: StyleConfig, where: str) -> None:
    if config.init not in INITS:
        at = f"{where}: " if where else ""
        raise UsageError(
            f"{at}--init in a batch must be {', '.join(INITS)}; an image file ('{config.init}') "
            "starts a single run: use impasto stylize for it"
        )


def _named(rows: list[_Row], extension: str, bit_depth: int) -> list[Item]:
    """Items with their output names: ``photo__style.png``; rows whose derived names would
    collide (photos or styles of the same name, the same pair with other options) get a short
    fingerprint of their paths and settings, which stays the same from one run to the next."""
    chosen: dict[str, str] = {}  # lower-case name -> where it was asked for
    seen: dict[tuple[Path, Path, str, str | None], str] = {}
    derived: dict[str, list[int]] = {}
    names: list[str | None] = []
    for index, row in enumerate(rows):
        key = (
            row.content.resolve(),
            row.style.resolve(),
            canonical(settings_of(row.config, bit_depth)),
            row.output,
        )
        if key in seen:
            raise UsageError(f"{row.where or 'the batch'} repeats {seen[key] or 'an item'}")
        seen[key] = row.where
        if row.output is None:
            base = f"{row.content.stem}__{row.style.stem}{extension}"
            derived.setdefault(base.lower(), []).append(index)
            names.append(None)
            continue
        _check_output_name(row.output, bit_depth, row.where)
        if row.output.lower() in chosen:
            raise UsageError(
                f"{row.where}: output '{row.output}' is also written by {chosen[row.output.lower()]}"
            )
        chosen[row.output.lower()] = row.where
        names.append(row.output)
    for base, indices in derived.items():
        clash = len(indices) > 1 or base in chosen
        for index in indices:
            row = rows[index]
            stem = f"{row.content.stem}__{row.style.stem}"
            tag = f"__{_fingerprint(row, bit_depth)}" if clash else ""
            names[index] = f"{stem}{tag}{extension}"
    return [
        Item(row.content, row.style, row.config, str(name), bit_depth, row.where)
        for row, name in zip(rows, names)
    ]


def _fingerprint(row: _Row, bit_depth: int) -> str:
    text = "\n".join(
        [
            str(row.content.resolve()),
            str(row.style.resolve()),
            canonical(settings_of(row.config, bit_depth)),
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _check_output_name(name: str, bit_depth: int, where: str) -> None:
    if Path(name).name != name or name in (".", ".."):
        raise UsageError(f"{where}: output '{name}' must be a file name, without a folder")
    extension = Path(name).suffix.lower()
    if extension not in OUTPUT_EXTENSIONS:
        raise UsageError(
            f"{where}: output '{name}' must end in one of {', '.join(OUTPUT_EXTENSIONS)}"
        )
    if bit_depth == 16 and extension not in SIXTEEN_BIT_EXTENSIONS:
        raise UsageError(f"{where}: output '{name}' cannot hold 16 bits; use .png or .tif")


def check_output_folder(folder: PathLike, items: Sequence[Item]) -> Path:
    """The output folder, once it is known that it can be made and written, and that it holds
    none of the batch's inputs (a later run would take its results for photos)."""
    out = Path(folder)
    shown = os.fspath(folder)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output '{shown}' is a file, not a folder: give a folder for the results")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"cannot make output folder '{shown}': '{existing}' is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write in output folder '{shown}': '{existing}' is not writable")
    if out.exists():
        here = out.resolve()
        for item in items:
            for source in (item.content, item.style):
                if source.resolve().parent == here:
                    raise UsageError(
                        f"output folder '{shown}' holds '{source.name}', an input of this batch; "
                        "a later run would take the results for photos: choose another folder"
                    )
    return out
