"""The style options of a command, generated from ``StyleConfig``'s fields, and read back.

Every field becomes ``--field-name`` with the field's help and default; the text typed goes
through :func:`impasto.config.parse_value`, the parser every front shares. Options not typed
stay absent, so that a preset's or a stored run's values are overridden only by what the user
really typed.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from impasto.config import PRESETS, StyleConfig, literal_choices, opt_name, parse_value
from impasto.errors import UsageError

PRESET_HELP = (
    "start from a recipe; options typed beside it override it (painterly: twice the style "
    "weight and three times the steps at each larger scale, nearer the painting for about 2.5x "
    "the time; tutorial: the reference tutorial's code, VGG-16 + Adam from noise; tutorial-tv: "
    "with its smoothing term)"
)


def _typed(name: str) -> Any:
    def parse(text: str) -> Any:
        try:
            return parse_value(name, text)
        except UsageError as e:
            raise argparse.ArgumentTypeError(str(e).split(" ", 1)[1]) from None

    parse.__name__ = opt_name(name)  # what argparse names in "invalid ... value"
    return parse


def format_default(value: Any, none: str = "equal") -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(format_default, value))
    if isinstance(value, float):
        return f"{value:g}"
    return none if value is None else str(value)


def add_config_options(parser: argparse.ArgumentParser, *, presets: bool = True) -> None:
    """One ``--option`` per StyleConfig field, plus ``--single-scale`` and ``--preset``."""
    group = parser.add_argument_group("style options (defaults from StyleConfig)")
    if presets:
        group.add_argument("--preset", choices=tuple(PRESETS), help=PRESET_HELP)
    for f in fields(StyleConfig):
        choices = literal_choices(f.name)
        default = format_default(f.default, f.metadata["none"])
        group.add_argument(
            f"--{opt_name(f.name)}",
            dest=f.name,
            default=argparse.SUPPRESS,
            help=f"{f.metadata['help']} (default: {default})",
            metavar=None if choices else f.metadata.get("metavar"),
            choices=choices or None,
            type=None if choices else _typed(f.name),
        )
        if f.name == "scales":
            group.add_argument(
                "--single-scale",
                dest="scales",
                action="store_const",
                const=1,
                default=argparse.SUPPRESS,
                help="one scale at --size, as in the paper (the same as --scales 1)",
            )


def add_style_images(parser: argparse.ArgumentParser, *, content_mask_help: str) -> None:
    """The style images and masks a painting command takes, after its CONTENT argument."""
    parser.add_argument(
        "style", nargs="*", help="the painting(s) whose brushwork and palette to take"
    )
    parser.add_argument(
        "--style",
        dest="more_styles",
        action="append",
        default=[],
        metavar="STYLE",
        help="another style image (repeatable; blend them with --style-blend)",
    )
    parser.add_argument(
        "--content-mask", action="append", default=[], metavar="MASK", help=content_mask_help
    )
    parser.add_argument(
        "--style-mask",
        action="append",
        default=[],
        metavar="MASK",
        help="grey image, white where a style image's statistics come from: one per style",
    )


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The StyleConfig fields typed on the command line."""
    return {f.name: getattr(args, f.name) for f in fields(StyleConfig) if hasattr(args, f.name)}


def config_from_args(args: argparse.Namespace, base: StyleConfig | None = None) -> StyleConfig:
    """The options typed, over a preset's, over a stored run's (``base``), over the defaults."""
    stored = base.to_dict() if base is not None else {}
    typed = StyleConfig.typed(given_options(args))
    if getattr(args, "preset", None):
        return StyleConfig.from_preset(args.preset, **{**stored, **typed}).check_typed(typed)
    return StyleConfig(**{**stored, **typed}).check_typed(typed)


def value_options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of ``parser`` and its subcommands that takes a value."""
    found: set[str] = set()
    for action in parser._actions:
        if action.option_strings and action.nargs != 0:
            found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= value_options(sub)
    return found


def attach_negative_values(argv: Sequence[str], takes_value: set[str]) -> list[str]:
    """``--style-blend -1,2`` -> ``--style-blend=-1,2``: argparse reads a value that starts
    with a dash as an option of its own unless it is joined to its option."""
    out: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        word = items[i]
        nxt = items[i + 1] if i + 1 < len(items) else None
        negative = nxt is not None and nxt[:1] == "-" and (nxt[1:2].isdigit() or nxt[1:2] == ".")
        if word in takes_value and negative:
            out.append(f"{word}={nxt}")
            i += 2
            continue
        out.append(word)
        i += 1
    return out
