"""impasto.budget: the device, the precision, and how much memory a run needs."""

import pytest
import torch

import impasto.budget as budget
from impasto.config import StyleConfig
from impasto.errors import InputError, UsageError


def test_memory_grows_with_the_output_size():
    cfg = StyleConfig(size=4096)
    sizes = [256, 512, 1024, 2048, 4096]
    needs = [budget.memory_needed(cfg, s, s) for s in sizes]
    assert needs == sorted(needs) and len(set(needs)) == len(needs)
    # Beyond the program's fixed share it grows about with the pixels (4x per doubling).
    grown = (needs[-1] - budget.BASE_MEMORY) / (needs[-2] - budget.BASE_MEMORY)
    assert 3.5 < grown < 4.5


def test_recomputation_needs_less_than_keeping_everything(monkeypatch):
    cfg = StyleConfig(size=2048)
    assert budget.recomputes(2048, 2048) and not budget.recomputes(1024, 1024)
    with_recompute = budget.memory_needed(cfg, 2048, 2048)
    monkeypatch.setattr(budget, "RECOMPUTE_PIXELS", 2**40)
    assert budget.memory_needed(cfg, 2048, 2048) > with_recompute + 2 * 2**30


def test_the_lbfgs_history_shrinks_for_large_images():
    assert budget.lbfgs_history(512, 512) == 50 and budget.lbfgs_history(2048, 2048) == 5
    assert budget.lbfgs_history(2048, 2048) * 2 * 3 * 2048 * 2048 * 4 <= 2**29 + 2**27
    # At print size each pair is 0.4 GB (4096 x 4096) or 1.6 GB (8192 x 8192): the fewest kept.
    assert budget.lbfgs_history(4096, 4096) == budget.lbfgs_history(8192, 8192) == 2


def test_the_style_pass_counts_when_a_style_is_larger_than_the_output():
    cfg = StyleConfig(size=64, style_scale=8)
    small = budget.memory_needed(cfg, 64, 64)
    huge_style = budget.memory_needed(cfg, 64, 64, style_pixels=16384 * 16384)
    assert huge_style > small + 100 * 2**30


def test_a_run_that_cannot_fit_is_refused_before_anything_is_allocated(monkeypatch):
    monkeypatch.setattr(budget, "available_memory", lambda device: 8 * 2**30)
    cfg = StyleConfig(size=64, style_scale=8, tile=0)
    sizes = {"content image": (64, 64), "style image": (16384, 16384)}
    with pytest.raises(
        UsageError,
        match=r"would need about \d+\.\d GB of memory in one piece .--tile 0. and this machine "
        r"has 8.0 GB available; use --tile auto or a smaller --size or --style-scale",
    ):
        budget.check_sizes(cfg, sizes, torch.device("cpu"))
    budget.check_sizes(
        cfg, {"content image": (64, 64), "style image": (512, 512)}, torch.device("cpu")
    )
    # In tiles (the default) the style's pass holds one tile at a time: it fits.
    budget.check_sizes(cfg.replace(tile=None), sizes, torch.device("cpu"))


def test_images_too_small_for_the_deepest_layer_are_named():
    cfg = StyleConfig(size=64)
    with pytest.raises(
        InputError, match="style image is 10x12 px; conv5_1 needs at least 16x16 px"
    ):
        budget.check_sizes(
            cfg, {"content image": (64, 64)}, torch.device("cpu"), native={"style image": (12, 10)}
        )
    with pytest.raises(InputError, match="at the smallest scale .--min-size 8"):
        budget.check_sizes(
            StyleConfig(size=96, min_size=8), {"content image": (96, 96)}, torch.device("cpu")
        )


def test_devices_and_precisions():
    assert budget.resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA device"):
            budget.resolve_device("cuda")
    assert budget.compute_dtype("fp32", torch.device("cuda")) is None
    assert budget.compute_dtype("bf16", torch.device("cpu")) is torch.bfloat16
    assert budget.compute_dtype("auto", torch.device("cpu")) is None


# -- tiles ------------------------------------------------------------------------------------

GB = 2**30


