"""Style statistics: what of a style image's feature maps the output is asked to match.

Three interchangeable choices (``--style-loss``), each a small stateless object with the same
three methods: ``of`` (the statistics of one image, computed once for a target under
``no_grad``), ``blend`` (one target from several style images) and ``distance`` (the per-step,
differentiable loss against a target). Whatever a target needs on every step that does not depend
on the output (a matrix square root, a projection matrix, a normalising scale) is computed in
``of``/``blend`` and kept in the target's dict, never recomputed in ``distance``.

- ``gram``: the paper's Gram matrices; with a mask, the guided Gram matrices of Gatys et al. 2017.
- ``meancov``: the 2-Wasserstein distance between Gaussians fitted to the features (mean and
  covariance), as in crowsonkb/style-transfer-pytorch. A departure from the paper.
- ``histogram``: sliced 1-D optimal transport of the feature distribution, after Risser et al.
  2017 ("Stable and controllable neural texture synthesis and style transfer using histogram
  losses"). A departure from the paper.

Every target dict holds a ``scale`` entry: the factor that turns the distance into a relative,
scale-free figure (``relative=True``), as ``losses.relative_scale`` does for the Gram loss.

Tiles (``impasto.tiling``): a Gram matrix, a mean and a covariance are sums over positions, so a
statistic that is ``tileable`` also computes them part by part (``sums``, added up by ``merge``),
compares whole statistics with a target (``compare``), and gives the gradient of a loss with
respect to one part's features from its gradient with respect to the whole statistics
(``backward``). Sorting is not a sum: ``histogram`` is not tileable.

This module is longer than 400 lines because each statistic keeps its part-by-part form beside
its formula, where a reader can check that the two agree.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from impasto.errors import UsageError, did_you_mean
from impasto.losses import gram_distance, gram_matrix, relative_scale, style_loss

Stats = dict[str, Tensor]


def _check(features: Tensor, mask: Tensor | None) -> None:
    b, _, h, w = features.shape
    if b != 1:
        raise ValueError(f"expected one image (1, C, H, W), not {tuple(features.shape)}")
    if mask is not None and mask.shape != (1, 1, h, w):
        raise ValueError(f"mask must be (1, 1, {h}, {w}) for this layer, not {tuple(mask.shape)}")


def _work(features: Tensor) -> Tensor:
    # Sums over many pixels lose too much in bf16: compute in at least float32.
    return features.to(torch.promote_types(features.dtype, torch.float32))


def _flatten(features: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Features as (C, N) in at least float32, and the mask as (N,) weights.

    Shape: (1, C, H, W), (1, 1, H, W) or None -> (C, H*W), (H*W,) or None.
    """
    _check(features, mask)
    _, c, h, w = features.shape
    x = _work(features).reshape(c, h * w)
    return x, None if mask is None else mask.reshape(h * w).to(x.dtype)


def _check_not_empty(mask: Tensor | None) -> None:
    # Checked once per target, in ``of``: a mask is fixed for a run, and a check in ``distance``
    # would synchronise with the GPU on every step.
    if mask is not None and not bool((mask > 0).any()):
        raise ValueError("the mask selects no pixel of this layer")


def _rows(features: Tensor) -> Tensor:
    """Shape: (1, C, H, W) -> (H*W, C), in at least float32 (a view where the layout allows)."""
    _, c, h, w = features.shape
    return _work(features).permute(0, 2, 3, 1).reshape(h * w, c)


def _unrows(rows: Tensor, like: Tensor) -> Tensor:
    """Shape: (H*W, C) -> (1, C, H, W) of ``like``'s shape and dtype."""
    _, c, h, w = like.shape
    return rows.reshape(1, h, w, c).permute(0, 3, 1, 2).to(like.dtype)


