"""impasto.tiling: a step taken tile by tile is the untiled step (terms and gradient), a tiled
run ends where the untiled one does, and leaves no seam at the tiles' borders."""

import json

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from impasto import StyleConfig, Stylizer, budget
from impasto.cli import main
from impasto.features import VGGFeatures
from impasto.image import load_image, read_metadata, resize_long_side
from impasto.inputs import Inputs
from impasto.objective import Objective, style_statistics_of
from impasto.optimize import optimize
from impasto.statistics import get_statistic
from impasto.tiles import TileGrid
from impasto.tiling import TiledObjective
from tests.conftest import EXAMPLES, random_weights

DEFAULT_LAYERS = StyleConfig().content_layers + StyleConfig().style_layers
# Up to conv3_1 the halo is 12 px and the grid 4 px: tiles can cut a 96 px image for real.
SHALLOW = {"content_layers": ("conv3_1",), "style_layers": ("conv1_1", "conv2_1", "conv3_1")}


@pytest.fixture(scope="module")
def net32() -> VGGFeatures:
    return VGGFeatures("vgg19", DEFAULT_LAYERS, weights=random_weights("vgg19"))


def _shallow_net(dtype: torch.dtype = torch.float32) -> VGGFeatures:
    layers = SHALLOW["content_layers"] + SHALLOW["style_layers"]
    return VGGFeatures("vgg19", layers, weights=random_weights("vgg19")).to(dtype)


