"""Colour control: YIQ round trip, luminance transfer, colour-statistics matching."""

import torch

from impasto import color


def _image(seed: int, h: int = 24, w: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, 1, 1, generator=g) * 0.5 + 0.25
    return (base + 0.15 * torch.randn(1, 3, h, w, generator=g)).clamp(0, 1)


def test_yiq_round_trip_and_known_values():
    x = _image(0)
    assert torch.allclose(color.yiq_to_rgb(color.rgb_to_yiq(x)), x, atol=1e-5)
    white = torch.ones(1, 3, 1, 1)
    yiq = color.rgb_to_yiq(white).flatten()
    assert torch.allclose(yiq, torch.tensor([1.0, 0.0, 0.0]), atol=1e-4)  # white has no chroma
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert abs(float(color.rgb_to_yiq(red)[0, 0]) - 0.299) < 1e-6


def test_luminance_is_grey_and_recombination_keeps_the_content_chroma():
    content, other = _image(1), _image(2)
    grey = color.luminance(other)
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    out = color.with_chroma_of(grey, content)
    yiq_out, yiq_content = color.rgb_to_yiq(out), color.rgb_to_yiq(content)
    # Chroma of the content, luminance of the other image (up to the clamp to [0, 1]).
    assert (yiq_out[:, 1:] - yiq_content[:, 1:]).abs().mean() < 0.01
    assert (yiq_out[:, :1] - color.rgb_to_yiq(other)[:, :1]).abs().mean() < 0.01


def test_match_luminance_takes_the_contents_mean_and_spread():
    content, style = color.luminance(_image(3)), color.luminance(_image(4)) * 0.3
    matched = color.match_luminance(style, content)
    assert abs(float(matched.mean() - content.mean())) < 0.01
    assert abs(float(matched.std() / content.std()) - 1) < 0.05


def _mean_cov(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p = x.reshape(3, -1).double()
    return p.mean(1), torch.cov(p, correction=0)


def test_match_colors_gives_the_style_the_contents_colour_statistics():
    content = _image(5)
    g = torch.Generator().manual_seed(6)
    # A bluish, low-contrast painting with correlated channels.
    t = torch.rand(1, 1, 24, 32, generator=g)
    style = torch.cat([0.1 + 0.2 * t, 0.2 + 0.3 * t, 0.5 + 0.4 * t], 1) + 0.03 * torch.rand(
        1, 3, 24, 32, generator=g
    )
    matched = color.match_colors(style, content)
    (mu_m, cov_m), (mu_c, cov_c), (mu_s, _) = (
        _mean_cov(matched),
        _mean_cov(content),
        _mean_cov(style),
    )
    assert (mu_m - mu_c).abs().max() < 0.01 < (mu_s - mu_c).abs().max()
    assert (cov_m - cov_c).abs().max() < 0.1 * cov_c.abs().max()
    # An affine map of colours keeps the layout: the matched image correlates with the original.
    a, b = style.mean(1).flatten(), matched.mean(1).flatten()
    assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.95
