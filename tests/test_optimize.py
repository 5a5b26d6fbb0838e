import pytest
import torch

from impasto.errors import ImpastoError
from impasto.optimize import PATIENCE, Progress, differentiate, optimize


def _quadratic(target):
    return differentiate(lambda x: {"fit": ((x - target) ** 2).mean(), "zero": torch.zeros(())})


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_converges_on_a_quadratic(optimizer):
    target = torch.rand(1, 3, 8, 8)
    out = optimize(
        torch.full_like(target, 0.5),
        _quadratic(target),
        optimizer=optimizer,
        iterations=200,
        lr=5.0,
    )
    assert torch.allclose(out, target, atol=2e-2)


def test_pixels_stay_in_range():
    target = torch.rand(1, 3, 8, 8) * 4 - 2  # mostly outside [0, 1]
    out = optimize(torch.rand(1, 3, 8, 8), _quadratic(target), optimizer="lbfgs", iterations=30)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.allclose(out, target.clamp(0, 1), atol=1e-2)


def test_progress_reports_every_step_with_terms():
    seen: list[Progress] = []
    target = torch.rand(1, 3, 4, 4)
    optimize(torch.zeros_like(target), _quadratic(target), iterations=7, on_progress=seen.append)
    assert [p.step for p in seen] == list(range(1, 8))
    assert all(set(p.losses) == {"fit", "zero"} and p.total_steps == 7 for p in seen)
    assert seen[-1].total < seen[0].total
    assert seen[-1].elapsed >= seen[0].elapsed >= 0
    assert seen[0].image.shape == target.shape


def test_early_stop_when_the_loss_stops_moving():
    seen = []
    target = torch.rand(1, 3, 4, 4)
    optimize(
        torch.zeros_like(target),
        _quadratic(target),
        iterations=500,
        tolerance=1e-3,
        on_progress=seen.append,
    )
    assert PATIENCE < len(seen) < 500
    seen_all = []
    optimize(
        torch.zeros_like(target),
        _quadratic(target),
        iterations=60,
        tolerance=0,
        on_progress=seen_all.append,
    )
    assert len(seen_all) == 60


def test_nan_loss_is_a_clear_error():
    with pytest.raises(ImpastoError, match="became nan at step 1"):
        optimize(
            torch.rand(1, 3, 4, 4),
            differentiate(lambda x: {"bad": x.sum() * float("nan")}),
            iterations=5,
        )


def test_input_is_not_modified():
    x0 = torch.rand(1, 3, 4, 4)
    copy = x0.clone()
    optimize(x0, _quadratic(torch.zeros_like(x0)), iterations=3)
    assert torch.equal(x0, copy)


def test_lbfgs_undoes_a_step_that_blows_the_loss_up():
    """A step after which the loss is more than 4x what it was is taken back: the image returns
    to where it was before that step, the history is dropped, and the cautious first step of a
    fresh L-BFGS follows from there."""
    from impasto.optimize import BoxLBFGS

    torch.manual_seed(0)
    x0 = torch.rand(1, 3, 8, 8) * 0.5 + 0.25
    g0, g1 = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)
    opt = BoxLBFGS()
    x = x0.clone()
    opt.step(x, g0, loss=1.0)
    x1 = x.clone()
    opt.step(x, g1, loss=3.9)  # worse, but no blow-up: the step stands
    assert opt.restarts == 0 and not torch.allclose(x, x1)
    opt.step(x, torch.randn(1, 3, 8, 8), loss=3.9 * 4.1)
    assert opt.restarts == 1 and opt.s == []
    fresh = BoxLBFGS()
    expected = x1.clone()
    fresh.step(expected, g1)
    assert torch.allclose(x, expected)
