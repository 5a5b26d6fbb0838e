"""The automatic balance of content and style: the style weight scaled by how far the photo
starts from the painting.

Why: with the default losses (relative errors, the style term a distance rather than its
square) the style term pulls with about the same force however far the image is from the
painting, and the content term holds it near the photo, so one fixed weight moves every photo
about the same way. A photo whose statistics start far from the painting's (a night city under
Seurat's dots) then ends too little painted, and one that starts near (a soft portrait under a
soft interior) too much. ``--balance auto`` multiplies ``--style-weight`` by the photo's own
style distance (the style loss of the content image itself, at up to :data:`MEASURE_SIZE` px)
over :data:`REFERENCE`, that distance's typical value on the pairs the default weight was
chosen on; so a photo twice as far from its painting gets twice the weight. The evidence and the
pairs are in docs/decisions.md; the rule uses the run's own network and losses, never the
judges of ``impasto score``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from impasto.config import MAX_WEIGHT, StyleConfig
from impasto.features import VGGFeatures
from impasto.inputs import ImageLike, Inputs, prepare_inputs
from impasto.losses import StyleLoss
from impasto.objective import StatsOf, style_statistics_of, style_targets
from impasto.statistics import get_statistic
from impasto.tiling import layer_sizes

# The photo's style distance is measured at this long side, whatever the run's size (or the
# photo's own, if smaller: enlarged it would hold nothing more): the relative distances shrink as
# images grow (astronaut x Starry Night: 1.97 at 96 px, 0.87 at 500 px), and a preview should get
# the balance of the final picture. Two passes without gradients (the photo, the painting).
MEASURE_SIZE = 512
# The photo's style distance (mean over the style layers of the relative distance between its
# statistics and the painting's) that --style-weight means as given: the geometric mean over the
# bench's tuned pairs (astronaut x Starry Night, coffee x Kandinsky, mountains x Great Wave), with
# the default layers; measured by bench/balance.py --calibrate.
REFERENCE: dict[tuple[str, str], float] = {
    ("vgg19", "gram"): 0.8847,
    ("vgg19", "meancov"): 0.6394,
    ("vgg19", "histogram"): 0.5189,
    ("vgg16", "gram"): 0.8909,
    ("vgg16", "meancov"): 0.6497,
    ("vgg16", "histogram"): 0.5184,
}
# The weight is never scaled by more than this, either way: a pair at the edge of what the rule
# was measured on keeps a sane balance.
MAX_FACTOR = 3.0


def measuring(config: StyleConfig, side: int = MEASURE_SIZE) -> StyleConfig:
    """The settings the photo's distance is measured with: ``config``'s losses, at ``side``."""
    return config.replace(size=side, scales=1, iterations=None, tile=None)


def _long_side(image: ImageLike) -> int | None:
    """The photo's long side as given (None where it cannot be told without reading it)."""
    from PIL import Image

    if isinstance(image, torch.Tensor):
        return max(image.shape[-2:])
    if isinstance(image, Image.Image):
        return max(image.size)
    try:
        with Image.open(image) as img:
            return max(img.size)
    except Exception:  # noqa: BLE001 -- prepare_inputs reports an unreadable file properly
        return None


def read(
    config: StyleConfig,
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    content_masks: Sequence[ImageLike],
    style_masks: Sequence[ImageLike | None],
    device: torch.device,
) -> Inputs | None:
    """The pair as the balance measures it (at MEASURE_SIZE); None where the balance is fixed."""
    if not config.auto_balance:
        return None
    # A small photo in a small run is measured at its own size (a 64 px preview costs no 512 px
    # pass); one the run enlarges, as the run sees it, where the painting is read large enough.
    side = min(MEASURE_SIZE, max(_long_side(content) or MEASURE_SIZE, config.size))
    return prepare_inputs(
        measuring(config, side), content, style, content_masks, style_masks, device=device
    )


def photo_distance(
    net: VGGFeatures,
    config: StyleConfig,
    inputs: Inputs,
    *,
    device: torch.device,
    stats_of: StatsOf | None = None,
    dtype: torch.dtype | None = None,
) -> float:
    """The style loss of the content image itself (weight 1): how far the photo's statistics
    start from the painting's, with the run's masks and colours, at ``inputs``' size (up to
    MEASURE_SIZE px; ``impasto.Stylizer.balanced`` reads the images at that size)."""
    scaled = inputs.at(config, min(config.size, MEASURE_SIZE))
    stat, layers = get_statistic(config.style_loss), config.style_layers
    stats_of = stats_of or style_statistics_of(net, stat, layers, device, dtype)
    content, styles = scaled.colored(config)
    with torch.no_grad():
        per_style = [
            stats_of(s, m, f"style mask {i}")
            for i, (s, m) in enumerate(zip(styles, scaled.style_masks), 1)
        ]
        sizes = layer_sizes(*content.shape[-2:], layers, config.network)
        targets = style_targets(config, stat, per_style, scaled.content_masks, sizes, device=device)
        loss = StyleLoss(
            targets,
            dict(zip(layers, config.normalized_style_layer_weights)),
            statistic=stat,
            relative=config.loss_normalization == "relative",
            squared=config.style_distance == "squared",
        )
        found = net(content.to(device), dtype=dtype)
        return float(sum(loss.layer_term(name, found[name]) for name in layers))


def factor(config: StyleConfig, distance: float) -> float:
    """What ``--balance auto`` multiplies ``--style-weight`` by for a photo at ``distance``:
    rounded to 0.01, so that the same pair read another way (a path, a PIL image, decoded at
    another reduced size) gets the same weight."""
    reference = REFERENCE.get((config.network, config.style_loss), REFERENCE[("vgg19", "gram")])
    return round(min(MAX_FACTOR, max(1.0 / MAX_FACTOR, distance / reference)), 2)


def balanced(
    net: VGGFeatures,
    config: StyleConfig,
    inputs: Inputs,
    *,
    device: torch.device,
    measure: Inputs | None = None,
    stats_of: StatsOf | None = None,
    dtype: torch.dtype | None = None,
) -> StyleConfig:
    """``config`` with the style weight this pair's balance gives, and ``balance="fixed"`` (so a
    checkpoint resumes on the same weight); ``config`` itself where the balance is fixed.
    Measured on ``measure`` (the pair as :func:`read` reads it) or else on a run's ``inputs``
    (at their size, up to MEASURE_SIZE)."""
    if not config.auto_balance:
        return config
    if measure is None:
        at, pair = config, inputs
    else:
        at, pair = measuring(config, max(measure.content.shape[-2:])), measure
    distance = photo_distance(net, at, pair, device=device, stats_of=stats_of, dtype=dtype)
    weight = min(MAX_WEIGHT, config.style_weight * factor(config, distance))
    return config.replace(style_weight=weight, balance="fixed")
