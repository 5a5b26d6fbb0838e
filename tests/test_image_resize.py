"""Tests for impasto.image.resize: sizes, rounding, antialiasing and clamping."""

from __future__ import annotations

import pytest
import torch

from impasto.image import resize_long_side, resize_to


def test_resize_long_side_landscape_and_portrait() -> None:
    landscape = torch.rand(1, 3, 200, 300)
    assert resize_long_side(landscape, 150).shape == (1, 3, 100, 150)
    portrait = torch.rand(1, 3, 300, 200)
    assert resize_long_side(portrait, 150).shape == (1, 3, 150, 100)
    assert resize_long_side(portrait, 600).shape == (1, 3, 600, 400)  # enlarging too


def test_resize_long_side_rounds_and_keeps_one_pixel() -> None:
    assert resize_long_side(torch.rand(1, 3, 2, 3), 2).shape == (1, 3, 1, 2)  # 1.33 -> 1
    assert resize_long_side(torch.rand(1, 3, 3, 5), 6).shape == (1, 3, 4, 6)  # 3.6 -> 4
    assert resize_long_side(torch.rand(1, 3, 1000, 1), 10).shape == (1, 3, 10, 1)


def test_resize_keeps_a_constant_image_constant() -> None:
    image = torch.full((1, 3, 37, 53), 0.37)
    for size in (20, 53, 80):
        torch.testing.assert_close(
            resize_long_side(image, size),
            torch.full_like(resize_long_side(image, size), 0.37),
            rtol=0,
            atol=1e-5,
        )


def test_resize_output_is_clamped() -> None:
    # Hard 0/1 edges make bicubic overshoot, both enlarging and shrinking.
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2
    image = checker.float().expand(1, 3, 16, 16)
    for size in (7, 40):
        resized = resize_long_side(image, size)
        assert resized.min() >= 0.0 and resized.max() <= 1.0


def test_resize_is_antialiased_when_shrinking() -> None:
    # One-pixel stripes shrunk 3x: plain bicubic sampling aliases them into full-contrast
    # stripes; an antialiasing filter averages them to grey.
    stripes = torch.zeros(1, 3, 8, 300)
    stripes[..., 1::2] = 1.0
    shrunk = resize_to(stripes, 8, 100)
    assert shrunk.shape == (1, 3, 8, 100)
    assert (shrunk - 0.5).abs().max() < 0.1


def test_resize_returns_the_input_when_already_that_size() -> None:
    image = torch.rand(1, 3, 20, 30)
    assert resize_long_side(image, 30) is image
    assert resize_to(image, 20, 30) is image


def test_resize_to_exact_size() -> None:
    resized = resize_to(torch.rand(1, 3, 20, 30), 33, 7)
    assert resized.shape == (1, 3, 33, 7) and resized.dtype == torch.float32


def test_resize_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        resize_long_side(torch.rand(1, 3, 4, 4), 0)
    with pytest.raises(ValueError):
        resize_to(torch.rand(3, 4, 4), 2, 2)
