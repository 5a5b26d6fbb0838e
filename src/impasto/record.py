"""How an image was made: the record impasto stores in every image it writes, and reads back.

Every front (the command line, the web page, batches, contact sheets) writes the same record
through :meth:`RunRecord.to_metadata` and reads it with :func:`read_record`, so ``impasto info``
and ``--like`` understand an image whichever front made it. A record read from a file is
checked field by field: a doctored or damaged one is an :class:`~impasto.errors.InputError`
with one line saying what is wrong, never a crash. No torch here.
"""

from __future__ import annotations

import datetime
import math
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from impasto._version import __version__
from impasto.config import StyleConfig, opt_name
from impasto.errors import ImpastoError, InputError


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunRecord:
    """The inputs (as their paths or names), the settings, and what the run cost."""

    content: str
    styles: tuple[str, ...]
    config: StyleConfig
    content_masks: tuple[str, ...] = ()
    style_masks: tuple[str, ...] = ()
    steps: int | None = None
    seconds: float | None = None
    # The style weight the run used, where --balance auto chose it from the pair (the config
    # keeps the weight as given, so that --like measures a new pair afresh).
    style_weight_used: float | None = None
    made_by: str = "impasto stylize"
    version: str = __version__
    created: str = field(default_factory=_now)

    def to_metadata(self) -> dict[str, Any]:
        """The JSON object stored in the image."""
        out: dict[str, Any] = {
            "impasto": self.version,
            "created": self.created,
            "made_by": self.made_by,
            "content": self.content,
            "styles": list(self.styles),
            "content_masks": list(self.content_masks),
            "style_masks": list(self.style_masks),
            "config": self.config.to_dict(),
        }
        if self.steps is not None:
            out["steps"] = self.steps
        if self.seconds is not None:
            out["seconds"] = round(self.seconds, 1)
        if self.style_weight_used is not None and self.config.auto_balance:
            out["style_weight_used"] = round(self.style_weight_used, 4)
        return out

    @classmethod
    def from_metadata(cls, data: Mapping[str, Any], where: str = "the image") -> RunRecord:
        """Check a stored record and make it usable (InputError naming the first bad field).

        Records written by the web page before the formats were one (``style`` for
        ``styles``, ``software`` for ``impasto``) are read too.
        """
        if not isinstance(data, Mapping):
            raise InputError(f"the impasto record in {where} is not a JSON object")

        def bad(key: str, expected: str) -> InputError:
            return InputError(
                f"the impasto record in {where} is damaged: '{key}' should be {expected}, "
                f"found {_shown(data.get(key))}"
            )

        content = data.get("content")
        if not isinstance(content, str) or not content:
            raise bad("content", "the content image's name")
        styles_key = "styles" if "styles" in data or "style" not in data else "style"
        styles = _names(data.get(styles_key), allow_empty=False)
        if styles is None:
            raise bad(styles_key, "a list of style image names")
        masks = {}
        for key in ("content_masks", "style_masks"):
            masks[key] = _names(data.get(key, []), allow_empty=True)
            if masks[key] is None:
                raise bad(key, "a list of mask file names")
        settings = data.get("config")
        if not isinstance(settings, Mapping):
            raise bad("config", "an object of settings")
        try:
            config = StyleConfig(**StyleConfig.stored(dict(settings)))
        except (ImpastoError, TypeError) as e:
            raise InputError(
                f"the impasto record in {where} has settings that are not valid: {e}"
            ) from None
        steps, seconds = data.get("steps"), data.get("seconds")
        if steps is not None and (
            not isinstance(steps, int) or isinstance(steps, bool) or steps < 0
        ):
            raise bad("steps", "a whole number")
        if seconds is not None and (
            not isinstance(seconds, (int, float)) or isinstance(seconds, bool)
        ):
            raise bad("seconds", "a number")
        used = data.get("style_weight_used")
        if used is not None and (
            not isinstance(used, (int, float))
            or isinstance(used, bool)
            or not math.isfinite(used)
            or used <= 0
        ):
            raise bad("style_weight_used", "a positive number")
        version = data.get("impasto") or str(data.get("software", "")).removeprefix("impasto ")
        return cls(
            content=content,
            styles=styles,
            config=config,
            content_masks=masks["content_masks"],
            style_masks=masks["style_masks"],
            steps=steps,
            seconds=None if seconds is None else float(seconds),
            style_weight_used=None if used is None else float(used),
            made_by=str(data.get("made_by", "impasto")),
            version=str(version or "?"),
            created=str(data.get("created", "")),
        )

    def located(self, folder: str | os.PathLike[str]) -> RunRecord:
        """The record with each input path usable from here: as stored if it exists, else
        relative to ``folder`` (the image's own folder) if it is there."""
        here = Path(folder)

        def locate(p: str) -> str:
            return p if Path(p).exists() or not (here / p).exists() else str(here / p)

        return replace(
            self,
            content=locate(self.content),
            styles=tuple(map(locate, self.styles)),
            content_masks=tuple(map(locate, self.content_masks)),
            style_masks=tuple(map(locate, self.style_masks)),
        )

    def options(self) -> list[str]:
        """The command-line options that differ from the defaults."""
        return [f"--{opt_name(k)} {_format(v)}" for k, v in self.config.changed().items()]

    def command(self) -> str:
        """An ``impasto stylize`` command line that makes this image again."""
        words = ["impasto", "stylize", self.content, *self.styles]
        words += [w for m in self.content_masks for w in ("--content-mask", m)]
        words += [w for m in self.style_masks for w in ("--style-mask", m)]
        opts = " ".join(self.options())
        return (
            " ".join(shlex.quote(w) for w in words) + (f" {opts}" if opts else "") + " -o OUT.png"
        )


def read_record(path: str | os.PathLike[str]) -> RunRecord | None:
    """The record stored in an image impasto wrote; None when it has none (a photo, a BMP)."""
    from impasto.image.metadata import read_metadata

    data = read_metadata(path)
    if data is None:
        return None
    return RunRecord.from_metadata(data, where=f"'{os.fspath(path)}'")


def _names(value: Any, *, allow_empty: bool) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        return None
    if not value and not allow_empty:
        return None
    return tuple(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _format(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(_format, value))
    if isinstance(value, float):
        return f"{value:g}"
    return "auto" if value is None else str(value)
