"""The web form's options, generated from ``StyleConfig`` and parsed back into it.

Every field of ``StyleConfig`` becomes a form field of the same name, described (kind, default,
choices, help) by :func:`describe`, so a field added to the dataclass appears on the page and in
the API without any change here. A few fields get a friendlier label and a slider among the
page's main controls (:data:`MAIN`); the rest are folded away as advanced options. The text of
the form goes through :func:`impasto.config.parse_value`, the parser every front shares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from impasto.config import (
    INITS,
    PRESETS,
    StyleConfig,
    field_kind,
    literal_choices,
    nullable,
    opt_name,
    parse_value,
)
from impasto.errors import UsageError, did_you_mean

# The controls shown up front, in this order, with a label a painter understands and the
# range of their slider (``log``: the slider moves by ratios, as weights are felt by ratios).
# Fields missing from the installed StyleConfig are skipped.
MAIN: dict[str, dict[str, Any]] = {
    "size": {
        "label": "Size",
        "unit": "px",
        "slider": {"min": 64, "max": 1024, "step": 32},
        "hint": "long side of the picture; larger is slower",
    },
    "style_weight": {
        "label": "Style strength",
        "slider": {"min": 0.1, "max": 100, "log": True},
        "hint": "more of the painting; set by hand, it turns the balance to fixed",
    },
    "content_weight": {
        "label": "Content strength",
        "slider": {"min": 0.1, "max": 10, "log": True},
        "hint": "more of the photo",
    },
    "tv_weight": {
        "label": "Smoothness",
        "slider": {"min": 0, "max": 0.5, "step": 0.01},
        "hint": "0 = crisp, higher = smoother",
    },
    "iterations": {
        "label": "Iterations",
        "hint": "steps per scale, small to large (e.g. 60,40); empty = the default schedule",
    },
    "colors": {
        "label": "Colours",
        "hint": "whose colours the result has",
        "labels": {
            "style": "the painting's",
            "luminance": "keep the photo's",
            "match": "the photo's palette on the painting",
        },
    },
    "network": {"label": "Network", "hint": "the network that sees content and style"},
    "seed": {"label": "Seed", "hint": "the same seed gives the same picture"},
}

# Each preset in the page's words (a name, what it is for); a preset missing here shows its name.
PRESET_LABELS: dict[str, tuple[str, str]] = {
    "painterly": (
        "Painterly",
        "more of the painting: twice the style weight and three times the steps at each "
        "larger scale, about 2.5x the time",
    ),
    "tutorial": (
        "Tutorial",
        "the reference tutorial's recipe: VGG-16, Adam from noise, 1000 steps (VGG-16 is "
        "fetched once with pip)",
    ),
    "tutorial-tv": ("Tutorial with smoothing", "the tutorial's recipe with its smoothing term"),
}

# ``init`` may also name an image file on the machine running the run; over the web only the
# built-in starting points are offered, so that no request can make the server read a file.
RESTRICTED_CHOICES: dict[str, tuple[str, ...]] = {"init": INITS}
# The page's names for how a value is written (a list of layer names is "text" there).
_PAGE_KINDS = {"names": "text"}


def describe() -> list[dict[str, Any]]:
    """One entry per StyleConfig field: how the page draws it and the API documents it.

    ``kind`` is one of ``choice``, ``int``, ``float``, ``text`` (comma-separated names),
    ``numbers`` (comma-separated numbers) and ``str``; ``default`` is the default as the form
    shows it (text; "" where the default is None).
    """
    by_name = {f.name: f for f in fields(StyleConfig)}
    order = [n for n in MAIN if n in by_name] + [n for n in by_name if n not in MAIN]
    out = []
    for name in order:
        f = by_name[name]
        choices = choices_of(name)
        kind = "choice" if choices else field_kind(name)
        entry: dict[str, Any] = {
            "name": name,
            "option": f"--{opt_name(name)}",
            "kind": _PAGE_KINDS.get(kind, kind),
            "nullable": nullable(name),
            "default": format_value(f.default),
            "help": f.metadata.get("help", ""),
            "choices": list(choices),
            "main": name in MAIN,
            "label": name.replace("_", " ").capitalize(),
        }
        entry.update(MAIN.get(name, {}))
        out.append(entry)
    return out


def parse(form: Mapping[str, str]) -> dict[str, Any]:
    """Form fields (text) -> StyleConfig keyword arguments; empty fields keep their default.

    Raises UsageError for an unknown field or a value of the wrong type; the values themselves
    are checked by StyleConfig.
    """
    names = {f.name for f in fields(StyleConfig)}
    kwargs: dict[str, Any] = {}
    for name, raw in form.items():
        if name not in names:
            raise UsageError(f"unknown option '{name}'{did_you_mean(name, names)}")
        text = raw.strip()
        if not text:
            continue
        restricted = RESTRICTED_CHOICES.get(name)
        if restricted is not None and text not in restricted:
            raise UsageError(
                f"--{opt_name(name)} must be one of {', '.join(restricted)} here, not '{text}'"
                f"{did_you_mean(text, restricted)}"
            )
        kwargs[name] = parse_value(name, text)
    return kwargs


def make_config(form: Mapping[str, str]) -> StyleConfig:
    """Parse and validate: the StyleConfig that the form describes (UsageError otherwise)."""
    typed = StyleConfig.typed(parse(form))
    return StyleConfig(**typed).check_typed(typed)


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (tuple, list)):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)  # never round a preset's value
    return str(value)


def choices_of(name: str) -> tuple[str, ...]:
    return RESTRICTED_CHOICES.get(name) or literal_choices(name)


def presets() -> list[dict[str, Any]]:
    """Each preset of ``StyleConfig``: its name, a label, and the form values it sets (the other
    fields keep their defaults)."""
    return [
        {
            "name": name,
            "label": PRESET_LABELS.get(name, (name, ""))[0],
            "description": PRESET_LABELS.get(name, (name, ""))[1],
            "values": {k: format_value(v) for k, v in values.items()},
        }
        for name, values in PRESETS.items()
    ]
