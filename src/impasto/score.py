"""Two figures that judge a result on VGG-16: how far from the style, how far from the photo.

They measure with VGG-16, a network impasto does not optimise by default (VGG-19), so a result
cannot score well only because the optimiser drove down the very numbers being reported. They
are judges, not objectives: nothing in :mod:`impasto.engine` uses them.

- **style distance**: the mean over relu1_2, relu2_2, relu3_3 and relu4_3 of
  ``||G(out) - G(style)||_F / ||G(style)||_F``, with Gram matrices normalised by C*H*W
  (:func:`impasto.losses.gram_matrix`) and both images resized to a long side of 512 px, so the
  figure does not depend on the files' sizes. 0 = the style's statistics exactly.
- **content distance**: LPIPS, VGG variant (Zhang et al. 2018, "The Unreasonable Effectiveness
  of Deep Features as a Perceptual Metric"), between the output and the content photo resized to
  the output's size: at relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3, each feature vector is
  divided by its L2 norm over channels (+1e-10), the squared difference is weighted per channel
  by the layer's linear head ``lpips_lin{k}`` (a 1x1 convolution to one channel, no bias,
  non-negative weights), averaged over space, and the five layers are summed. 0 = the photo.

The input scaling of LPIPS. The official LPIPS takes images in [-1, 1] and applies its
ScalingLayer before torchvision's VGG-16::

    x2 = 2 x - 1                                         (x: sRGB in [0, 1])
    v  = (x2 - shift) / scale,    shift = (-.030, -.088, -.188),  scale = (.458, .448, .450)

Substituting x2: ``v = (x - (1 + shift) / 2) / (scale / 2)``, and in exact arithmetic
``(1 + shift) / 2 = (.485, .456, .406)`` and ``scale / 2 = (.229, .224, .225)``: torchvision's
ImageNet mean and std. The ScalingLayer is the ImageNet normalisation written for [-1, 1]
inputs, and it is what :class:`~impasto.features.VGGFeatures` already applies to VGG-16's
``[0, 1]`` input, ``v = (x - mean) / std``. So the formula implemented is LPIPS's own, through
the extractor's normalisation, unchanged; the two differ only by float32 rounding (below 1e-6
on the network's input, checked in the tests against the literal ScalingLayer). The style
distance uses the same input, VGG-16's native one, so one network serves both figures.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from impasto.errors import InputError, WeightsError
from impasto.features import VGGFeatures
from impasto.image import load_image, resize_long_side, resize_to
from impasto.layers import min_input_size
from impasto.losses import gram_matrix
from impasto.weights import LPIPS_HEADS, cache_dir, load_weights

__all__ = [
    "LPIPS_LAYERS",
    "STYLE_LAYERS",
    "STYLE_SIZE",
    "Judge",
    "Score",
    "content_distance",
    "score",
    "style_distance",
]

STYLE_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
LPIPS_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
# Long side both images are brought to before their Gram matrices are compared.
STYLE_SIZE = 512
# LPIPS's normalize_tensor: x / (||x||_2 over channels + eps).
_LPIPS_EPS = 1e-10

ImageLike = str | os.PathLike[str] | torch.Tensor


@dataclass(frozen=True)
class Score:
    """The two figures of :func:`score`: lower is closer; 0 = the style's statistics / the photo."""

    style: float
    content: float


