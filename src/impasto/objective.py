"""The loss of one scale of a run: targets computed once, then the weighted terms of an image.

An :class:`Objective` is what the optimiser minimises: called on the image, it returns the
weighted loss terms (content, style, tv and any extra ones) and leaves their summed gradient in
the image's ``.grad``. The content and style targets are computed once, when it is built, and
never again per step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from impasto import regions
from impasto.budget import recomputes
from impasto.config import StyleConfig
from impasto.features import VGGFeatures
from impasto.inputs import Inputs
from impasto.losses import ContentLoss, StyleLoss, StyleTarget, TVLoss
from impasto.statistics import StyleStatistic, get_statistic
from impasto.tiles import TileGrid
from impasto.tiling import TiledObjective, features_in_tiles, layer_sizes, statistics_in_tiles

Terms = dict[str, torch.Tensor]
# Extra loss terms of an image (e.g. video's temporal term): weighted, differentiable.
ExtraTerms = Callable[[torch.Tensor], Terms]
# The statistics of one style image at the style layers: {layer: stats} (see impasto.statistics).
StyleStats = dict[str, dict[str, torch.Tensor]]
# (style image, its mask or None, what to call the mask in a message) -> its statistics.
StatsOf = Callable[[torch.Tensor, torch.Tensor | None, str], StyleStats]


class Objective:
    """The loss of one scale, as :func:`impasto.optimize.optimize` takes it.

    ``net`` sees the image (under ``dtype`` autocast, if given, and recomputing its first
    blocks in the backward pass with ``recompute``); ``content_target`` and ``style_loss`` hold
    the targets; ``weights`` maps each term to its weight.
    """

    def __init__(
        self,
        net: VGGFeatures,
        content_target: ContentLoss,
        style_loss: StyleLoss,
        weights: Mapping[str, float],
        *,
        tv: TVLoss,
        dtype: torch.dtype | None = None,
        recompute: bool = False,
        extra: ExtraTerms | None = None,
    ) -> None:
        self.net, self.content_target, self.style_loss, self.tv = (
            net,
            content_target,
            style_loss,
            tv,
        )
        self.weights, self.dtype, self.recompute, self.extra = (
            dict(weights),
            dtype,
            recompute,
            extra,
        )

    @classmethod
    def build(
        cls,
        net: VGGFeatures,
        config: StyleConfig,
        scaled: Inputs,
        *,
        device: torch.device,
        style_weight: float,
        stats_of: StatsOf | None = None,
        dtype: torch.dtype | None = None,
        extra: ExtraTerms | None = None,
        tiles: tuple[TileGrid, TileGrid] | None = None,
    ) -> Objective | TiledObjective:
        """The objective of ``scaled`` (the inputs at this scale) under ``config``.

        ``stats_of(style, mask, what)`` gives a style image's statistics at the style layers; an
        engine passes one that remembers them, so a batch in one style computes them once.
        With ``tiles`` (the grids of the passes with gradients and without, see
        ``budget.plan_grids``), for an image whose whole step would not fit in memory, the
        content's features are taken tile by tile, and so is every step (impasto.tiling).
        """
        grid = None if tiles is None else tiles[1]
        content, styles = scaled.colored(config)
        relative = config.loss_normalization == "relative"
        stat = get_statistic(config.style_loss)
        if stats_of is None:
            tile = 0 if grid is None else grid.tile
            stats_of = style_statistics_of(net, stat, config.style_layers, device, dtype, tile=tile)
        layers = config.content_layers + config.style_layers
        sizes = layer_sizes(*content.shape[-2:], layers, config.network)
        with torch.no_grad():
            if grid is None:
                found = net(content.to(device), dtype=dtype)
                content_features = {name: found[name] for name in config.content_layers}
                del found
            else:
                content_features = features_in_tiles(
                    net, content, grid, config.content_layers, device=device, dtype=dtype
                )
            content_target = ContentLoss(content_features, relative=relative)
            del content_features
            per_style = [
                stats_of(s, m, f"style mask {i}")
                for i, (s, m) in enumerate(zip(styles, scaled.style_masks), 1)
            ]
            targets = style_targets(
                config, stat, per_style, scaled.content_masks, sizes, device=device
            )
        style_loss = StyleLoss(
            targets,
            dict(zip(config.style_layers, config.normalized_style_layer_weights)),
            statistic=stat,
            relative=relative,
            squared=config.style_distance == "squared",
        )
        weights = {"content": config.content_weight, "style": style_weight, "tv": config.tv_weight}
        objective = cls(
            net,
            content_target,
            style_loss,
            weights,
            tv=TVLoss(config.tv_norm),
            dtype=dtype,
            recompute=recomputes(*content.shape[-2:]),
            extra=extra,
        )
        if tiles is None or len(tiles[0]) == 1:  # one tile: the step is the whole image's
            return objective
        return TiledObjective(objective, *tiles)

    def terms(self, x: torch.Tensor) -> Terms:
        """The weighted terms of ``x``, differentiable."""
        found: dict[str, list[torch.Tensor]] = {"content": [], "style": []}

        def tap(name: str, f: torch.Tensor) -> None:
            # Each layer's terms as soon as the network reaches it: less memory in the backward.
            if name in self.content_target.layers:
                found["content"].append(self.content_target.layer_term(name, f))
            if name in self.style_loss.layer_weights:
                found["style"].append(self.style_loss.layer_term(name, f))

        self.net(x, tap, dtype=self.dtype, recompute=self.recompute)
        zero = torch.zeros((), device=x.device)
        terms = {
            "content": self.weights["content"] * sum(found["content"], zero),
            "style": self.weights["style"] * sum(found["style"], zero),
            "tv": self.weights["tv"] * self.tv(x),
        }
        if self.extra is not None:
            terms |= self.extra(x)
        return terms

    def __call__(self, x: torch.Tensor) -> Terms:
        """The terms of ``x`` (detached), with the gradient of their sum left in ``x.grad``."""
        terms = self.terms(x)
        sum(terms.values(), torch.zeros((), device=x.device)).backward()
        return {k: v.detach() for k, v in terms.items()}


def style_statistics_of(
    net: VGGFeatures,
    stat: StyleStatistic,
    layers: Sequence[str],
    device: torch.device,
    dtype: torch.dtype | None = None,
    *,
    tile: int = 0,
) -> StatsOf:
    """``(style, mask, what) -> {layer: statistics}``, computed with ``net`` at the style's size
    (in tiles of ``tile`` px where the style is larger than that, and the statistic allows)."""

    def stats_of(style: torch.Tensor, mask: torch.Tensor | None, what: str) -> StyleStats:
        h, w = style.shape[-2:]
        if tile and stat.tileable and max(h, w) > tile:
            return _in_tiles(style, mask, what)
        with torch.no_grad():
            features = net(style.to(device), dtype=dtype)
            out = {}
            for layer in layers:
                f = features[layer]
                m = None
                if mask is not None:
                    m = regions.at_layer(mask.to(f.device), f)
                    regions.check_at_layer(m, layer, what)
                out[layer] = stat.of(f, m)
            return out

    def _in_tiles(style: torch.Tensor, mask: torch.Tensor | None, what: str) -> StyleStats:
        h, w = style.shape[-2:]
        masks = None
        if mask is not None:
            masks = {}
            for layer, size in layer_sizes(h, w, layers, net.network).items():
                masks[layer] = regions.at_size(mask.to(device), size)
                regions.check_at_layer(masks[layer], layer, what)
        grid = TileGrid.of(h, w, tile, layers, net.network)
        merged = statistics_in_tiles(
            net, stat, style, grid, layers, {None: masks}, device=device, dtype=dtype
        )[None]
        return {layer: stat.target(merged[layer]) for layer in layers}

    return stats_of


def style_targets(
    config: StyleConfig,
    stat: StyleStatistic,
    per_style: list[StyleStats],
    content_masks: list[torch.Tensor],
    sizes: Mapping[str, tuple[int, int]],
    *,
    device: torch.device,
) -> list[StyleTarget]:
    """The style statistics to match, per output region.

    Without content masks the styles' statistics are blended into one target (as
    jcjohnson/neural-style blends Gram matrices). With them each style has its own region,
    weighted by the region's share of the image, so that every painted pixel feels the same
    pull whatever its region's size (and by its --style-blend weight relative to the mean).
    """
    weights = config.style_weights_for(len(per_style))
    layers = config.style_layers
    areas = regions.assign(content_masks, len(per_style))
    if all(a is None for a in areas):
        if len(per_style) == 1:
            return [StyleTarget(per_style[0])]
        blended = {layer: stat.blend([s[layer] for s in per_style], weights) for layer in layers}
        return [StyleTarget(blended)]
    targets = []
    mean_weight = sum(weights) / len(weights)
    for i, (stats, area, w) in enumerate(zip(per_style, areas, weights), 1):
        if area is None:
            targets.append(StyleTarget(stats, None, w / mean_weight))
            continue
        area = area.to(device)
        masks = {layer: regions.at_size(area, sizes[layer]) for layer in layers}
        for layer, m in masks.items():
            regions.check_at_layer(m, layer, f"the region of style {i}")
        targets.append(StyleTarget(stats, masks, w / mean_weight * float(area.mean())))
    return targets