def test_tiles_bound_a_step_by_the_image_sized_buffers():
    """In tiles a step holds one crop's activations, so what is left grows with the image only
    through its own buffers (the image, gradient, optimiser state, content targets)."""
    cfg = StyleConfig(size=8192)
    for side in (4096, 8192):
        whole = budget.memory_needed(cfg, side, side)
        tiled = budget.memory_needed(cfg, side, side, tile=512)
        assert tiled < whole / 4
        fixed = budget.image_memory(cfg, side, side) + budget.BASE_MEMORY
        assert fixed < tiled < fixed + 1 * GB  # one crop's pass: under a GB at 512 px
    # A larger tile holds more at once.
    sizes = [budget.memory_needed(cfg, 4096, 4096, tile=t) for t in (256, 512, 1024, 2048)]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4


def test_passes_without_gradients_take_larger_tiles():
    cfg = StyleConfig()
    for tile in (256, 512, 1024):
        bigger = budget.stats_tile(cfg, tile)
        assert bigger > tile
        # ... as large as what one tile's pass with gradients holds allows, and no larger.
        grid = budget.tile_grid(cfg, 4 * bigger, 4 * bigger, bigger)
        stats = budget.WIDEST_PASS * 4 * grid.largest_crop
        crop = budget.tile_grid(cfg, 4 * tile, 4 * tile, tile).largest_crop
        assert stats <= budget.tile_memory(cfg, crop) * 1.01


def test_tile_auto_tiles_only_a_step_that_does_not_fit_and_as_coarsely_as_fits():
    cfg = StyleConfig(size=4096)
    whole = budget.memory_needed(cfg, 4096, 4096)
    assert budget.plan_tile(cfg, 4096, 4096, available=whole) == 0
    assert budget.plan_tile(cfg, 4096, 4096, available=None) == 0  # cannot tell: as before
    for have in (whole - 1, 6 * GB, 4 * GB):
        tile = budget.plan_tile(cfg, 4096, 4096, available=have)
        assert tile in budget.TILE_SIDES
        assert budget.memory_needed(cfg, 4096, 4096, tile=tile) <= have
        larger = [t for t in budget.TILE_SIDES if t > tile]
        assert all(budget.memory_needed(cfg, 4096, 4096, tile=t) > have for t in larger)
    assert budget.plan_tile(cfg.replace(tile=0), 4096, 4096, available=GB) == 0
    assert budget.plan_tile(cfg.replace(tile=768), 4096, 4096, available=10**15) == 768


def test_the_memory_check_says_what_a_tiled_run_needs(monkeypatch):
    cpu = torch.device("cpu")
    sizes = {"content image": (16384, 16384)}
    monkeypatch.setattr(budget, "available_memory", lambda device: 8 * GB)
    with pytest.raises(
        UsageError,
        match=r"--size 16384 would need about \d+\.\d GB of memory even in tiles of 256 px "
        r".the image, the optimiser's state and the content's features alone take \d+\.\d GB. "
        r"and this machine has 8.0 GB available; use a smaller --size$",
    ):
        budget.check_sizes(StyleConfig(size=16384), sizes, cpu)
    with pytest.raises(UsageError, match="in tiles of 512 px .* use a smaller --tile or --size"):
        budget.check_sizes(StyleConfig(size=16384, tile=512), sizes, cpu)
    budget.check_sizes(StyleConfig(size=4096), {"content image": (4096, 4096)}, cpu)


def test_histogram_statistics_are_refused_where_tiles_are_needed(monkeypatch):
    cfg = StyleConfig(size=4096, style_loss="histogram")
    with pytest.raises(UsageError, match="histogram cannot be optimised in tiles.* or --tile 0$"):
        budget.plan_tile(cfg.replace(tile=512), 4096, 4096)
    with pytest.raises(UsageError, match="histogram cannot .* this machine has 8.0 GB: .* --size$"):
        budget.plan_tile(cfg, 4096, 4096, available=8 * GB)
    assert budget.plan_tile(cfg.replace(tile=512), 256, 256) == 0  # one tile: nothing to cut
    assert budget.plan_tile(cfg, 4096, 4096, available=10**15) == 0
