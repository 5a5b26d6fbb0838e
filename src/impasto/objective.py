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
    ) -> Objective:
        """The objective of ``scaled`` (the inputs at this scale) under ``config``.

        ``stats_of(style, mask, what)`` gives a style image's statistics at the style layers; an
        engine passes one that remembers them, so a batch in one style computes them once.
        """
        content, styles = scaled.colored(config)
        relative = config.loss_normalization == "relative"
        stat = get_statistic(config.style_loss)
        if stats_of is None:
            stats_of = style_statistics_of(net, stat, config.style_layers, device, dtype)
        with torch.no_grad():
            content_features = net(content.to(device), dtype=dtype)
            content_target = ContentLoss(
                {name: content_features[name] for name in config.content_layers}, relative=relative
            )
            per_style = [
                stats_of(s, m, f"style mask {i}")
                for i, (s, m) in enumerate(zip(styles, scaled.style_masks), 1)
            ]
            targets = style_targets(config, stat, per_style, scaled.content_masks, content_features)
        style_loss = StyleLoss(
            targets,
            dict(zip(config.style_layers, config.normalized_style_layer_weights)),
            statistic=stat,
            relative=relative,
            squared=config.style_distance == "squared",
        )
        weights = {"content": config.content_weight, "style": style_weight, "tv": config.tv_weight}
        return cls(
            net,
            content_target,
            style_loss,
            weights,
            tv=TVLoss(config.tv_norm),
            dtype=dtype,
            recompute=recomputes(*content.shape[-2:]),
            extra=extra,
        )

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
) -> StatsOf:
    """``(style, mask, what) -> {layer: statistics}``, computed with ``net`` at the style's size."""

    def stats_of(style: torch.Tensor, mask: torch.Tensor | None, what: str) -> StyleStats:
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

    return stats_of


def style_targets(
    config: StyleConfig,
    stat: StyleStatistic,
    per_style: list[StyleStats],
    content_masks: list[torch.Tensor],
    content_features: Mapping[str, torch.Tensor],
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
        device = next(iter(content_features.values())).device
        area = area.to(device)
        masks = {layer: regions.at_layer(area, content_features[layer]) for layer in layers}
        for layer, m in masks.items():
            regions.check_at_layer(m, layer, f"the region of style {i}")
        targets.append(StyleTarget(stats, masks, w / mean_weight * float(area.mean())))
    return targets
