"""Where the tiles of a large image are: each tile's interior, and the crop the network reads
to compute that interior's features exactly as the whole image would. No torch.

The interiors partition the image: every pixel, and every position of every layer, belongs to
exactly one tile, so sums over positions (a Gram matrix, a mean, a content error) add up over
tiles with nothing counted twice. A crop is the interior with a halo around it, as wide as the
network's reach (``layers.reach``: 70 px on each side for VGG-19 up to conv5_1) and cut at
the image's edges, where the network's zero padding is the whole image's too. Interiors and
crops start on the pooling grid (multiples of 16 px up to conv5_1), so a crop's 2x2 pools are
the whole image's, and the halo before an interior is the reach rounded up to that grid.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from impasto.layers import pooling_grid, reach

Span = tuple[int, int]  # [start, end) in pixels


@dataclass(frozen=True)
class Tile:
    """One tile: its interior and its crop, as [start, end) pixel spans of the image."""

    rows: Span
    cols: Span
    crop_rows: Span
    crop_cols: Span

    def window(self, stride: int) -> tuple[slice, slice]:
        """The interior in the whole image's feature map at a layer of this stride (an end at
        the image's edge is floored there, as the pools floor it)."""
        return slice(self.rows[0] // stride, self.rows[1] // stride), slice(
            self.cols[0] // stride, self.cols[1] // stride
        )

    def inside(self, stride: int) -> tuple[slice, slice]:
        """The interior in the crop's own feature map at a layer of this stride."""
        (r0, r1), (c0, c1) = self.rows, self.cols
        top, left = self.crop_rows[0], self.crop_cols[0]
        return slice((r0 - top) // stride, (r1 - top) // stride), slice(
            (c0 - left) // stride, (c1 - left) // stride
        )

    @property
    def crop_pixels(self) -> int:
        return (self.crop_rows[1] - self.crop_rows[0]) * (self.crop_cols[1] - self.crop_cols[0])


@dataclass(frozen=True)
class TileGrid:
    """The tiles of a ``height`` x ``width`` image: interiors of at most ``tile`` px a side,
    cut on multiples of ``align``, read with ``before`` px of halo above and left of each
    interior and ``after`` px below and right (both cut at the image's edges)."""

    height: int
    width: int
    tile: int
    before: int
    after: int
    align: int

    def __post_init__(self) -> None:
        if self.align < 1 or self.tile < self.align or self.tile % self.align:
            raise ValueError(f"tile {self.tile} px is not a multiple of the grid {self.align}")
        if self.before % self.align or self.before < 0 or self.after < 0:
            raise ValueError(f"halo {self.before} px before is not on the grid {self.align}")

    @classmethod
    def of(
        cls, height: int, width: int, tile: int, layers: Iterable[str], network: str
    ) -> TileGrid:
        """The grid for ``network``'s ``layers``: ``tile`` rounded down to the pooling grid
        (at least one cell of it), halos from the network's reach."""
        layers = list(layers)
        align = pooling_grid(layers, network)
        before, after = reach(layers, network)
        return cls(
            height,
            width,
            max(align, tile // align * align),
            math.ceil(before / align) * align,
            after,
            align,
        )

    def cuts(self, length: int) -> list[int]:
        """Where the interiors along a side of ``length`` px begin and end: as even as the grid
        allows, none longer than ``tile``."""
        n = max(1, math.ceil(length / self.tile))
        while True:
            inner = [round(i * length / n / self.align) * self.align for i in range(1, n)]
            cuts = [0, *inner, length]
            pieces = [b - a for a, b in zip(cuts, cuts[1:])]
            if max(pieces) <= self.tile and min(pieces) > 0:
                return cuts
            n += 1  # rounding to the grid made a piece too long: one more

    def tiles(self) -> list[Tile]:
        """Every tile, row by row; their interiors partition the image."""
        rows, cols = self.cuts(self.height), self.cuts(self.width)
        out = []
        for r0, r1 in zip(rows, rows[1:]):
            for c0, c1 in zip(cols, cols[1:]):
                out.append(
                    Tile(
                        (r0, r1),
                        (c0, c1),
                        (max(0, r0 - self.before), min(self.height, r1 + self.after)),
                        (max(0, c0 - self.before), min(self.width, c1 + self.after)),
                    )
                )
        return out

    def __len__(self) -> int:
        return (len(self.cuts(self.height)) - 1) * (len(self.cuts(self.width)) - 1)

    @property
    def largest_crop(self) -> int:
        """Pixels of the largest crop: what one tile's pass holds at once."""
        return max(t.crop_pixels for t in self.tiles())

    @property
    def overhead(self) -> float:
        """Pixels the network reads in all crops over the image's pixels (1 = no halo)."""
        return sum(t.crop_pixels for t in self.tiles()) / (self.height * self.width)
