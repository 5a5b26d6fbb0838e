"""impasto.tiles and layers.reach: where the tiles are, and why their interiors' features are
the whole image's."""

import pytest
import torch

from impasto.features import VGGFeatures
from impasto.layers import pooling_grid, pools_before, reach
from impasto.tiles import TileGrid
from tests.conftest import random_weights

DEFAULT = ("conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
SHALLOW = ("conv1_1", "conv2_1", "conv3_1")


def test_reach_of_one_convolution_is_one_pixel_and_grows_with_depth():
    # One 3x3 convolution with padding 1 sees one pixel beyond a span on each side.
    assert reach(["conv1_1"], "vgg19") == (1, 1)
    # conv2_1: its convolution reaches one cell at stride 2 (2 px), the pool's window is that
    # cell's own pixels, and the two convolutions before it one pixel each: 4.
    assert reach(["conv2_1"], "vgg19") == (4, 4)
    reaches = [reach([layer], "vgg19")[0] for layer in DEFAULT[1:]]
    assert reaches == sorted(reaches) and len(set(reaches)) == len(reaches)
    assert reach(DEFAULT, "vgg19") == reach(["conv5_1"], "vgg19")
    assert reach(["conv5_1"], "vgg16") < reach(["conv5_1"], "vgg19")  # fewer convolutions


def test_pooling_grid_is_the_deepest_layers_stride():
    assert pooling_grid(["conv1_1"], "vgg19") == 1
    assert pooling_grid(SHALLOW, "vgg19") == 4
    assert pooling_grid(DEFAULT, "vgg19") == 16
    assert pooling_grid(["pool5"], "vgg19") == 32


@pytest.mark.parametrize(
    "height,width,tile",
    [(256, 224, 128), (1000, 777, 512), (100, 60, 512), (513, 513, 128), (4096, 3072, 768)],
)
def test_interiors_partition_the_image_on_the_pooling_grid(height, width, tile):
    grid = TileGrid.of(height, width, tile, DEFAULT, "vgg19")
    before, after = reach(DEFAULT, "vgg19")
    seen = torch.zeros(height, width, dtype=torch.int32)
    tiles = grid.tiles()
    assert len(tiles) == len(grid)
    for t in tiles:
        (r0, r1), (c0, c1) = t.rows, t.cols
        seen[r0:r1, c0:c1] += 1
        assert 0 < r1 - r0 <= grid.tile and 0 < c1 - c0 <= grid.tile
        # Cuts and crops start on the grid (or at the image's edge), so the pools line up.
        for start in (r0, c0, t.crop_rows[0], t.crop_cols[0]):
            assert start % 16 == 0
        for end, length in ((r1, height), (c1, width)):
            assert end == length or end % 16 == 0
        # The crop holds the interior and the reach around it, cut only at the image's edges.
        assert t.crop_rows[0] <= max(0, r0 - before) and t.crop_cols[0] <= max(0, c0 - before)
        assert t.crop_rows[1] >= min(height, r1 + after)
        assert t.crop_cols[1] >= min(width, c1 + after)
        assert 0 <= t.crop_rows[0] and t.crop_rows[1] <= height and t.crop_cols[1] <= width
    assert bool((seen == 1).all())  # every pixel in exactly one interior


def test_cuts_are_even_and_no_piece_is_longer_than_a_tile():
    grid = TileGrid.of(1000, 1000, 512, DEFAULT, "vgg19")
    cuts = grid.cuts(1000)
    assert len(cuts) == 3 and abs((cuts[1] - cuts[0]) - (cuts[2] - cuts[1])) <= 16
    assert grid.cuts(300) == [0, 300]  # smaller than a tile: one piece
    assert TileGrid.of(64, 64, 100, DEFAULT, "vgg19").tile == 96  # rounded down to the grid
    assert TileGrid.of(64, 64, 5, DEFAULT, "vgg19").tile == 16  # at least one cell
    with pytest.raises(ValueError, match="multiple"):
        TileGrid(64, 64, tile=24, before=80, after=70, align=16)


@pytest.mark.parametrize("height,width", [(200, 168), (197, 171)])
def test_windows_partition_every_layer(height, width):
    """At every stride the windows of the interiors cover the layer's positions once (an end at
    the image's edge is floored, as the pools floor it)."""
    grid = TileGrid.of(height, width, 64, DEFAULT, "vgg19")
    for s in (1, 2, 4, 8, 16):
        seen = torch.zeros(height // s, width // s, dtype=torch.int32)
        for t in grid.tiles():
            rows, cols = t.window(s)
            inside = t.inside(s)
            seen[rows, cols] += 1
            assert inside[0].stop - inside[0].start == rows.stop - rows.start
            assert inside[1].stop - inside[1].start == cols.stop - cols.start
        assert bool((seen == 1).all()), s


def _features(net, image, layers):
    with torch.no_grad():
        return net(image)


@pytest.mark.parametrize("layers", [SHALLOW, DEFAULT])
def test_interior_features_of_a_crop_are_the_whole_images(layers):
    """What the halo is for: each tile's interior, computed from its crop alone, has exactly the
    features of the whole image there; one pixel less of halo after it, and the interior's last
    positions differ. (The halo before is on the pooling grid, so less of it is a whole cell.)"""
    net = VGGFeatures("vgg19", layers, weights=random_weights("vgg19"))
    size = 240 if layers is DEFAULT else 64
    image = torch.rand(1, 3, size, size - 16, generator=torch.Generator().manual_seed(0))
    whole = _features(net, image, layers)
    grid = TileGrid.of(size, size - 16, size // 3, layers, "vgg19")
    short = TileGrid(grid.height, grid.width, grid.tile, grid.before, grid.after - 1, grid.align)
    for g, exact in ((grid, True), (short, False)):
        differs = False
        for t in g.tiles():
            (r0, r1), (c0, c1) = t.crop_rows, t.crop_cols
            crop = _features(net, image[..., r0:r1, c0:c1], layers)
            for name in layers:
                s = 2 ** pools_before(name, "vgg19")
                part, ref = crop[name][(..., *t.inside(s))], whole[name][(..., *t.window(s))]
                close = torch.allclose(part, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))
                if exact:
                    assert close, (name, t)
                differs |= not close
        assert differs != exact
