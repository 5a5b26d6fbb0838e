"""Keeping the photo's colours (Gatys et al. 2017, "Controlling Perceptual Factors in Neural
Style Transfer", section 5).

Two ways, both outside the network:

- ``match_colors``: before the run, give the style image the content's colour mean and
  covariance (an affine map of RGB), so the style brings its brushwork but the photo's palette.
- luminance only: run the transfer on the luminance channel (Y of YIQ) of both images, then put
  the content's chroma (I, Q) back. The style image's luminance is first matched to the
  content's mean and spread, as the paper does, so that a dark painting does not darken the
  photo.
"""

from __future__ import annotations

import torch

# NTSC YIQ, as in the paper. Rows: Y, I, Q.
_RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ]
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _apply(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix.to(image), image)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    """Shape: (B, 3, H, W) RGB in [0, 1] -> (B, 3, H, W) YIQ (Y in [0, 1])."""
    return _apply(_RGB_TO_YIQ, image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """Shape: (B, 3, H, W) YIQ -> (B, 3, H, W) RGB (not clamped)."""
    return _apply(_YIQ_TO_RGB, image)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """The Y channel repeated three times: a grey image the RGB network can read.

    Shape: (B, 3, H, W) -> (B, 3, H, W).
    """
    return rgb_to_yiq(image)[:, :1].expand(-1, 3, -1, -1).contiguous()


def match_luminance(style_grey: torch.Tensor, content_grey: torch.Tensor) -> torch.Tensor:
    """Shift and scale the style's luminance to the content's mean and standard deviation.

    Shape: (1, 3, H, W) grey, (1, 3, H', W') grey -> (1, 3, H, W) grey in [0, 1].
    """
    s_mean, s_std = style_grey.mean(), style_grey.std().clamp_min(1e-6)
    c_mean, c_std = content_grey.mean(), content_grey.std()
    return ((style_grey - s_mean) * (c_std / s_std) + c_mean).clamp(0, 1)


def with_chroma_of(grey: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The luminance of ``grey`` with the I and Q channels of ``content``.

    Shape: (1, 3, H, W) grey (any channel holds Y), (1, 3, H, W) RGB -> (1, 3, H, W) RGB in [0, 1].
    """
    yiq = rgb_to_yiq(content)
    yiq = torch.cat([grey[:, :1].to(yiq), yiq[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0, 1)


def _mean_cov(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = image.reshape(3, -1).double()
    mean = pixels.mean(dim=1, keepdim=True)
    centred = pixels - mean
    return mean, centred @ centred.T / pixels.shape[1]


def _sqrtm(cov: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(cov)
    values = values.clamp_min(1e-8)
    values = values.rsqrt() if inverse else values.sqrt()
    return vectors @ torch.diag(values) @ vectors.T


def match_colors(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Give ``style`` the colour mean and covariance of ``content``.

    x' = C_c^(1/2) C_s^(-1/2) (x - mu_s) + mu_c, the symmetric ("image analogies") form the
    paper found to work best; afterwards the style's RGB mean and covariance equal the
    content's (up to the clamp to [0, 1]).

    Shape: (1, 3, H, W), (1, 3, H', W') -> (1, 3, H, W).
    """
    mu_s, cov_s = _mean_cov(style)
    mu_c, cov_c = _mean_cov(content)
    transform = _sqrtm(cov_c) @ _sqrtm(cov_s, inverse=True)
    pixels = style.reshape(3, -1).double()
    matched = transform @ (pixels - mu_s) + mu_c
    return matched.reshape(style.shape).to(style.dtype).clamp(0, 1)
