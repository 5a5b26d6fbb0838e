"""impasto.allocator: freed memory kept for reuse during a run, released after it."""

from __future__ import annotations

import pytest
import torch

import impasto.budget
from impasto import StyleConfig, Stylizer, allocator


class FakeLibc:
    """Records what reuse_freed_memory asks of the C library."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


KEEP = [
    ("mallopt", allocator.M_MMAP_MAX, 0),
    ("mallopt", allocator.M_TRIM_THRESHOLD, allocator.KEEP_TRIM_THRESHOLD),
]
RESTORE = [
    ("mallopt", allocator.M_MMAP_MAX, allocator.DEFAULT_MMAP_MAX),
    ("mallopt", allocator.M_TRIM_THRESHOLD, allocator.DEFAULT_TRIM_THRESHOLD),
    ("malloc_trim", 0),
]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    libc = FakeLibc()
    monkeypatch.setattr(allocator, "_LIBC", libc)
    return libc


def test_settings_are_restored_only_when_the_outermost_use_ends(fake: FakeLibc) -> None:
    with allocator.reuse_freed_memory():
        assert fake.calls == KEEP
        with allocator.reuse_freed_memory():
            pass
        assert fake.calls == KEEP  # the inner one left; the outer run still wants the memory kept
    assert fake.calls == KEEP + RESTORE
    assert allocator._active == 0


def test_settings_are_restored_when_the_run_fails(fake: FakeLibc) -> None:
    with pytest.raises(KeyboardInterrupt), allocator.reuse_freed_memory():
        raise KeyboardInterrupt
    assert fake.calls == KEEP + RESTORE
    assert allocator._active == 0


def test_stylize_keeps_freed_memory_while_it_runs(fake: FakeLibc, vgg19_random) -> None:
    engine = Stylizer(weights={"vgg19": vgg19_random}, device="cpu")
    during = []

    def on_progress(p) -> None:
        during.append(list(fake.calls))

    g = torch.Generator().manual_seed(0)
    content, style = torch.rand(1, 3, 40, 40, generator=g), torch.rand(1, 3, 40, 40, generator=g)
    engine.stylize(
        content, style, StyleConfig(size=40, iterations=2, tolerance=0), on_progress=on_progress
    )
    assert during and all(calls == KEEP for calls in during)
    assert fake.calls == KEEP + RESTORE


def test_large_runs_keep_plain_allocation(fake: FakeLibc, vgg19_random, monkeypatch) -> None:
    """When a run's last scale is above RECOMPUTE_PIXELS, kept blocks would fragment into more
    memory (docs/benchmarks.md), so no scale of it changes malloc's settings."""
    engine = Stylizer(weights={"vgg19": vgg19_random}, device="cpu")
    monkeypatch.setattr(impasto.budget, "RECOMPUTE_PIXELS", 36 * 36)
    g = torch.Generator().manual_seed(0)
    content, style = torch.rand(1, 3, 48, 48, generator=g), torch.rand(1, 3, 48, 48, generator=g)
    config = StyleConfig(
        size=48, min_size=32, scales=2, iterations=2, tolerance=0
    )  # 32 px, then 48 px
    engine.stylize(content, style, config)
    assert fake.calls == []
    monkeypatch.setattr(impasto.budget, "RECOMPUTE_PIXELS", 48 * 48)
    engine.stylize(content, style, config)
    assert fake.calls == KEEP + RESTORE  # once for the whole run
