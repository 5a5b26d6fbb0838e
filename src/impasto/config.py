"""``StyleConfig``: every knob of a run, with its default and its bounds, in one frozen dataclass.

The single source of defaults: the command line builds its options from these fields (their
``help`` metadata included), the web form and batch jobs do the same, and :func:`parse_value`
is the one place where option text becomes a field's value, derived from the type hints. No
torch here: checking options costs nothing.

This module is longer than 400 lines because each option carries its help text in its field:
the one place the command line, the web form and the README's table read it from.
"""

from __future__ import annotations

import functools
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, get_args

from impasto.errors import UsageError, did_you_mean
from impasto.layers import Network, Pooling, canonical

Optimizer = Literal["lbfgs", "adam"]
TVNorm = Literal["l1", "l2"]
Normalization = Literal["relative", "mean"]
Colors = Literal["style", "luminance", "match"]
StyleLossKind = Literal["gram", "meancov", "histogram"]
StyleDistance = Literal["norm", "squared"]
Balance = Literal["auto", "fixed"]
Device = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
# The built-in starting images; ``init`` may also be the path of an image file.
Init = Literal["content", "noise", "style"]
INITS: tuple[str, ...] = get_args(Init)

# Coarse to fine: steps at the smallest scale, then at each larger one (docs/decisions.md).
DEFAULT_ITERATIONS = (60, 40)
# The largest jump in size between two scales: 2 put a costly middle scale into 3:2 photos.
MAX_SCALE_FACTOR = 2.5
SINGLE_SCALE_ITERATIONS = 200

# Bounds checked before anything is allocated; the memory check refines the size bounds.
MAX_SIZE = 16384
MAX_STEPS = 100_000  # per scale
MAX_SCALES = 12
MIN_TILE = 16  # one cell of VGG's pooling grid up to conv5_1
MAX_STYLE_SCALE = 8.0
MAX_WEIGHT = 1e6
MAX_LR = 255.0  # one step across the whole 0-255 range
MAX_SEED = 2**63 - 1


def _opt(default: Any, help: str, metavar: str | None = None, none: str = "equal") -> Any:
    """A field with its --help text; ``none``: how a default of None reads in help and docs."""
    return field(default=default, metadata={"help": help, "metavar": metavar, "none": none})


