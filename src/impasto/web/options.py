"""The web form's options, generated from ``StyleConfig`` and parsed back into it.

Every field of ``StyleConfig`` becomes a form field of the same name, described (kind, default,
choices, help) by :func:`describe`, so a field added to the dataclass appears on the page and in
the API without any change here. A few fields get a friendlier label and a slider among the
page's main controls (:data:`MAIN`); the rest are folded away as advanced options.
:func:`parse` turns the text of the form fields into ``StyleConfig`` keyword arguments, and
``StyleConfig`` itself validates them.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, Field, fields
from typing import Any, Literal

from impasto.config import StyleConfig, literal_choices, opt_name
from impasto.errors import UsageError, did_you_mean

# The controls shown up front, in this order, with a label a painter understands and the
# range of their slider (``log``: the slider moves by ratios, as weights are felt by ratios).
# Fields missing from the installed StyleConfig are skipped.
MAIN: dict[str, dict[str, Any]] = {
    "size": {"label": "Size", "unit": "px", "slider": {"min": 64, "max": 1024, "step": 32},
             "hint": "long side of the picture; larger is slower"},
    "style_weight": {"label": "Style strength", "slider": {"min": 0.1, "max": 100, "log": True},
                     "hint": "more of the painting"},
    "content_weight": {"label": "Content strength", "slider": {"min": 0.1, "max": 10, "log": True},
                       "hint": "more of the photo"},
    "tv_weight": {"label": "Smoothness", "slider": {"min": 0, "max": 0.5, "step": 0.01},
                  "hint": "0 = crisp, higher = smoother"},
    "iterations": {"label": "Iterations", "hint": "steps per scale, small to large (e.g. 60,40); "
                   "empty = the default schedule"},
    "colors": {"label": "Colours", "hint": "whose colours the result has",
               "labels": {"style": "the painting's", "luminance": "keep the photo's",
                          "match": "the photo's palette on the painting"}},
    "network": {"label": "Network", "hint": "the network that sees content and style"},
    "seed": {"label": "Seed", "hint": "the same seed gives the same picture"},
}  # fmt: skip

# ``init`` may also name an image file on the machine running the run; over the web only the
# built-in starting points are offered, so that no request can make the server read a file.
RESTRICTED_CHOICES: dict[str, tuple[str, ...]] = {"init": ("content", "noise", "style")}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_NONE = {"none", "default", "equal"}


def config_fields() -> list[Field[Any]]:
    return list(fields(StyleConfig))


def describe() -> list[dict[str, Any]]:
    """One entry per StyleConfig field: how the page draws it and the API documents it.

    ``kind`` is one of ``choice``, ``int``, ``float``, ``bool``, ``text`` (comma-separated
    names), ``numbers`` (comma-separated numbers) and ``str``; ``default`` is the default as
    the form shows it (text; "" where the default is None).
    """
    hints = typing.get_type_hints(StyleConfig)
    by_name = {f.name: f for f in config_fields()}
    order = [n for n in MAIN if n in by_name] + [n for n in by_name if n not in MAIN]
    out = []
    for name in order:
        f = by_name[name]
        kind, nullable = _kind(name, hints[name])
        entry: dict[str, Any] = {
            "name": name,
            "option": f"--{opt_name(name)}",
            "kind": kind,
            "nullable": nullable,
            "default": format_value(_default(f)),
            "help": f.metadata.get("help", ""),
            "choices": list(choices_of(name, hints[name])),
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
    hints = typing.get_type_hints(StyleConfig)
    kwargs: dict[str, Any] = {}
    for name, raw in form.items():
        if name not in hints:
            raise UsageError(f"unknown option '{name}'{did_you_mean(name, hints)}")
        text = raw.strip()
        if not text:
            continue
        restricted = RESTRICTED_CHOICES.get(name)
        if restricted is not None and text not in restricted:
            raise UsageError(
                f"--{opt_name(name)} must be one of {', '.join(restricted)} here, not '{text}'"
                f"{did_you_mean(text, restricted)}"
            )
        kwargs[name] = _parse_value(name, text, hints[name])
    return kwargs


def make_config(form: Mapping[str, str]) -> StyleConfig:
    """Parse and validate: the StyleConfig that the form describes (UsageError otherwise)."""
    return StyleConfig(**parse(form))


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def choices_of(name: str, hint: Any) -> tuple[str, ...]:
    if name in RESTRICTED_CHOICES:
        return RESTRICTED_CHOICES[name]
    found = literal_choices(name)
    if found:
        return found
    literal = _literal(hint)
    return tuple(str(c) for c in typing.get_args(literal)) if literal is not None else ()


# ----------------------------------------------------------------------------------------------


def _default(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None


def _members(hint: Any) -> tuple[list[Any], bool]:
    """The types of a (possibly optional) union, without None, and whether None is allowed."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        return [a for a in args if a is not type(None)], type(None) in args
    return [hint], False


def _literal(hint: Any) -> Any:
    members, _ = _members(hint)
    return next((m for m in members if typing.get_origin(m) is Literal), None)


def _kind(name: str, hint: Any) -> tuple[str, bool]:
    members, nullable = _members(hint)
    if choices_of(name, hint):
        return "choice", nullable
    for m in members:
        if typing.get_origin(m) is tuple:
            item = typing.get_args(m)[0]
            return ("numbers" if item in (int, float) else "text"), nullable
    for kind in (bool, int, float):
        if kind in members:
            return kind.__name__, nullable
    return "str", nullable


def _parse_value(name: str, text: str, hint: Any) -> Any:
    option = f"--{opt_name(name)}"
    members, nullable = _members(hint)
    if nullable and text.lower() in _NONE:
        return None
    if choices_of(name, hint):
        return text  # StyleConfig checks it against the choices
    tuple_type = next((m for m in members if typing.get_origin(m) is tuple), None)
    scalars = [m for m in members if m in (bool, int, float)]
    if tuple_type is not None and ("," in text or not scalars):
        item = typing.get_args(tuple_type)[0]
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if item in (int, float):
            return tuple(_number(option, p, item, "comma-separated numbers") for p in parts)
        return tuple(parts)
    if bool in scalars:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise UsageError(f"{option} must be true or false, not '{text}'")
    if int in scalars:
        return _number(option, text, int, "an integer")
    if float in scalars:
        return _number(option, text, float, "a number")
    return text


def _number(option: str, text: str, kind: type, expected: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise UsageError(f"{option} must be {expected}, not '{text}'") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{option} must be {expected}, not '{text}'")
    return value
