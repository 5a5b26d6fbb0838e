"""The temporal loss of Ruder et al.: hold frame t to earlier stylized frames warped to it.

``temporal_loss`` is the pure function, ``TemporalTerm`` the callable the engine takes as
``extra`` (it holds the warped frames and their weights, computed once per frame, and gives
``{"temporal": weighted term}`` for the image at any scale's size).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def temporal_loss(
    x: torch.Tensor, targets: Sequence[torch.Tensor], weights: Sequence[torch.Tensor]
) -> torch.Tensor:
    """``sum_k mean(c_k * (x - w_k)^2)``: the mean is over every pixel and channel, the unreliable
    ones (c = 0) included, as in Ruder et al.'s ``1/D sum c (x - w)^2``.

    Shape: x (1, 3, H, W); each target (1, 3, H, W), each weight (1, 1, H, W) -> scalar.
    """
    total = torch.zeros((), device=x.device, dtype=x.dtype)
    for w, c in zip(targets, weights):
        total = total + (c * (x - w) ** 2).mean()
    return total


class TemporalTerm:
    """``x -> {"temporal": weight * temporal_loss(x, targets, weights)}``, for Stylizer's
    ``extra``. Targets and weights are brought to the size of ``x`` when a scale asks for
    another size (area-averaged), once per size.

    Shape: targets (1, 3, H, W) and weights (1, 1, H, W), the same H x W.
    """

    def __init__(
        self,
        targets: Sequence[torch.Tensor],
        weights: Sequence[torch.Tensor],
        weight: float,
    ) -> None:
        if len(targets) != len(weights):
            raise ValueError(f"{len(targets)} targets for {len(weights)} weights")
        self.weight = float(weight)
        self._at: dict[tuple[int, int], tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        self._full = (list(targets), list(weights))

    def at(self, h: int, w: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The targets and weights at h x w."""
        if (h, w) not in self._at:
            targets, weights = self._full

            def fit(t: torch.Tensor) -> torch.Tensor:
                return t if t.shape[-2:] == (h, w) else F.interpolate(t, (h, w), mode="area")

            self._at[(h, w)] = ([fit(t) for t in targets], [fit(c) for c in weights])
        return self._at[(h, w)]

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        targets, weights = self.at(*x.shape[-2:])
        targets = [t.to(x.device, x.dtype) for t in targets]
        weights = [c.to(x.device, x.dtype) for c in weights]
        return {"temporal": self.weight * temporal_loss(x, targets, weights)}
