"""The loss of a large image and its exact gradient, computed tile by tile.

Every term of the method is either local (content, total variation: sums over positions) or a
function of statistics that are sums over positions (a Gram matrix; a mean and a covariance).
So one step over an image too large for memory is taken in tiles (``impasto.tiles``) with the
result of the untiled step, up to float rounding:

1. statistics: a pass without gradients over every tile adds up each style layer's statistics
   of the image, over the tile's interior positions only (nothing is counted twice);
2. the style loss of those whole statistics, and its gradient with respect to them, are small
   (C x C per layer) and computed once;
3. gradients: a pass with gradients over each tile gives its pixels the gradient of the whole
   loss: through each style layer, the statistics' gradient (fixed for the step) times the
   tile's own share of the statistics (``StyleStatistic.backward``); content and total
   variation over the interior, as shares of the whole image's means.

A tile's crop carries a halo as wide as the network's reach, so the features of its interior
are those of the whole image, and the gradients of all crops summed are the image's gradient:
there is no seam to hide. Each tile's pass depends only on the image, the step's statistics and
their gradient, never on another tile's pass, so the passes of a step could run on several
devices at once (``tile_gradient`` is that unit of work).

Memory: one crop's activations, the image-sized buffers (the image, its gradient, the
optimiser's state) and the content targets (stitched from the tiles of a pass without
gradients).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from impasto.budget import recomputes
from impasto.features import VGGFeatures
from impasto.layers import canonical, pools_before
from impasto.losses import ContentLoss, StyleLoss
from impasto.statistics import Stats, StyleStatistic
from impasto.tiles import Tile, TileGrid

if TYPE_CHECKING:
    from impasto.objective import Objective, Terms

# Statistics per region (the index of a target with its own masks; None: the whole image),
# then per layer.
RegionStats = dict[int | None, dict[str, Stats]]
# The masks of each region, per layer (None: every position counts fully).
RegionMasks = Mapping[int | None, Mapping[str, Tensor] | None]


def stride(layer: str, network: str) -> int:
    """How many input pixels apart neighbouring positions of ``layer`` are."""
    return 2 ** pools_before(layer, network)


def layer_sizes(
    height: int, width: int, layers: Sequence[str], network: str
) -> dict[str, tuple[int, int]]:
    """Each layer's (h, w) for an image of ``height`` x ``width`` (each 2x2 pool floors)."""
    return {
        layer: (height // stride(layer, network), width // stride(layer, network))
        for layer in layers
    }


def _crop(image: Tensor, tile: Tile, device: torch.device) -> Tensor:
    """Shape: (1, 3, H, W) -> (1, 3, crop h, crop w), on ``device``."""
    (r0, r1), (c0, c1) = tile.crop_rows, tile.crop_cols
    return image[..., r0:r1, c0:c1].to(device)


def features_in_tiles(
    net: VGGFeatures,
    image: Tensor,
    grid: TileGrid,
    layers: Sequence[str],
    *,
    device: torch.device,
    dtype: torch.dtype | None = None,
) -> dict[str, Tensor]:
    """``net(image)`` at ``layers``, without gradients, one tile at a time: the features of
    each tile's interior, stitched into whole maps.

    Shape: (1, 3, H, W) -> {layer: (1, C, H / s, W / s)}.
    """
    out: dict[str, Tensor] = {}
    sizes = layer_sizes(grid.height, grid.width, layers, net.network)
    for tile in grid.tiles():

        def keep(name: str, f: Tensor, tile: Tile = tile) -> None:
            if name not in layers:
                return
            s = stride(name, net.network)
            if name not in out:  # the first tile tells the channels, dtype and layout
                layout = (
                    torch.channels_last
                    if f.is_contiguous(memory_format=torch.channels_last) and f.shape[1] > 1
                    else torch.contiguous_format
                )
                out[name] = torch.empty(
                    (1, f.shape[1], *sizes[name]),
                    dtype=f.dtype,
                    device=f.device,
                    memory_format=layout,
                )
            rows, cols = tile.window(s)
            out[name][..., rows, cols] = f[(..., *tile.inside(s))]

        with torch.no_grad():
            net(_crop(image, tile, device), keep, dtype=dtype)
    return out


def statistics_in_tiles(
    net: VGGFeatures,
    stat: StyleStatistic,
    image: Tensor,
    grid: TileGrid,
    layers: Sequence[str],
    masks: RegionMasks,
    *,
    device: torch.device,
    dtype: torch.dtype | None = None,
) -> RegionStats:
    """The statistics of ``image`` at ``layers``, for each region of ``masks``, added up over
    the tiles of ``grid`` (a pass without gradients)."""
    network = net.network
    sizes = layer_sizes(grid.height, grid.width, layers, network)
    norms = {
        key: {
            layer: stat.norm(None if m is None else m[layer], sizes[layer][0] * sizes[layer][1])
            for layer in layers
        }
        for key, m in masks.items()
    }
    parts: dict[int | None, dict[str, list[Stats]]] = {
        key: {layer: [] for layer in layers} for key in masks
    }
    for tile in grid.tiles():

        def add(name: str, f: Tensor, tile: Tile = tile) -> None:
            if name not in layers:
                return
            s = stride(name, network)
            inside, window = tile.inside(s), tile.window(s)
            part = f[(..., *inside)]
            for key, m in masks.items():
                mask = None if m is None else m[name][(..., *window)]
                parts[key][name].append(stat.sums(part, mask, norms[key][name]))

        with torch.no_grad():
            net(_crop(image, tile, device), add, dtype=dtype)
    return {
        key: {layer: stat.merge(found) for layer, found in by_layer.items()}
        for key, by_layer in parts.items()
    }


class _Through(torch.autograd.Function):
    """A zero whose gradient with respect to ``features`` is ``backward(features)``: carries a
    gradient computed from the step's whole statistics into a tile's backward pass, without
    keeping anything but the features the network keeps anyway."""

    @staticmethod
    def forward(ctx: Any, features: Tensor, backward: Any) -> Tensor:
        ctx.save_for_backward(features)
        ctx.backward = backward
        return features.new_zeros((), dtype=torch.float32)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (features,) = ctx.saved_tensors
        return ctx.backward(features) * grad.to(features.dtype), None


def _tv_share(crop: Tensor, tile: Tile, height: int, width: int, norm: str) -> Tensor:
    """The tile's share of ``tv_loss`` of the whole image: the differences whose first pixel is
    in the interior (their neighbour is in the crop's halo or interior).

    Shape: (1, 3, crop h, crop w) -> scalar.
    """
    top, left = tile.crop_rows[0], tile.crop_cols[0]
    (r0, r1), (c0, c1) = tile.rows, tile.cols
    rows, cols = slice(r0 - top, r1 - top), slice(c0 - left, c1 - left)
    x_end, y_end = min(c1, width - 1) - left, min(r1, height - 1) - top
    dx = crop[..., rows, c0 - left + 1 : x_end + 1] - crop[..., rows, c0 - left : x_end]
    dy = crop[..., r0 - top + 1 : y_end + 1, cols] - crop[..., r0 - top : y_end, cols]
    channels = crop.shape[1]
    return _size(dx, norm).sum() / (channels * height * (width - 1)) + _size(dy, norm).sum() / (
        channels * (height - 1) * width
    )


def _size(d: Tensor, norm: str) -> Tensor:
    return d.abs() if norm == "l1" else d.square()


class TiledObjective:
    """An :class:`~impasto.objective.Objective` taken tile by tile: called on the image, it
    returns the same weighted terms and leaves the same gradient in ``x.grad``, up to float
    rounding, holding one tile's activations at a time.

    ``grid`` cuts the image for the passes with gradients; ``stats_grid`` (default: the same)
    for the pass without, which holds less per pixel and so can take larger tiles. Extra terms
    (``objective.extra``) see the whole image, as they are not known to be sums.
    """

    def __init__(
        self, objective: Objective, grid: TileGrid, stats_grid: TileGrid | None = None
    ) -> None:
        style = objective.style_loss
        stat = style.statistic
        if not isinstance(stat, StyleStatistic) or not stat.tileable:
            name = getattr(stat, "name", type(stat).__name__)
            raise ValueError(f"{name} statistics cannot be taken in tiles")
        self.objective, self.grid = objective, grid
        self.stats_grid = stats_grid or grid
        self.stat: StyleStatistic = stat
        net = objective.net
        self.network = net.network
        self.content_layers = list(objective.content_target.layers)
        self.style_layers = list(style.layer_weights)
        # One region per target with masks of its own; the targets without share the whole.
        self.masks: dict[int | None, Mapping[str, Tensor] | None] = {}
        for i, t in enumerate(style.targets):
            if t.masks is None:
                self.masks[None] = None
            else:
                self.masks[i] = t.masks
        sizes = layer_sizes(grid.height, grid.width, self.style_layers, self.network)
        self.norms = {
            key: {
                layer: stat.norm(None if m is None else m[layer], h * w)
                for layer, (h, w) in sizes.items()
            }
            for key, m in self.masks.items()
        }
        # The network's names for the layers the losses use (conv4_2 and relu4_2 are one).
        self._canonical = {n: canonical(n, self.network) for n in net.requested}

    # -- one step ------------------------------------------------------------------------------

    def __call__(self, x: Tensor) -> Terms:
        """The terms of ``x`` (detached), with the gradient of their sum left in ``x.grad``.

        Shape: x (1, 3, H, W), requiring grad.
        """
        stats = self.statistics(x)
        style, grads = self.style_gradient(stats)
        grad = torch.zeros_like(x)
        content = torch.zeros((), device=x.device)
        tv = torch.zeros((), device=x.device)
        for tile in self.grid.tiles():
            (r0, r1), (c0, c1) = tile.crop_rows, tile.crop_cols
            part_content, part_tv, part_grad = self.tile_gradient(
                x.detach()[..., r0:r1, c0:c1], tile, stats, grads
            )
            grad[..., r0:r1, c0:c1] += part_grad
            content, tv = content + part_content, tv + part_tv
        weights = self.objective.weights
        terms: dict[str, Tensor] = {
            "content": weights["content"] * content,
            "style": style,
            "tv": weights["tv"] * tv,
        }
        x.grad = grad if x.grad is None else x.grad + grad
        if self.objective.extra is not None:
            extra = self.objective.extra(x)
            sum(extra.values(), torch.zeros((), device=x.device)).backward()
            terms |= {k: v.detach() for k, v in extra.items()}
        return terms

    def statistics(self, x: Tensor) -> RegionStats:
        """Pass 1: the style statistics of the whole image ``x``, per region and layer."""
        o = self.objective
        return statistics_in_tiles(
            o.net,
            self.stat,
            x.detach(),
            self.stats_grid,
            self.style_layers,
            self.masks,
            device=x.device,
            dtype=o.dtype,
        )

    def style_gradient(self, stats: RegionStats) -> tuple[Tensor, RegionStats]:
        """The weighted style term of the whole statistics, and its gradient with respect to
        them (small: C x C a layer), as ``StyleLoss.layer_term`` weighs it."""
        style: StyleLoss = self.objective.style_loss
        leaves = {
            key: {
                layer: {k: v.detach().requires_grad_(True) for k, v in s.items()}
                for layer, s in by_layer.items()
            }
            for key, by_layer in stats.items()
        }
        terms: list[Tensor] = []
        with torch.enable_grad():
            for layer, w in style.layer_weights.items():
                for i, t in enumerate(style.targets):
                    key = None if t.masks is None else i
                    d = self.stat.compare(
                        leaves[key][layer], t.stats[layer], relative=style.relative
                    )
                    terms.append(style.weigh(d, t, w).double())
            total = self.objective.weights["style"] * torch.stack(terms).sum()
            if total.requires_grad:
                total.backward()
        grads = {
            key: {
                layer: {k: torch.zeros_like(v) if v.grad is None else v.grad for k, v in s.items()}
                for layer, s in by_layer.items()
            }
            for key, by_layer in leaves.items()
        }
        return total.detach().float(), grads

    def tile_gradient(
        self, crop: Tensor, tile: Tile, stats: RegionStats, grads: RegionStats
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Pass 2 for one tile: its share of the content and total-variation terms (unweighted)
        and the gradient of the whole loss with respect to its crop's pixels.

        Independent of every other tile's pass: it needs only the crop of the image, the
        step's statistics and their gradient.

        Shape: crop (1, 3, h, w) -> scalar, scalar, (1, 3, h, w).
        """
        o = self.objective
        content_loss: ContentLoss = o.content_target
        crop = crop.detach().clone().requires_grad_(True)
        found: list[Tensor] = []
        content: list[Tensor] = []

        def tap(name: str, f: Tensor) -> None:
            s = stride(name, self.network)
            part = f[(..., *tile.inside(s))]
            window = tile.window(s)
            if name in self.content_layers:
                content.append(content_loss.layer_term(name, part, window))
            if name in self.style_layers:
                for key, masks in self.masks.items():
                    mask = None if masks is None else masks[name][(..., *window)]
                    found.append(
                        _Through.apply(
                            part,
                            _backward(
                                self.stat,
                                mask,
                                self.norms[key][name],
                                stats[key][name],
                                grads[key][name],
                            ),
                        )
                    )

        h, w = crop.shape[-2:]
        o.net(crop, tap, dtype=o.dtype, recompute=recomputes(h, w))
        zero = torch.zeros((), device=crop.device)
        content_part = sum(content, zero)
        tv_part = zero
        if o.weights["tv"]:
            tv_part = _tv_share(crop, tile, self.grid.height, self.grid.width, o.tv.norm)
        total = o.weights["content"] * content_part + o.weights["tv"] * tv_part + sum(found, zero)
        total.backward()
        assert crop.grad is not None
        return content_part.detach(), tv_part.detach(), crop.grad


def _backward(
    stat: StyleStatistic, mask: Tensor | None, norm: Tensor, stats: Stats, grad: Stats
) -> Any:
    def backward(features: Tensor) -> Tensor:
        return stat.backward(features, mask, norm, stats, grad)

    return backward
