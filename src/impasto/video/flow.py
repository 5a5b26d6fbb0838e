"""Optical flow between input frames, warping along it, and where it can be trusted.

A flow backend is one small interface (:class:`FlowBackend`): two frames in, a per-pixel
displacement out. :class:`DISFlow` is OpenCV's Dense Inverse Search (Kroeger et al. 2016): no
model to download, a few milliseconds a frame pair on a CPU. A learned flow (RAFT with weights
the user supplies, say) would be another class with the same call.

:func:`reliability` is the consistency check of Ruder et al. (their ``consistencyChecker``):
a pixel of frame t is unreliable where following the backward flow to t-1 and the forward flow
back does not return to it (an occlusion), where the flow changes sharply (a motion boundary),
and where the backward flow leaves the frame. Those pixels are left free of the temporal loss.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from impasto.video import require

# Ruder et al.'s thresholds: a round trip off by more than 1% of the motion plus half a pixel
# is an occlusion; a flow gradient above 1% of the motion plus 0.002 a motion boundary.
ROUND_TRIP_RELATIVE, ROUND_TRIP_PIXELS = 0.01, 0.5
BOUNDARY_RELATIVE, BOUNDARY_ABSOLUTE = 0.01, 0.002
# A light blur of the weights, so a hard mask edge does not print into the painting.
EDGE_SIGMA = 0.8


class FlowBackend(Protocol):
    """Optical flow from ``source`` to ``target``: pixel p of source is at p + flow(p) in target.

    Shape: (1, 3, H, W) twice, in [0, 1] -> (1, 2, H, W), (dx, dy) in pixels.
    """

    name: str

    def __call__(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...


class DISFlow:
    """OpenCV's DIS optical flow at its 'medium' preset, on the frames' luma (8 bits)."""

    name = "dis"

    def __init__(self) -> None:
        cv2 = require("cv2")
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def __call__(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        flow = self._dis.calc(_luma8(source), _luma8(target), None)
        return torch.from_numpy(np.ascontiguousarray(flow)).permute(2, 0, 1).unsqueeze(0)


def get_flow(name: str) -> FlowBackend:
    """The backend called ``name`` (see VideoOptions.flow)."""
    if name == "dis":
        return DISFlow()
    raise ValueError(f"unknown flow backend {name!r}")


def _luma8(image: torch.Tensor) -> np.ndarray:
    """Rec. 601 luma as uint8, what DIS takes. Shape: (1, 3, H, W) -> (H, W)."""
    r, g, b = image[0].detach().float().cpu().clamp(0, 1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return (y * 255.0).round().to(torch.uint8).numpy()


def sample_grid(flow: torch.Tensor) -> torch.Tensor:
    """Where each pixel's flow points, in grid_sample's coordinates (-1 and 1 at the corner
    pixels' centres).

    Shape: (1, 2, H, W) -> (1, H, W, 2).
    """
    _, _, h, w = flow.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=flow.dtype), torch.arange(w, dtype=flow.dtype), indexing="ij"
    )
    x = (xs + flow[0, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    y = (ys + flow[0, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    return torch.stack((x, y), dim=-1).unsqueeze(0)


def warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """``image`` sampled at p + flow(p) for every pixel p (beyond the edge, the edge).

    With the backward flow of frame t (t -> t-1), this carries frame t-1 to frame t.
    ``mode`` "bicubic" keeps fine detail that bilinear sampling softens, clamped to [0, 1].

    Shape: (N, C, H, W) and (1, 2, H, W) -> (N, C, H, W).
    """
    grid = sample_grid(flow.to(image.dtype)).to(image.device).expand(image.shape[0], -1, -1, -1)
    out = F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=True)
    return out.clamp(0.0, 1.0) if mode == "bicubic" else out


def reliability(backward: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
    """Per-pixel weights of frame t in [0, 1]: 1 where the flow to t-k can be trusted.

    ``backward`` is the flow t -> t-k, ``forward`` the flow t-k -> t (Ruder et al.'s check).

    Shape: (1, 2, H, W) twice -> (1, 1, H, W).
    """
    b = backward.float()
    f_back = warp(forward.float(), b)  # the forward flow where each pixel lands in t-k
    trip = b + f_back
    motion = (b**2).sum(1, keepdim=True) + (f_back**2).sum(1, keepdim=True)
    occluded = (trip**2).sum(1, keepdim=True) >= ROUND_TRIP_RELATIVE * motion + ROUND_TRIP_PIXELS
    dx, dy = _central_differences(b)
    steep = (dx**2).sum(1, keepdim=True) + (dy**2).sum(1, keepdim=True)
    boundary = steep > BOUNDARY_RELATIVE * (b**2).sum(1, keepdim=True) + BOUNDARY_ABSOLUTE
    grid = sample_grid(b)
    outside = (grid.abs() > 1.0 + 1e-6).any(-1).unsqueeze(1)
    c = torch.ones_like(occluded, dtype=torch.float32)
    c = c.masked_fill(boundary | outside, 0.0).masked_fill(occluded, -1.0)
    # -1 at occlusions so that the blur below spreads unreliability outward, then clip.
    return _blur(c, EDGE_SIGMA).clamp_(0.0, 1.0)


def long_term(weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """Ruder et al.'s long-term weights: each farther frame counts only where the nearer ones
    are unreliable, ``max(c_k - sum of the nearer c_j, 0)``; the nearest keeps its own.

    Shape: a list of (1, 1, H, W), nearest frame first -> the same.
    """
    out, nearer = [], torch.zeros_like(weights[0])
    for c in weights:
        out.append((c - nearer).clamp(min=0.0))
        nearer = nearer + c
    return out


def _central_differences(flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """d/dx and d/dy by [-1/2, 0, 1/2], edges replicated. Shape: (1, C, H, W) -> two of those."""
    p = F.pad(flow, (1, 1, 1, 1), mode="replicate")
    dx = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2
    dy = (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2
    return dx, dy


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur, 3 sigma each side, edges replicated. Shape: (1, 1, H, W) -> the same."""
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    p = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    p = F.conv2d(p, k.view(1, 1, 1, -1))
    return F.conv2d(p, k.view(1, 1, -1, 1))