@dataclass(frozen=True)
class StyleConfig:
    """How to stylize: image size, network and layers, loss weights, optimiser, initialisation."""

    size: int = _opt(512, "long side of the output in pixels", "PX")
    style_scale: tuple[float, ...] = _opt(
        (1.0,),
        "size of each style image relative to the output (long side); smaller = finer "
        "brushwork; one value for all styles or one per style",
        "X[,X...]",
    )
    style_blend: tuple[float, ...] | None = _opt(
        None, "weight of each style image when several are given, normalised to sum to 1", "W,W,..."
    )
    colors: Colors = _opt(
        "style",
        "colours of the result: 'style' (the painting's), 'luminance' (transfer on luminance, "
        "keep the photo's colours) or 'match' (give the painting the photo's palette first)",
    )
    style_loss: StyleLossKind = _opt(
        "gram",
        "style statistics: 'gram' (the paper's), 'meancov' (Wasserstein distance of feature "
        "means and covariances) or 'histogram' (feature histograms, sliced)",
    )
    style_distance: StyleDistance = _opt(
        "norm",
        "each style layer's error: 'norm' (the distance between the statistics, e.g. the "
        "Frobenius norm of the Gram difference, so every layer pulls as hard however near it is) "
        "or 'squared' (its square, the paper's)",
    )
    network: Network = _opt("vgg19", "pretrained network that defines content and style")
    pooling: Pooling = _opt(
        "max", "pooling inside the network ('avg' gives smoother results, as in the paper)"
    )
    content_layers: tuple[str, ...] = _opt(
        ("conv4_2",), "layers compared for content (comma-separated)", "LAYERS"
    )
    style_layers: tuple[str, ...] = _opt(
        ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),
        "layers whose Gram matrices define style (comma-separated)",
        "LAYERS",
    )
    style_layer_weights: tuple[float, ...] | None = _opt(
        None, "relative weight of each style layer, normalised to sum to 1", "W,W,..."
    )
    content_weight: float = _opt(1.0, "alpha: weight of the content loss", "A")
    style_weight: float = _opt(10.0, "beta: weight of the style loss (higher = more painting)", "B")
    balance: Balance = _opt(
        "auto",
        "'auto': the style weight grows with how far the photo starts from the painting, so a "
        "photo unlike the painting gets a firmer hand and one already close a lighter one; "
        "'fixed': --style-weight exactly as given (typing --style-weight means fixed; the squared "
        "losses of --preset tutorial are always fixed)",
    )
    coarse_style: float = _opt(
        0.3,
        "style weight at the smallest scale of a coarse-to-fine run, as a fraction of "
        "--style-weight: a lighter hand there keeps the photo's composition (faces), which the "
        "larger scales paint over (1 = the same everywhere)",
        "F",
    )
    tv_weight: float = _opt(0.0, "gamma: weight of the total-variation smoothing (0 = off)", "G")
    tv_norm: TVNorm = _opt("l1", "total variation form: 'l1' (the tutorial's) or 'l2' (smoother)")
    loss_normalization: Normalization = _opt(
        "relative",
        "'relative': each layer's error over its target's mean square, so weights mean the same "
        "for every layer and network; 'mean': plain mean squares, as in the tutorial's code",
    )
    optimizer: Optimizer = _opt("lbfgs", "optimiser over the pixels")
    lr: float = _opt(
        10.0, "Adam step size in 8-bit pixel levels (0-255 scale, as in the tutorial)", "LR"
    )
    iterations: tuple[int, ...] | None = _opt(
        None,
        "optimisation steps per scale, coarse to fine (one value: the same at every scale; two: "
        "the smallest scale, then each larger one); "
        f"default {DEFAULT_ITERATIONS[0]} at the smallest scale, {DEFAULT_ITERATIONS[1]} at "
        f"each larger one, {SINGLE_SCALE_ITERATIONS} for a single-scale run",
        "N[,N...]",
        none="auto",
    )
    scales: int | None = _opt(
        None,
        "number of sizes the run passes through, from --min-size up to --size, each started "
        f"from the last one's result (default: as many as keep each step within "
        f"{MAX_SCALE_FACTOR:g}x; 1 = the paper's single-scale run)",
        "N",
        none="auto",
    )
    min_size: int = _opt(256, "long side of the first, smallest scale in pixels", "PX")
    tolerance: float = _opt(
        1e-5,
        "stop early once the loss changes by less than this fraction for 20 steps (0 = never)",
        "TOL",
    )
    init: str = _opt(
        "content", "starting image: 'content', 'noise', 'style' or the path of an image", "INIT"
    )
    seed: int = _opt(
        0, "random seed (noise init); the same seed gives the same pixels on a CPU", "N"
    )
    device: Device = _opt("auto", "where to run: auto picks cuda, then mps, then cpu")
    precision: Precision = _opt(
        "auto",
        "arithmetic of the network (autocast); the image, losses and Gram matrices stay float32. "
        "auto: bf16 on CUDA GPUs that have it, else fp16 there; fp32 on CPUs and Apple GPUs",
    )
    tile: int | None = _opt(
        None,
        "optimise the image in tiles of at most this many px a side (rounded down to a "
        "multiple of 16), with the same result as in one piece: less memory, more time; auto: "
        "only when a step in one piece would not fit in the memory available; 0: never",
        "PX",
        none="auto",
    )

    def __post_init__(self) -> None:
        # Python callers may give lists, single numbers and comma-separated text too.
        for f in fields(self):
            value = getattr(self, f.name)
            if _tuple_item(f.name) is not None and value is not None:
                object.__setattr__(self, f.name, _as_tuple(f.name, value))
        self.validate()

    # ---------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise UsageError naming the option, what was expected and what was found."""
        for f in fields(self):
            choices = literal_choices(f.name)
            value = getattr(self, f.name)
            if choices and value not in choices:
                raise UsageError(
                    f"--{opt_name(f.name)} must be one of {', '.join(choices)}, not '{value}'"
                    f"{did_you_mean(str(value), choices)}"
                )
        _check_int("size", self.size, 1, MAX_SIZE, "px")
        _check_int("min_size", self.min_size, 1, MAX_SIZE, "px")
        _check_int("seed", self.seed, 0, MAX_SEED)
        if self.scales is not None:
            _check_int("scales", self.scales, 1, MAX_SCALES)
        if self.tile is not None and self.tile != 0:
            _check_int("tile", self.tile, MIN_TILE, MAX_SIZE, "px (or 0: never tile)")
        if self.iterations is not None:
            if not self.iterations:
                raise UsageError("--iterations needs at least one value")
            for n in self.iterations:
                _check_int("iterations", n, 1, MAX_STEPS, "steps per scale")
        for name in ("content_weight", "style_weight", "coarse_style", "tv_weight"):
            _check_number(name, getattr(self, name), 0.0, MAX_WEIGHT)
        _check_number("tolerance", self.tolerance, 0.0, 1.0)
        _check_number("lr", self.lr, 0.0, MAX_LR, low_open=True)
        if not self.style_scale:
            raise UsageError("--style-scale needs at least one value")
        for v in self.style_scale:
            _check_number("style_scale", v, 0.0, MAX_STYLE_SCALE, low_open=True)
        for name in ("style_blend", "style_layer_weights"):
            ws = getattr(self, name)
            if ws is not None:
                for w in ws:
                    _check_number(name, w, 0.0, MAX_WEIGHT)
                if sum(ws) <= 0:
                    raise UsageError(f"--{opt_name(name)} must not be all 0, not {_join(ws)}")
        if not self.content_layers:
            raise UsageError("--content-layers needs at least one layer")
        if not self.style_layers:
            raise UsageError("--style-layers needs at least one layer")
        for layer in self.content_layers + self.style_layers:
            canonical(layer, self.network)
        if self.style_layer_weights is not None and len(self.style_layer_weights) != len(
            self.style_layers
        ):
            raise UsageError(
                f"--style-layer-weights has {len(self.style_layer_weights)} values but "
                f"--style-layers has {len(self.style_layers)} layers"
            )
        self.schedule()  # raise now if --scales or --iterations do not fit

    @property
    def auto_balance(self) -> bool:
        """Whether the pair decides the style weight (impasto.balance): ``balance="auto"`` with
        the default losses. With squared distances (the paper's form, the tutorial presets) the
        style term already pulls harder the farther the image is, so the weight is as given."""
        return (
            self.balance == "auto"
            and self.loss_normalization == "relative"
            and self.style_distance == "norm"
        )

    @property
    def normalized_style_layer_weights(self) -> tuple[float, ...]:
        ws = self.style_layer_weights or (1.0,) * len(self.style_layers)
        total = sum(ws)
        return tuple(w / total for w in ws)

    def style_weights_for(self, n_styles: int) -> tuple[float, ...]:
        """--style-blend for ``n_styles`` style images, normalised to sum to 1 (default: equal)."""
        ws = self.style_blend or (1.0,) * n_styles
        if len(ws) != n_styles:
            plural = "s" * (n_styles != 1)
            raise UsageError(
                f"--style-blend has {len(ws)} weights for {n_styles} style image{plural}"
            )
        total = sum(ws)
        return tuple(w / total for w in ws)

    def style_scales_for(self, n_styles: int) -> tuple[float, ...]:
        """--style-scale per style image: one value for all, or one each."""
        if len(self.style_scale) == 1:
            return self.style_scale * n_styles
        if len(self.style_scale) != n_styles:
            raise UsageError(
                f"--style-scale has {len(self.style_scale)} values for {n_styles} style images; "
                "give one for all or one each"
            )
        return self.style_scale

    def scale_sizes(self) -> tuple[int, ...]:
        """The long side of each scale, smallest first; the last is --size.

        The sizes grow geometrically from --min-size, by a factor of at most MAX_SCALE_FACTOR
        when --scales is not given. A --size at or below --min-size is a single-scale run.
        """
        low = min(self.min_size, self.size)
        if self.scales is None:
            growth = (
                math.log(self.size / low) / math.log(MAX_SCALE_FACTOR) if self.size > low else 0
            )
            n = 1 + math.ceil(growth - 1e-9)
        else:
            n = self.scales
        if n == 1:
            return (self.size,)
        sizes = [round(low * (self.size / low) ** (i / (n - 1))) for i in range(n)]
        sizes[-1] = self.size
        if len(set(sizes)) != n:
            raise UsageError(
                f"--scales {n} does not fit between --min-size {low} and --size {self.size}: the "
                f"scales would repeat sizes ({_join(tuple(sizes))}); use fewer scales or a "
                "smaller --min-size"
            )
        return tuple(sizes)

    def schedule(self) -> tuple[tuple[int, int], ...]:
        """(long side, steps) for each scale, smallest first."""
        sizes = self.scale_sizes()
        n = len(sizes)
        if self.iterations is None:
            first, rest = DEFAULT_ITERATIONS
            steps = (SINGLE_SCALE_ITERATIONS,) if n == 1 else (first,) + (rest,) * (n - 1)
        elif len(self.iterations) == 1:
            steps = self.iterations * n
        elif len(self.iterations) == n:
            steps = self.iterations
        elif len(self.iterations) == 2 and n > 2:  # as the default: the first, then each larger
            steps = self.iterations[:1] + self.iterations[1:] * (n - 1)
        else:
            raise UsageError(
                f"--iterations has {len(self.iterations)} values for {n} scales ({_join(sizes)} "
                "px); give one value for every scale, one per scale, or two (the smallest, "
                "each larger)"
            )
        return tuple(zip(sizes, steps))

    @property
    def total_steps(self) -> int:
        return sum(steps for _, steps in self.schedule())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> StyleConfig:
        return replace(self, **changes)

    def changed(self) -> dict[str, Any]:
        """The fields whose value differs from the default."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != f.default
        }

    @classmethod
    def stored(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """Settings as stored with an earlier run (an image's record, a checkpoint), made usable
        now: unknown names dropped, and options added since kept at the value that reproduces
        the stored run (single scale before ``scales``; squared distances and one style weight
        before ``style_distance`` and ``coarse_style``; the weight as given before
        ``balance``)."""
        known = {f.name for f in fields(cls)}
        out = {k: v for k, v in settings.items() if k in known}
        if "scales" not in settings:
            out["scales"] = 1
        if "style_distance" not in settings:
            out["style_distance"] = "squared"
        if "coarse_style" not in settings:
            out["coarse_style"] = 1.0
        if "balance" not in settings:
            out["balance"] = "fixed"
        return out

    @staticmethod
    def typed(options: dict[str, Any]) -> dict[str, Any]:
        """Options a user typed (command line, web form, a batch row), with ``balance="fixed"``
        added where a style weight was typed without a balance: a weight typed is meant."""
        if "style_weight" in options and "balance" not in options:
            return {**options, "balance": "fixed"}
        return dict(options)

    def check_typed(self, typed: dict[str, Any]) -> StyleConfig:
        """``self``, built from options that include ``typed``; a ``balance="auto"`` typed for
        losses the balance never scales is a UsageError, not a weight silently used as given."""
        if typed.get("balance") == "auto" and not self.auto_balance:
            why = (
                "--style-distance squared"
                if self.style_distance != "norm"
                else f"--loss-normalization {self.loss_normalization}"
            )
            raise UsageError(
                "--balance auto scales the default losses only (--style-distance norm, "
                f"--loss-normalization relative), but this run has {why}, whose style weight "
                "is used as given: leave --balance out or make it fixed"
            )
        return self

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> StyleConfig:
        """A preset's settings, with ``overrides`` (e.g. the options typed) on top."""
        if name not in PRESETS:
            raise UsageError(
                f"unknown preset '{name}'{did_you_mean(name, PRESETS)}; "
                f"choose one of {', '.join(PRESETS)}"
            )
        return cls(**{**PRESETS[name], **overrides})


# ----------------------------------------------------------------------------------------------
# Field types, read from the annotations (never a hand-kept list)


@functools.cache
def _hints() -> dict[str, Any]:
    return typing.get_type_hints(StyleConfig)


def _members(hint: Any) -> list[Any]:
    """The types of a (possibly optional) union, without None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(hint) if a is not type(None)]
    return [hint]


def literal_choices(name: str) -> tuple[str, ...]:
    """The allowed values of a ``Literal`` field (empty for any other field)."""
    for member in _members(_hints().get(name)):
        if typing.get_origin(member) is Literal:
            return tuple(get_args(member))
    return ()


def nullable(name: str) -> bool:
    """Whether the field may be None (meaning: automatic, or equal weights)."""
    hint = _hints()[name]
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in get_args(
        hint
    )


def _tuple_item(name: str) -> type | None:
    """The item type of a tuple field (float, int or str), or None for other fields."""
    for member in _members(_hints().get(name)):
        if typing.get_origin(member) is tuple:
            return typing.get_args(member)[0]
    return None


def field_kind(name: str) -> str:
    """How the field's value is written: choice, int, float, str, numbers or names (a list)."""
    if literal_choices(name):
        return "choice"
    item = _tuple_item(name)
    if item is not None:
        return "names" if item is str else "numbers"
    scalar = _members(_hints()[name])[0]
    return scalar.__name__ if scalar in (int, float) else "str"


def _as_tuple(name: str, value: Any) -> tuple[Any, ...]:
    item = _tuple_item(name)
    if isinstance(value, str):
        return parse_value(name, value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise UsageError(f"--{opt_name(name)} must be a list, not {value!r}") from None
    if item is float:
        return tuple(_float(name, v) for v in items)
    return items


def _float(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise UsageError(f"--{opt_name(name)} must be numbers, not {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"--{opt_name(name)} must be numbers, not {value!r}") from None


def parse_value(name: str, text: str) -> Any:
    """The value of field ``name`` written as text (a command-line option, a form field, a CSV
    cell): the one parser every front uses. ``auto``/``equal``/``default`` give None where the
    field allows it. Ranges are checked by StyleConfig itself."""
    option = f"--{opt_name(name)}"
    if name not in _hints():
        raise UsageError(f"unknown option '{name}'{did_you_mean(name, _hints())}")
    text = text.strip()
    if nullable(name) and text.lower() in ("auto", "equal", "default", "none", ""):
        return None
    kind, item = field_kind(name), _tuple_item(name)
    if kind == "choice" or kind == "str":
        return text
    if item is not None:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            raise UsageError(f"{option} expects a comma-separated list, not '{text}'")
        if item is str:
            return tuple(parts)
        return tuple(_number(option, p, item) for p in parts)
    return _number(option, text, int if kind == "int" else float)


def _number(option: str, text: str, kind: type) -> Any:
    expected = "a whole number" if kind is int else "a number"
    try:
        value = kind(text)
    except ValueError:
        raise UsageError(f"{option} expects {expected}, not '{text}'") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{option} expects a finite number, not '{text}'")
    return value


def _check_int(name: str, value: Any, low: int, high: int, unit: str = "") -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        unit = f" {unit}" if unit else ""
        raise UsageError(
            f"--{opt_name(name)} must be a whole number from {low:,} to {high:,}{unit}, not {value!r}"
        )


def _check_number(
    name: str, value: Any, low: float, high: float, *, low_open: bool = False
) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value > high or value < low or (low_open and value == low):
        above = f"> {low:g}" if low_open else f">= {low:g}"
        raise UsageError(
            f"--{opt_name(name)} must be a finite number {above} and at most {high:g}, not {value!r}"
        )


def _join(values: tuple[float, ...] | tuple[int, ...]) -> str:
    return ",".join(f"{v:g}" for v in values)


def opt_name(field_name: str) -> str:
    return field_name.replace("_", "-")


# The tutorial's code feeds 0-255 RGB pixels to a Caffe-style VGG-16 and adds
# ``content + 0.1 * style``. Our VGG-16 takes ImageNet-normalised input, so its activations are
# smaller by k ~ 255 * std ~ 58: the content term scales as k^2 and the Gram-based style term as
# k^4, so the tutorial's ``content + b * style`` is ``content + b * k^2 * style`` here. Its TV
# term is on 0-255 pixels (255x ours) and weighed against content (k^2): ``g * 255 / k^2``. The
# tutorial sums its five style layers where impasto averages them: x5. Adam's lr is in 0-255
# levels already.
_TUTORIAL_K2 = (255.0 * 0.226) ** 2
_TUTORIAL = dict(
    network="vgg16",
    content_layers=("conv4_2",),
    style_layers=("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),
    optimizer="adam",
    lr=30.0,
    init="noise",
    scales=1,
    tolerance=0.0,
    content_weight=1.0,
    tv_norm="l1",
    loss_normalization="mean",
    style_distance="squared",
    balance="fixed",  # squared distances already pull harder the farther the image is
)
PRESETS: dict[str, dict[str, Any]] = {
    # More painting for about 2.5x the default's time (measured in docs/benchmarks.md).
    "painterly": dict(style_weight=20.0, iterations=(60, 120)),
    "tutorial": dict(
        _TUTORIAL, iterations=1000, style_weight=0.1 * 5 * _TUTORIAL_K2, tv_weight=0.0
    ),
    "tutorial-tv": dict(
        _TUTORIAL,
        iterations=500,
        style_weight=1.0 * 5 * _TUTORIAL_K2,
        tv_weight=100.0 * 255.0 / _TUTORIAL_K2,
    ),
}
