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


def test_the_style_pass_counts_when_a_style_is_larger_than_the_output():
    cfg = StyleConfig(size=64, style_scale=8)
    small = budget.memory_needed(cfg, 64, 64)
    huge_style = budget.memory_needed(cfg, 64, 64, style_pixels=16384 * 16384)
    assert huge_style > small + 100 * 2**30


def test_a_run_that_cannot_fit_is_refused_before_anything_is_allocated(monkeypatch):
    monkeypatch.setattr(budget, "available_memory", lambda device: 8 * 2**30)
    cfg = StyleConfig(size=64, style_scale=8)
    sizes = {"content image": (64, 64), "style image": (16384, 16384)}
    with pytest.raises(
        UsageError, match=r"would need about \d+\.\d GB of memory and this machine has 8.0 GB"
    ):
        budget.check_sizes(cfg, sizes, torch.device("cpu"))
    budget.check_sizes(
        cfg, {"content image": (64, 64), "style image": (512, 512)}, torch.device("cpu")
    )


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