class Judge(nn.Module):
    """VGG-16 up to relu5_3 plus the LPIPS linear heads: the network behind both figures.

    Built from a weights dict as :func:`impasto.weights.load_weights` returns it for ``vgg16``
    (convolutions and ``lpips_lin0..4.weight``). Frozen; call it under ``inference_mode``.
    """

    def __init__(self, weights: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.vgg = VGGFeatures("vgg16", LPIPS_LAYERS, weights=weights)
        for k, (name, channels) in enumerate(LPIPS_HEADS):
            head = weights.get(f"{name}.weight")
            if head is None or tuple(head.shape) != (1, channels, 1, 1):
                found = "nothing" if head is None else str(tuple(head.shape))
                raise WeightsError(
                    f"LPIPS head {name}: expected shape (1, {channels}, 1, 1), found {found}"
                )
            if bool((head < 0).any()):
                raise WeightsError(
                    f"LPIPS head {name} has negative weights; LPIPS heads are non-negative"
                )
            self.register_buffer(f"lin{k}", head.detach().float().clone(), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Shape: (B, 3, H, W) sRGB in [0, 1] -> {layer: (B, C, H / 2^k, W / 2^k)}."""
        return self.vgg(image)  # channels-last inside, as VGGFeatures always runs

    @staticmethod
    def style_distance(
        out: dict[str, torch.Tensor], style: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Mean over STYLE_LAYERS of ||G(out) - G(style)||_F / ||G(style)||_F.

        Shape: features of (B, 3, H, W) and of (B, 3, H', W') -> (B,).
        """
        terms = []
        for layer in STYLE_LAYERS:
            g_out, g_style = gram_matrix(out[layer]), gram_matrix(style[layer])
            diff = torch.linalg.matrix_norm(g_out - g_style)
            terms.append(diff / torch.linalg.matrix_norm(g_style).clamp_min(1e-12))
        return torch.stack(terms).mean(0)

    def lpips(self, a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> torch.Tensor:
        """LPIPS between two images' features (same size): Zhang et al.'s sum over five layers.

        Shape: features of (B, 3, H, W) twice -> (B,).
        """
        total = torch.zeros(next(iter(a.values())).shape[0], device=self.lin0.device)
        for k, layer in enumerate(LPIPS_LAYERS):
            d = (_unit_normalize(a[layer]) - _unit_normalize(b[layer])) ** 2
            total = total + F.conv2d(d, getattr(self, f"lin{k}")).mean(dim=(1, 2, 3))
        return total


def _unit_normalize(x: torch.Tensor) -> torch.Tensor:
    """Each position's feature vector over its L2 norm across channels, as LPIPS does.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + _LPIPS_EPS)


@functools.lru_cache(maxsize=4)
def _cached_judge(cache: str, device: str) -> Judge:
    return Judge(load_weights("vgg16", cache=cache)).to(device)


def _judge(cache: str | os.PathLike[str] | None, device: torch.device) -> Judge:
    """One Judge per weights cache and device, kept: a benchmark scoring many snapshots loads
    the weights once."""
    return _cached_judge(str(cache_dir(cache)), str(device))


def _as_image(image: ImageLike, what: str) -> torch.Tensor:
    """A path (read with load_image) or a (1, 3, H, W) tensor in [0, 1] -> float32 (1, 3, H, W)."""
    if isinstance(image, torch.Tensor):
        if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
            raise ValueError(
                f"{what}: expected a tensor of shape (1, 3, H, W), got {tuple(image.shape)}"
            )
        return image.detach().float()
    return load_image(image, what=what)


def _check_size(image: torch.Tensor, layers: tuple[str, ...], what: str, purpose: str) -> None:
    need = min_input_size(layers, "vgg16")
    h, w = image.shape[-2:]
    if min(h, w) < need:
        raise InputError(f"{what} is {w}x{h} px; {purpose} needs at least {need}x{need}")


def _style_input(image: torch.Tensor, what: str) -> torch.Tensor:
    resized = resize_long_side(image, STYLE_SIZE)
    _check_size(
        resized, STYLE_LAYERS, f"{what} at a long side of {STYLE_SIZE} px", "the style distance"
    )
    return resized


def style_distance(
    out: ImageLike, style: ImageLike, *, cache: str | os.PathLike[str] | None = None
) -> float:
    """How far the output's VGG-16 Gram statistics are from the style image's (0 = the same).

    Both images are resized to a long side of 512 px first.

    Shape: ``out`` and ``style`` paths or (1, 3, H, W) tensors in [0, 1], of any sizes.

    Raises:
        InputError: a path is missing or not an image, or an image is too thin at 512 px.
    """
    out_t, style_t = _as_image(out, "output image"), _as_image(style, "style image")
    out_t, style_t = _style_input(out_t, "output image"), _style_input(style_t, "style image")
    judge = _judge(cache, out_t.device)
    with torch.inference_mode():
        d = judge.style_distance(judge.features(out_t), judge.features(style_t.to(out_t.device)))
    return float(d.item())


def content_distance(
    out: ImageLike, content: ImageLike, *, cache: str | os.PathLike[str] | None = None
) -> float:
    """LPIPS-VGG between the output and the content photo, at the output's size (0 = the photo).

    Shape: ``out`` and ``content`` paths or (1, 3, H, W) tensors in [0, 1]; content is resized
    to the output's H x W.

    Raises:
        InputError: a path is missing or not an image, or the output is under 16 px a side.
    """
    out_t, content_t = _as_image(out, "output image"), _as_image(content, "content image")
    _check_size(out_t, LPIPS_LAYERS, "output image", "LPIPS")
    content_t = resize_to(content_t.to(out_t.device), *out_t.shape[-2:])
    judge = _judge(cache, out_t.device)
    with torch.inference_mode():
        d = judge.lpips(judge.features(out_t), judge.features(content_t))
    return float(d.item())


def score(
    out: ImageLike,
    content: ImageLike,
    style: ImageLike,
    *,
    cache: str | os.PathLike[str] | None = None,
) -> Score:
    """Both figures, as :func:`style_distance` and :func:`content_distance` give them.

    Every image is read before the network is loaded, so a wrong path fails at once. The
    output's features are computed once when its own size is already the style size.
    """
    out_t = _as_image(out, "output image")
    content_t = _as_image(content, "content image").to(out_t.device)
    style_t = _style_input(_as_image(style, "style image"), "style image").to(out_t.device)
    _check_size(out_t, LPIPS_LAYERS, "output image", "LPIPS")
    out_style = _style_input(out_t, "output image")
    content_t = resize_to(content_t, *out_t.shape[-2:])
    judge = _judge(cache, out_t.device)
    with torch.inference_mode():
        out_f = judge.features(out_t)
        out_style_f = out_f if out_style is out_t else judge.features(out_style)
        style_d = judge.style_distance(out_style_f, judge.features(style_t))
        content_d = judge.lpips(out_f, judge.features(content_t))
    return Score(style=float(style_d.item()), content=float(content_d.item()))
