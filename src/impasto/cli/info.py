"""``impasto info``: how an image was made, read from the record impasto stored in it.

Reads the file's text chunks only: no torch, so it answers at once.
"""

from __future__ import annotations

import argparse
import json
import shlex
from typing import Any

from impasto.errors import UsageError


def add_parsers(sub: Any) -> None:
    nf = sub.add_parser("info", help="how an image was made: the settings impasto stored in it")
    nf.add_argument("image", help="an image written by impasto")
    nf.add_argument("--json", action="store_true", help="print the stored record as JSON")
    nf.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from impasto.record import read_record

    record = read_record(args.image)
    if record is None:
        raise UsageError(
            f"{args.image} holds no impasto settings (it was not written by impasto, or the format "
            "dropped them)"
        )
    if args.json:
        print(json.dumps(record.to_metadata(), indent=2))
        return 0
    config = record.config
    made = f"made by {record.made_by} {record.version}" + (
        f" on {record.created}" if record.created else ""
    )
    print(f"{args.image}: {made}")
    print(f"  content:  {record.content}")
    weights = config.style_weights_for(len(record.styles))
    for name, w in zip(record.styles, weights):
        print(f"  style:    {name}" + (f"  (weight {w:.2f})" if len(record.styles) > 1 else ""))
    for m in record.content_masks:
        print(f"  content mask: {m}")
    for m in record.style_masks:
        print(f"  style mask:   {m}")
    if record.steps is not None:
        seconds = "?" if record.seconds is None else f"{record.seconds:g}"
        print(f"  run:      {record.steps} steps in {seconds} s")
    if record.style_weight_used is not None and config.auto_balance:
        print(f"  balance:  auto, style weight {record.style_weight_used:.3g} for this pair")
    options = " ".join(record.options()) or "the defaults"
    print(f"  options:  {options} (size {config.size}, seed {config.seed})")
    print(f"  rerun:    impasto stylize --like {shlex.quote(args.image)} -o OUT.png")
    print(f"            (or: {record.command()})")
    return 0