def _weighted_sum(tensors: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    if not tensors or len(tensors) != len(weights):
        raise ValueError(f"blend needs one weight per target: {len(tensors)} and {len(weights)}")
    if abs(sum(weights) - 1.0) > 1e-6:
        raise ValueError(f"blend weights must sum to 1, not {sum(weights)}")
    total = weights[0] * tensors[0]
    for t, w in zip(tensors[1:], weights[1:]):
        total = total + w * t
    return total


class StyleStatistic(ABC):
    """Statistics of a feature map, a way to blend them, and a distance to them."""

    name: str
    #: Whether the statistics are sums over positions, so that a large image can be taken in
    #: tiles with the same result (see the module's docstring).
    tileable: bool = True

    @abstractmethod
    def of(self, features: Tensor, mask: Tensor | None = None) -> Stats:
        """The statistics of one image's feature map, over the pixels the mask weights.

        Differentiable with respect to ``features``. ``mask`` holds weights in [0, 1], already
        resized to this layer; None weights every pixel.

        Shape: (1, C, H, W), (1, 1, H, W) or None -> dict of tensors.
        """

    @abstractmethod
    def blend(self, stats: Sequence[Stats], weights: Sequence[float]) -> Stats:
        """One target from several images' statistics; ``weights`` sum to 1."""

    @abstractmethod
    def distance(
        self, features: Tensor, target: Stats, mask: Tensor | None = None, *, relative: bool = True
    ) -> Tensor:
        """How far the statistics of ``features`` are from ``target``, differentiably.

        Shape: (1, C, H, W), dict, (1, 1, H, W) or None -> scalar.
        """

    # -- the same statistics, part by part (tiles) ------------------------------------------

    def norm(self, mask: Tensor | None, positions: int) -> Tensor:
        """What the statistics of a whole layer are divided by: its ``positions`` or its mask's
        weight. Parts of the layer share it, so that their ``sums`` add up to the whole's."""
        raise NotImplementedError(f"{self.name} statistics are not sums over positions")

    def sums(self, features: Tensor, mask: Tensor | None, norm: Tensor) -> Stats:
        """One part's share of a layer's statistics (the part's positions, and the mask there),
        divided by the whole layer's ``norm``: ``merge`` of every part's gives the whole's.

        Shape: (1, C, h, w), (1, 1, h, w) or None, scalar -> dict of tensors.
        """
        raise NotImplementedError(f"{self.name} statistics are not sums over positions")

    def merge(self, parts: Sequence[Stats]) -> Stats:
        """The statistics of the whole from those of its parts, as ``compare`` takes them."""
        raise NotImplementedError(f"{self.name} statistics are not sums over positions")

    def compare(self, stats: Stats, target: Stats, *, relative: bool = True) -> Tensor:
        """``distance`` from merged statistics: differentiable with respect to ``stats``."""
        raise NotImplementedError(f"{self.name} statistics are not sums over positions")

    def target(self, stats: Stats) -> Stats:
        """A style image's target (as ``of`` gives it) from its merged statistics."""
        raise NotImplementedError(f"{self.name} statistics are not sums over positions")

    def backward(
        self, features: Tensor, mask: Tensor | None, norm: Tensor, stats: Stats, grad: Stats
    ) -> Tensor:
        """The gradient of a loss with respect to one part's ``features``, given its gradient
        ``grad`` with respect to the whole layer's merged ``stats``: the part's own share, with
        nothing of the other parts needed.

        Shape: (1, C, h, w), (1, 1, h, w) or None, scalar, dicts -> (1, C, h, w).
        """
        raise NotImplementedError(f"{self.name} statistics are not sums over positions")


class GramStatistic(StyleStatistic):
    """Gram matrices: G = F F^T / (C*H*W), exactly ``losses.gram_matrix``.

    With a mask m, the guided Gram matrix (F*m)(F*m)^T of Gatys et al. 2017 ("Controlling
    perceptual factors in neural style transfer"), divided by C * sum(m^2): a mask of ones gives
    the plain Gram, a 0/1 mask the Gram of the masked pixels alone, and a soft mask a weighted
    mean with weights m^2. (Dividing by C * sum(m) would shrink the Gram wherever the mask is
    soft, e.g. at the blurred edges of a mask resized to a deep layer, and the output would be
    pushed to inflate its features there.)
    """

    name = "gram"

    def _gram(self, features: Tensor, mask: Tensor | None) -> Tensor:
        _check(features, mask)
        if mask is None:
            return gram_matrix(features)[0]
        x = _work(features)
        m = mask.to(x.dtype)
        # gram_matrix divides by C*H*W; rescale so the divisor is C * sum(m^2).
        return gram_matrix(x * m)[0] * (m.numel() / m.square().sum().clamp_min(1e-12))

    def _finish(self, gram: Tensor) -> Stats:
        return {"gram": gram, "scale": relative_scale(gram)}

    def of(self, features: Tensor, mask: Tensor | None = None) -> Stats:
        _check_not_empty(mask)
        return self._finish(self._gram(features, mask))

    def blend(self, stats: Sequence[Stats], weights: Sequence[float]) -> Stats:
        # A weighted sum of Grams, as jcjohnson/neural-style blends several style images.
        return self._finish(_weighted_sum([s["gram"] for s in stats], weights))

    def distance(
        self, features: Tensor, target: Stats, mask: Tensor | None = None, *, relative: bool = True
    ) -> Tensor:
        # Mean squared difference, times 1 / mean(Gt^2): exactly losses.StyleLoss's layer term.
        if mask is None:
            _check(features, mask)
            loss = gram_distance(features, target["gram"])
        else:
            loss = style_loss(self._gram(features, mask), target["gram"])
        return loss * target["scale"] if relative else loss

    def norm(self, mask: Tensor | None, positions: int) -> Tensor:
        if mask is None:
            return torch.tensor(float(positions))
        return _work(mask.square().sum()).clamp_min(1e-12)

    def sums(self, features: Tensor, mask: Tensor | None, norm: Tensor) -> Stats:
        _check(features, mask)
        rows = _rows(features)
        if mask is not None:
            rows = rows * mask.reshape(-1, 1).to(rows.dtype)
        return {"gram": rows.T @ rows / (features.shape[1] * norm.to(rows))}

    def merge(self, parts: Sequence[Stats]) -> Stats:
        return {"gram": sum((p["gram"] for p in parts[1:]), parts[0]["gram"])}

    def compare(self, stats: Stats, target: Stats, *, relative: bool = True) -> Tensor:
        loss = style_loss(stats["gram"], target["gram"])
        return loss * target["scale"] if relative else loss

    def target(self, stats: Stats) -> Stats:
        return self._finish(stats["gram"])

    def backward(
        self, features: Tensor, mask: Tensor | None, norm: Tensor, stats: Stats, grad: Stats
    ) -> Tensor:
        # G = sum_i m_i^2 f_i f_i^T / (C * norm), so dL/df_i = (D + D^T) f_i m_i^2 / (C * norm).
        rows = _rows(features)
        g = grad["gram"].to(rows.dtype)
        out = rows @ ((g + g.T) / (features.shape[1] * norm.to(rows)))
        if mask is not None:
            out = out * mask.reshape(-1, 1).to(out.dtype).square()
        return _unrows(out, features)


class MeanCovStatistic(StyleStatistic):
    """Mean and covariance, compared by the 2-Wasserstein distance between Gaussians:

        W2^2 = ||mu - mu_t||^2 + tr(S + S_t - 2 (S_t^1/2 S S_t^1/2)^1/2).

    The C x C algebra runs in float64: the covariances of VGG features are nearly singular, and in
    float32 the rounding noise of their zero eigenvalues would sit above the clamp below and get
    huge gradients. Relative: divided by E||x||^2 = tr(S_t) + ||mu_t||^2.
    """

    name = "meancov"
    #: Eigenvalues of S_t^1/2 S S_t^1/2 (units of variance^2) are clamped at (rel_eps * mean
    #: target variance)^2 before the square root: its slope stays finite, and the trace of the
    #: root moves by at most rel_eps * tr(S_t).
    rel_eps = 1e-5

    def _moments(self, features: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        x, m = _flatten(features, mask)
        if m is None:
            mean = x.mean(dim=1)
            centred = x - mean[:, None]  # centre before the product: no cancellation
            cov = centred @ centred.T / x.shape[1]
        else:
            p = m / m.sum().clamp_min(1e-12)
            mean = x @ p
            centred = x - mean[:, None]
            cov = (centred * p) @ centred.T
        return mean.double(), cov.double()

    def _finish(self, mean: Tensor, cov: Tensor) -> Stats:
        vals, vecs = torch.linalg.eigh(cov)
        root = (vecs * vals.clamp_min(0).sqrt()) @ vecs.T
        trace = torch.trace(cov)
        eps = (self.rel_eps * trace / cov.shape[0]).square().clamp_min(1e-30)
        scale = 1.0 / (trace + mean.square().sum()).clamp_min(1e-12)
        return {"mean": mean, "cov": cov, "cov_sqrt": root, "eps": eps, "scale": scale}

    def of(self, features: Tensor, mask: Tensor | None = None) -> Stats:
        _check_not_empty(mask)
        return self._finish(*self._moments(features, mask))

    def blend(self, stats: Sequence[Stats], weights: Sequence[float]) -> Stats:
        # The mixture's moments: its mean, and its second moment minus the mean's outer product.
        mean = _weighted_sum([s["mean"] for s in stats], weights)
        seconds = [s["cov"] + torch.outer(s["mean"], s["mean"]) for s in stats]
        second = _weighted_sum(seconds, weights)
        return self._finish(mean, second - torch.outer(mean, mean))

    def distance(
        self, features: Tensor, target: Stats, mask: Tensor | None = None, *, relative: bool = True
    ) -> Tensor:
        mean, cov = self._moments(features, mask)
        w2 = self.compare({"mean": mean, "cov": cov}, target, relative=relative)
        return w2.to(torch.promote_types(features.dtype, torch.float32))

    def compare(self, stats: Stats, target: Stats, *, relative: bool = True) -> Tensor:
        mean, cov = stats["mean"], stats["cov"]
        root = target["cov_sqrt"]
        product = root @ cov @ root
        product = (product + product.T) / 2  # exactly symmetric, as eigvalsh assumes
        # tr(sqrtm(M)) from eigenvalues alone: eigvalsh's backward uses only the eigenvectors (no
        # division by eigenvalue gaps, unlike a differentiated sqrtm), and the clamp keeps the
        # sqrt's slope finite at the zero eigenvalues of a singular covariance.
        root_trace = torch.linalg.eigvalsh(product).clamp_min(target["eps"]).sqrt().sum()
        w2 = (mean - target["mean"]).square().sum() + torch.trace(cov) + torch.trace(target["cov"])
        w2 = (w2 - 2 * root_trace).clamp_min(0)  # rounding and the clamp can dip below 0
        return w2 * target["scale"] if relative else w2

    def norm(self, mask: Tensor | None, positions: int) -> Tensor:
        if mask is None:
            return torch.tensor(float(positions))
        return _work(mask.sum()).clamp_min(1e-12)

    def sums(self, features: Tensor, mask: Tensor | None, norm: Tensor) -> Stats:
        # Each part's weight, mean and scatter about its own mean, merged as Chan et al.'s
        # parallel variance: no large sums of squares that cancel.
        x, m = _flatten(features, mask)
        p = (torch.ones_like(x[0]) if m is None else m) / norm.to(x)
        weight = p.sum()
        mean = x @ p / weight.clamp_min(1e-30)
        centred = x - mean[:, None]
        scatter = (centred * p) @ centred.T
        return {"weight": weight.double(), "mean": mean.double(), "scatter": scatter.double()}

    def merge(self, parts: Sequence[Stats]) -> Stats:
        parts = [p for p in parts if float(p["weight"]) > 0] or list(parts[:1])
        total = sum((p["weight"] for p in parts[1:]), parts[0]["weight"])
        mean = sum(
            (p["weight"] * p["mean"] for p in parts[1:]), parts[0]["weight"] * parts[0]["mean"]
        )
        mean = mean / total
        cov = sum(
            (p["scatter"] + p["weight"] * torch.outer(p["mean"] - mean, p["mean"] - mean))
            for p in parts
        )
        return {"mean": mean, "cov": cov / total}

    def target(self, stats: Stats) -> Stats:
        return self._finish(stats["mean"], stats["cov"])

    def backward(
        self, features: Tensor, mask: Tensor | None, norm: Tensor, stats: Stats, grad: Stats
    ) -> Tensor:
        # With p_i = m_i / norm: d mean / d x_i = p_i, d cov / d x_i through (x_i - mean) only
        # (the weighted deviations sum to 0), so dL/dx_i = p_i (g_mean + (D + D^T)(x_i - mean)).
        rows = _rows(features)
        d = grad["cov"].to(rows.dtype)
        mean, g_mean = stats["mean"].to(rows.dtype), grad["mean"].to(rows.dtype)
        out = (rows - mean) @ (d + d.T) + g_mean
        p = (1.0 if mask is None else mask.reshape(-1, 1).to(out.dtype)) / norm.to(out)
        return _unrows(out * p, features)


def _resample(sorted_values: Tensor, n: int) -> Tensor:
    """Quantile functions linearly interpolated to ``n`` points.

    Both grids are at the midpoints (i + 1/2) / count, held flat beyond the end points: exactly
    ``interpolate``'s linear mode with ``align_corners=False``. The same count is the identity.

    Shape: (D, K) -> (D, n).
    """
    return F.interpolate(sorted_values[None], size=n, mode="linear", align_corners=False)[0]


class HistogramStatistic(StyleStatistic):
    """Sliced optimal transport: the quantile functions of the features projected on fixed
    directions, compared by mean squared difference (the 1-D Wasserstein-2 distance, per
    direction), after Risser et al. 2017.

    The directions are the C channel axes and the C columns of a random orthogonal matrix drawn
    from a seed that depends only on C: fixed, so the objective is deterministic (L-BFGS needs
    that), and the same for every image with C channels, so targets can be blended. A mask is
    thresholded: only pixels with mask > 0.5 count, in the target and in the output alike.

    Blending averages quantile functions, which gives, per direction, the Wasserstein barycenter
    of the style images' distributions (the distribution "halfway" between them, not a mixture).
    Relative: divided by the target's mean square over directions, E||x||^2 / C.
    """

    name = "histogram"
    # A sort needs every value of a direction at once: no sum over parts gives it.
    tileable = False

    def __init__(self, max_quantiles: int = 4096) -> None:
        # A target of more pixels is stored as this many quantiles: memory and the per-step
        # interpolation then do not grow with the style image's size.
        self.max_quantiles = max_quantiles

    @staticmethod
    def _projection(c: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        gen = torch.Generator().manual_seed(0x1A5_0000 + c)
        q, r = torch.linalg.qr(torch.randn(c, c, generator=gen, dtype=torch.float64))
        q = q * torch.sign(torch.diagonal(r))  # QR's sign convention varies; fix it
        return torch.cat([torch.eye(c, dtype=torch.float64), q], dim=1).to(device, dtype)

    @staticmethod
    def _project(features: Tensor, mask: Tensor | None, projection: Tensor) -> Tensor:
        """Shape: (1, C, H, W), (1, 1, H, W) or None, (C, D) -> (D, N selected pixels)."""
        x, m = _flatten(features, mask)
        if m is not None:
            keep = m > 0.5
            if not bool(keep.any()):
                raise ValueError("the mask selects no pixel of this layer (none above 0.5)")
            x = x[:, keep]
        return projection.to(x.dtype).T @ x

    def _finish(self, projection: Tensor, quantiles: Tensor) -> Stats:
        scale = 1.0 / quantiles.square().mean().clamp_min(1e-12)
        return {"projection": projection, "quantiles": quantiles, "scale": scale}

    def of(self, features: Tensor, mask: Tensor | None = None) -> Stats:
        c = features.shape[1]
        projection = self._projection(c, features.device, _work(features).dtype)
        values = torch.sort(self._project(features, mask, projection), dim=1).values
        return self._finish(projection, _resample(values, min(values.shape[1], self.max_quantiles)))

    def blend(self, stats: Sequence[Stats], weights: Sequence[float]) -> Stats:
        if len({s["projection"].shape for s in stats}) > 1:
            raise ValueError("cannot blend histograms of different channel counts")
        k = max(s["quantiles"].shape[1] for s in stats)
        quantiles = _weighted_sum([_resample(s["quantiles"], k) for s in stats], weights)
        return self._finish(stats[0]["projection"], quantiles)

    def distance(
        self, features: Tensor, target: Stats, mask: Tensor | None = None, *, relative: bool = True
    ) -> Tensor:
        # Sorting is the 1-D optimal transport plan; its values are differentiable.
        values = torch.sort(self._project(features, mask, target["projection"]), dim=1).values
        quantiles = _resample(target["quantiles"], values.shape[1]).to(values.dtype)
        loss = (values - quantiles).square().mean()
        return loss * target["scale"] if relative else loss


STATISTICS: dict[str, StyleStatistic] = {
    s.name: s for s in (GramStatistic(), MeanCovStatistic(), HistogramStatistic())
}


def get_statistic(name: str) -> StyleStatistic:
    """The style statistic called ``name``; an unknown name is the user's error."""
    try:
        return STATISTICS[name]
    except KeyError:
        choices = ", ".join(STATISTICS)
        hint = did_you_mean(name, STATISTICS)
        raise UsageError(f"unknown style loss {name!r}; expected one of: {choices}{hint}") from None
