"""impasto.video.temporal: the temporal loss by hand, its gradient, and the term the engine takes."""

from __future__ import annotations

import torch

from impasto.video.temporal import TemporalTerm, temporal_loss


def test_temporal_loss_by_hand():
    x = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    w = torch.tensor([0.5, 0.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    c = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    # Pixel 0: (0 - 0.5)^2 = 0.25 in 3 channels; pixel 1 unreliable. Mean over 6 values.
    assert torch.isclose(temporal_loss(x, [w], [c]), torch.tensor(0.25 * 3 / 6))
    # Two look-backs add.
    assert torch.isclose(temporal_loss(x, [w, w], [c, c]), torch.tensor(0.25))


def test_temporal_loss_gradcheck():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.rand(1, 3, 5, 4, generator=g, dtype=torch.float64)
    c = torch.rand(1, 1, 5, 4, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: temporal_loss(x, [w], [c]), (x,))


def test_unreliable_pixels_feel_no_pull():
    x = torch.rand(1, 3, 6, 6, requires_grad=True)
    c = torch.ones(1, 1, 6, 6)
    c[..., :3] = 0
    TemporalTerm([torch.zeros(1, 3, 6, 6)], [c], 10.0)(x)["temporal"].backward()
    assert float(x.grad[..., :3].abs().max()) == 0
    assert float(x.grad[..., 3:].abs().min()) > 0


def test_term_is_weighted_and_fits_other_sizes():
    target = torch.rand(1, 3, 8, 8)
    c = torch.ones(1, 1, 8, 8)
    term = TemporalTerm([target], [c], 7.0)
    assert torch.isclose(term(target.clone())["temporal"], torch.tensor(0.0))
    x = torch.rand(1, 3, 8, 8)
    assert torch.isclose(term(x)["temporal"], 7.0 * ((x - target) ** 2).mean())
    # At a coarser scale the target is area-averaged to that size.
    half = torch.nn.functional.avg_pool2d(target, 2)
    assert torch.isclose(term(half)["temporal"], torch.tensor(0.0), atol=1e-7)
