"""impasto.video.flow: DIS flow against motion known by construction, warping, and the
forward-backward consistency check."""

from __future__ import annotations

import pytest
import torch

from impasto.video.flow import DISFlow, long_term, reliability, warp
from tests.video_helpers import pan, view

INNER = (slice(None), slice(None), slice(8, -8), slice(8, -8))  # away from the edges


@pytest.fixture(scope="module")
def dis() -> DISFlow:
    return DISFlow()


def test_dis_flow_matches_a_known_pan(dis):
    a, b = view(60, 40), view(62.5, 39.0)  # the camera moves 2.5 right, 1 up
    forward, backward = dis(a, b), dis(b, a)
    assert forward.shape == (1, 2, 64, 96)
    # The picture moves the other way: (-2.5, +1) from a to b, (+2.5, -1) back.
    for flow, (u, v) in ((forward, (-2.5, 1.0)), (backward, (2.5, -1.0))):
        du = (flow[:, 0][INNER[1:]] - u).abs()
        dv = (flow[:, 1][INNER[1:]] - v).abs()
        # Measured: mean error 0.10 px; a wrong sign or axis would be off by 2 px or more.
        assert float(du.mean()) < 0.4 and float(dv.mean()) < 0.4
        assert float(du.median()) < 0.25 and float(dv.median()) < 0.25


def test_dis_flow_matches_a_known_zoom(dis):
    zoom = 1.04
    a, b = view(60, 40), view(60, 40, zoom=zoom)  # 4% closer about the centre
    flow = dis(a, b)
    ys, xs = torch.meshgrid(torch.arange(64.0) + 0.5, torch.arange(96.0) + 0.5, indexing="ij")
    expected = torch.stack(((xs - 48) * (zoom - 1), (ys - 32) * (zoom - 1)))
    error = (flow[0] - expected)[:, 8:-8, 8:-8].norm(dim=0)
    assert float(expected[:, 8:-8, 8:-8].norm(dim=0).max()) > 1.5  # the motion is real
    assert float(error.mean()) < 0.4, float(error.mean())  # measured 0.20 px


def test_warp_carries_the_last_frame_to_this_one(dis):
    a, b = pan(2, dx=3.0, dy=-1.0)
    backward, forward = dis(b, a), dis(a, b)
    c = reliability(backward, forward)
    warped = warp(a, backward)
    before = float(((b - a) ** 2 * c).sum() / c.sum())
    after = float(((b - warped) ** 2 * c).sum() / c.sum())
    assert after < before / 4, (before, after)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_warp_by_a_whole_pixel_is_a_shift(mode):
    x = torch.rand(1, 3, 10, 12)
    flow = torch.zeros(1, 2, 10, 12)
    flow[:, 0] = 1.0  # each pixel takes its right neighbour's value
    out = warp(x, flow, mode)
    assert torch.allclose(out[..., :-1], x[..., 1:], atol=1e-6)
    assert torch.allclose(out[..., -1], x[..., -1], atol=1e-6)  # the edge repeats


def test_bicubic_warp_keeps_more_detail_at_half_a_pixel():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 16, 16, generator=g)
    flow = torch.full((1, 2, 16, 16), 0.5)
    detail = {m: float((warp(x, flow, m) - x.mean()).std()) for m in ("bilinear", "bicubic")}
    assert detail["bicubic"] > 1.1 * detail["bilinear"]
    assert 0 <= float(warp(x, flow, "bicubic").min()) and float(warp(x, flow, "bicubic").max()) <= 1


def test_reliability_frees_what_enters_the_frame_and_keeps_the_rest(dis):
    a, b = view(60, 40), view(64, 40)  # the camera moves 4 px right: new pixels on the right
    c = reliability(dis(b, a), dis(a, b))
    assert c.shape == (1, 1, 64, 96) and float(c.min()) >= 0 and float(c.max()) <= 1
    assert float(c[..., -3:].mean()) < 0.2  # came from outside frame t-1
    assert float(c[INNER].mean()) > 0.85


def test_reliability_marks_an_occlusion():
    """A square moving over a still background: where it was, the background appears
    (disoccluded), and there the round trip fails."""
    h, w = 40, 40
    backward = torch.zeros(1, 2, h, w)  # frame t: the square at x 20..29, it was at 14..23
    backward[:, 0, 10:30, 20:30] = -6.0
    forward = torch.zeros(1, 2, h, w)  # frame t-1 -> t: the square moves +6
    forward[:, 0, 10:30, 14:24] = 6.0
    c = reliability(backward, forward)
    assert float(c[0, 0, 15:25, 15:18].max()) < 0.05  # background just uncovered: free
    assert float(c[0, 0, 15:25, 23:27].min()) > 0.95  # inside the square: trusted
    assert float(c[0, 0, 15:25, 2:8].min()) > 0.95  # still background: trusted


def test_long_term_weights_count_only_where_nearer_frames_cannot_see():
    near = torch.tensor([1.0, 0.0, 0.0, 0.5]).view(1, 1, 1, 4)
    far = torch.tensor([1.0, 1.0, 0.0, 1.0]).view(1, 1, 1, 4)
    farther = torch.ones(1, 1, 1, 4)
    out = long_term([near, far, farther])
    assert torch.equal(out[0], near)
    assert torch.equal(out[1], torch.tensor([0.0, 1.0, 0.0, 0.5]).view(1, 1, 1, 4))
    assert torch.equal(out[2], torch.tensor([0.0, 0.0, 1.0, 0.0]).view(1, 1, 1, 4))


def test_dis_is_deterministic(dis):
    a, b = pan(2)
    assert torch.equal(dis(a, b), DISFlow()(a, b))
