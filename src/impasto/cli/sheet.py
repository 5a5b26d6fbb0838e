"""``impasto sheet``: every photo in every style, each written, and a contact sheet of them all."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from impasto.cli.options import add_config_options, config_from_args
from impasto.cli.stylize import CACHE_HELP, summary


def add_parsers(sub: Any) -> None:
    sh = sub.add_parser(
        "sheet",
        help="several styles on one photo, or one style on several photos: a contact sheet",
        description="Stylize every PHOTO with every --style (each on its own, not blended), write "
        "each result, and a labelled contact sheet of them all (needs the 'report' extra).",
    )
    sh.add_argument("photos", nargs="+", metavar="PHOTO", help="content photos (the sheet's rows)")
    sh.add_argument(
        "--style",
        dest="styles",
        action="append",
        required=True,
        metavar="STYLE",
        help="a style image (repeatable; the sheet's columns)",
    )
    sh.add_argument("-o", "--output", required=True, help="the contact sheet (.png, .jpg, ...)")
    sh.add_argument(
        "--results-dir",
        help="where each result goes (default: next to the sheet, named PHOTO_STYLE.png)",
    )
    sh.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    sh.add_argument("--cache-dir", help=CACHE_HELP)
    add_config_options(sh)
    sh.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from impasto.cli.progress import ProgressBar, RunRecorder, fanout
    from impasto.engine import Stylizer
    from impasto.files import check_not_an_input
    from impasto.image import check_output_path, load_image, save_image
    from impasto.record import RunRecord
    from impasto.report import contact_sheet, require_matplotlib

    config = config_from_args(args)
    sheet = check_output_path(args.output)
    require_matplotlib()
    folder = Path(args.results_dir) if args.results_dir else sheet.parent
    outputs = {
        (p, s): check_output_path(folder / f"{Path(p).stem}_{Path(s).stem}.png")
        for p in args.photos
        for s in args.styles
    }
    for out in [sheet, *outputs.values()]:
        check_not_an_input(out, [*args.photos, *args.styles])
    photos = [load_image(p, what="content image") for p in args.photos]
    styles = [load_image(s, what="style image") for s in args.styles]
    engine = Stylizer(config.network, config.device, cache=args.cache_dir)
    cells: list[list[Any]] = []
    n, done = len(photos) * len(styles), 0
    for photo_path, photo in zip(args.photos, photos):
        row = []
        for style_path, style in zip(args.styles, styles):
            done += 1
            desc = f"{done}/{n} {Path(photo_path).stem} x {Path(style_path).stem}"
            bar, recorder = ProgressBar(args.quiet, desc), RunRecorder()
            try:
                result = engine.stylize(photo, style, config, on_progress=fanout(bar, recorder))
            finally:
                bar.close()
            record = RunRecord(photo_path, (style_path,), config, made_by="impasto sheet")
            record = replace(
                record,
                steps=recorder.step,
                seconds=recorder.elapsed,
                style_weight_used=recorder.style_weight,
            )
            save_image(result, outputs[photo_path, style_path], metadata=record.to_metadata())
            row.append(result)
        cells.append(row)
    contact_sheet(
        sheet,
        cells,
        row_labels=[Path(p).name for p in args.photos],
        col_labels=[Path(s).name for s in args.styles],
        row_headers=photos,
        col_headers=styles,
        title=summary(config, RunRecord("", ("",), config).options()),
    )
    if not args.quiet:
        print(f"wrote {sheet} and {n} result{'s' * (n != 1)} in {folder}", file=sys.stderr)
    return 0