def _scene(h: int, w: int, dtype: torch.dtype, *, masked: bool):
    """A photo, two styles and (masked) one content mask: the first style on its white part,
    the second on the rest, with a soft edge."""
    g = torch.Generator().manual_seed(1)
    content = torch.rand(1, 3, h, w, generator=g, dtype=dtype)
    styles = [torch.rand(1, 3, 150, 130, generator=g, dtype=dtype) for _ in range(2)]
    masks = []
    if masked:
        m = torch.zeros(1, 1, h, w, dtype=dtype)
        m[..., :, : w // 2] = 1
        m[..., h // 3 : h // 2, w // 2 :] = 0.5
        masks = [m]
    start = (content + 0.1 * torch.rand(content.shape, generator=g, dtype=dtype)).clamp(0, 1)
    return Inputs(content, styles, masks, [None, None]), start


def _gradient(objective, x: torch.Tensor):
    x = x.detach().clone().requires_grad_(True)
    terms = objective(x)
    return terms, x.grad


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _temporal(reference: torch.Tensor):
    """An extra term (as video's temporal loss is one): it sees the whole image."""
    return lambda x: {"temporal": 0.3 * (x - reference).square().mean()}


# The untiled float32 gradient is itself this far from the float64 one on these networks
# (measured: gram 4e-4, meancov 1.3e-3): rounding, amplified for meancov by the eigenvalues of
# nearly singular covariances. A tile one pixel short of its halo is off by 3e-3 on its own.
FLOAT32 = {"gram": 1e-4, "meancov": 1e-3}


@pytest.mark.parametrize("loss", ["gram", "meancov"])
def test_a_tiled_step_is_the_untiled_step(net32, loss):
    """At 256 px in tiles of 128: two styles, one on a masked region, total variation and an
    extra term: the same terms and the same gradient, to float32 rounding. (The styles are
    larger than a tile: their statistics are taken in tiles too.)"""
    config = StyleConfig(size=256, style_loss=loss, tv_weight=0.1)
    inputs, start = _scene(256, 224, torch.float32, masked=True)
    build = dict(device=torch.device("cpu"), style_weight=10.0, extra=_temporal(start.flip(-1)))
    whole = Objective.build(net32, config, inputs, **build)
    grid = TileGrid.of(256, 224, 128, DEFAULT_LAYERS, "vgg19")
    if loss == "gram":  # the targets too, tile by tile
        tiled = Objective.build(net32, config, inputs, **build, tiles=(grid, grid))
    else:  # the same targets (already checked above), to save a second build
        tiled = TiledObjective(whole, grid)
    assert isinstance(tiled, TiledObjective) and len(grid) == 4
    (terms, g), (tiled_terms, tiled_g) = _gradient(whole, start), _gradient(tiled, start)
    assert set(terms) == set(tiled_terms) == {"content", "style", "tv", "temporal"}
    for name in terms:
        assert float(tiled_terms[name]) == pytest.approx(float(terms[name]), rel=1e-5, abs=1e-9)
    assert _relative(tiled_g, g) < FLOAT32[loss]


@pytest.mark.parametrize("loss", ["gram", "meancov"])
def test_in_float64_a_tiled_step_is_the_untiled_step_to_its_last_digits(loss):
    """With float rounding out of the way, nothing is left: in tiles of 32 (9 of them, the
    statistics' pass in 4 larger ones) the gradient agrees to the last digits float64 keeps
    through each loss (meancov's eigenvalues amplify rounding a million-fold)."""
    config = StyleConfig(
        size=96, tv_weight=0.05, style_distance="squared", style_loss=loss, **SHALLOW
    )
    layers = config.content_layers + config.style_layers
    net = _shallow_net(torch.float64)
    inputs, start = _scene(96, 88, torch.float64, masked=True)
    build = dict(device=torch.device("cpu"), style_weight=10.0)
    whole = Objective.build(net, config, inputs, **build)
    grid = TileGrid.of(96, 88, 32, layers, "vgg19")
    stats_grid = TileGrid.of(96, 88, 48, layers, "vgg19")  # larger, as planned
    tiled = Objective.build(net, config, inputs, **build, tiles=(grid, stats_grid))
    (terms, g), (tiled_terms, tiled_g) = _gradient(whole, start), _gradient(tiled, start)
    assert len(grid) == 9 and len(stats_grid) == 4
    assert _relative(tiled_g, g) < (1e-12 if loss == "gram" else 1e-8)
    assert float(tiled_terms["content"]) == pytest.approx(float(terms["content"]), rel=1e-12)


def test_histogram_statistics_are_not_taken_in_tiles(net32):
    from impasto.losses import ContentLoss, StyleLoss, TVLoss

    style = StyleLoss([], {}, statistic=get_statistic("histogram"))
    content = ContentLoss({"conv4_2": torch.ones(1, 512, 4, 4)})
    objective = Objective(net32, content, style, {"content": 1, "style": 1, "tv": 0}, tv=TVLoss())
    grid = TileGrid.of(96, 96, 32, DEFAULT_LAYERS, "vgg19")
    with pytest.raises(ValueError, match="histogram statistics cannot be taken in tiles"):
        TiledObjective(objective, grid)


def test_a_large_styles_statistics_in_tiles_are_its_statistics():
    """A style image larger than a tile, with a style mask, measured tile by tile: the same
    targets as in one pass."""
    stat, net = get_statistic("gram"), _shallow_net()
    style = torch.rand(1, 3, 120, 100, generator=torch.Generator().manual_seed(3))
    mask = torch.zeros(1, 1, 120, 100)
    mask[..., 20:100, 10:60] = 1.0
    layers = SHALLOW["style_layers"]
    cpu = torch.device("cpu")
    whole = style_statistics_of(net, stat, layers, cpu)(style, mask, "style mask 1")
    tiled = style_statistics_of(net, stat, layers, cpu, tile=32)(style, mask, "style mask 1")
    for layer in layers:
        ref = whole[layer]["gram"]
        assert torch.allclose(
            tiled[layer]["gram"], ref, rtol=1e-4, atol=1e-6 * float(ref.abs().max())
        )


# -- whole runs, on the real weights -----------------------------------------------------------


@pytest.fixture(scope="module")
def runs(weights_home):
    """Ten L-BFGS steps at 96 px from the photo with --tile auto: in one piece where it fits,
    in tiles of 32 (9 tiles) on a machine where only those fit, and in the same tiles read
    without their halo (each tile painted as if it were alone at its edges: the mistake the
    halo is there to prevent). Up to conv3_1, so that 32 px tiles cut a 96 px image for real
    (the halo is 12 px)."""
    content = resize_long_side(load_image(EXAMPLES / "astronaut.jpg"), 96)
    style = resize_long_side(load_image(EXAMPLES / "starry_night.jpg"), 96)
    engine = Stylizer(device="cpu", cache=weights_home)
    config = StyleConfig(size=96, iterations=10, scales=1, tolerance=0, **SHALLOW)
    assert config.tile is None  # auto
    whole_seen, seen = [], []
    out = {
        "content": content,
        "whole": engine.stylize(content, style, config, on_progress=whole_seen.append),
    }
    whole_needs = budget.memory_needed(config, 96, 96, 96 * 96)
    tiled_needs = budget.memory_needed(config, 96, 96, 96 * 96, tile=32)
    assert tiled_needs < whole_needs
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(budget, "TILE_SIDES", (32,))
        mp.setattr(budget, "available_memory", lambda device: (whole_needs + tiled_needs) // 2)
        out["tiled"] = engine.stylize(content, style, config, on_progress=seen.append)
    out["tiles"] = {p.tiles for p in seen}
    out["whole tiles"] = {p.tiles for p in whole_seen}
    layers = config.content_layers + config.style_layers
    inputs = Inputs(content, [style], [], [None])
    objective = Objective.build(
        engine.network(config), config, inputs, device=torch.device("cpu"), style_weight=10
    )
    grid = TileGrid.of(96, 96, 32, layers, "vgg19")
    out["cuts"] = grid.cuts(96)[1:-1]
    no_halo = TileGrid(grid.height, grid.width, grid.tile, 0, 0, grid.align)
    out["no halo"] = optimize(content, TiledObjective(objective, no_halo), iterations=10)
    return out


@pytest.mark.weights
def test_a_tiled_run_ends_on_the_pixels_of_the_untiled_run(runs):
    """L-BFGS carries rounding forward from step to step, so 'the same' is: the two differ by a
    small fraction of how far either moved from the photo (0.5% here, on the mean)."""
    assert runs["tiles"] == {9} and runs["whole tiles"] == {0}
    moved = float((runs["whole"] - runs["content"]).abs().mean())
    assert moved > 0.05  # the run did paint
    assert float((runs["tiled"] - runs["whole"]).abs().mean()) < 0.03 * moved
    # Without the halo the tiles' edges see padding instead of their neighbours: 40x further.
    assert float((runs["no halo"] - runs["whole"]).abs().mean()) > 0.1 * moved


def seam(image: torch.Tensor, cuts: list[int]) -> float:
    """How much more the image steps from one column to the next at ``cuts`` than elsewhere,
    across rows and columns alike: the mean, per tile-long stretch of a column, of the step
    between neighbouring columns (a seam is a step of one sign along a tile's edge; texture's
    steps cancel), at the cuts over its median elsewhere.

    Shape: (1, 3, H, W) with H == W.
    """
    ratios = []
    for image_ in (image, image.transpose(-1, -2)):
        steps = image_[..., 1:] - image_[..., :-1]
        stretches = [slice(a, b) for a, b in zip([0, *cuts], [*cuts, image.shape[-2]])]
        means = torch.stack([steps[..., r, :].mean(dim=-2) for r in stretches], dim=-2)
        per_column = means.abs().mean(dim=(0, 1, 2))
        at = [c - 1 for c in cuts]
        elsewhere = [float(v) for i, v in enumerate(per_column) if i not in at]
        ratios.append(float(per_column[at].mean()) / float(np.median(elsewhere)))
    return max(ratios)


@pytest.mark.weights
def test_no_seam_at_the_borders_of_the_tiles(runs):
    """What the run changed steps no more across the tiles' borders than the untiled run's
    change does at the same place. Without the halo it does: the measure is not blind."""
    changed = {k: runs[k] - runs["content"] for k in ("whole", "tiled", "no halo")}
    natural = seam(changed["whole"], runs["cuts"])
    assert seam(changed["tiled"], runs["cuts"]) < natural + 0.2
    assert seam(changed["no halo"], runs["cuts"]) > natural + 0.5


# -- the command line --------------------------------------------------------------------------


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    Image.fromarray(rng.integers(0, 255, (60, 72, 3), dtype=np.uint8)).save(content)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(style)
    return content, style


@pytest.mark.weights
def test_stylize_in_tiles_writes_a_16_bit_tiff_that_remembers_the_tile(
    capsys, tmp_path, photo, weights_home
):
    content, style = photo
    out = tmp_path / "print.tif"
    argv = [
        "stylize",
        content,
        style,
        "-o",
        out,
        "--size",
        "72",
        "--tile",
        "32",
        "--iterations",
        "2",
    ]
    argv += ["--bit-depth", "16", "-q", "--cache-dir", weights_home]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    with Image.open(out) as img:
        assert img.size == (72, 60)
    array = np.asarray(tifffile.imread(out))
    assert array.dtype == np.uint16 and array.shape == (60, 72, 3)
    assert read_metadata(out)["config"]["tile"] == 32
    assert not out.with_name(out.name + ".ckpt").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tile", "8"], "--tile must be a whole number from 16 to 16,384 px (or 0: never tile)"),
        (["--tile", "half"], "argument --tile: expects a whole number, not 'half'"),
        (
            ["--style-loss", "histogram", "--tile", "32", "--size", "96"],
            "--style-loss histogram cannot be optimised in tiles",
        ),
    ],
)
def test_bad_tile_options_are_one_line_and_write_nothing(capsys, tmp_path, photo, extra, message):
    content, style = photo
    out = tmp_path / "out.png"
    argv = [str(a) for a in ["stylize", content, style, "-o", out, *extra]]
    if extra[1] == "half":
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    else:
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_the_settings_record_keeps_tile_auto_as_none():
    config = StyleConfig(tile=None)
    assert json.loads(json.dumps(config.to_dict()))["tile"] is None
    assert StyleConfig(**StyleConfig.stored({"size": 64})).tile is None  # older records: auto
