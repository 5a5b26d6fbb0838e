"""impasto.score: the VGG-16 judges (style distance, LPIPS content distance) and `impasto score`.

The formulas are checked on a tiny image against a literal re-implementation (LPIPS's own input
scaling, torchvision's layer slices) with a seeded random network; a few tests with the real
weights check properties a wrong implementation would fail, and pin the figures of the shipped
example so that an accidental change of formula shows.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import impasto.score as score_module
from impasto.cli import main
from impasto.errors import InputError, WeightsError
from impasto.features import VGGFeatures
from impasto.image import load_image, resize_long_side, resize_to, save_image
from impasto.score import Score, content_distance, score, style_distance
from impasto.weights import LPIPS_HEADS
from tests.conftest import EXAMPLES, random_weights

RESULT = EXAMPLES / "astronaut_starry_night.jpg"
PHOTO = EXAMPLES / "astronaut.jpg"
PAINTING = EXAMPLES / "starry_night.jpg"
# The figures of the shipped example, computed once with the formulas as written. A change
# beyond 1e-4 means the formula changed (or an input file did): look before updating them.
PINNED = Score(style=0.29469, content=0.64535)

# LPIPS's ScalingLayer (lpips/pretrained_networks + lpips.py), for inputs in [-1, 1].
LPIPS_SHIFT = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
LPIPS_SCALE = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)


# ----------------------------------------------------------------------------------------------
# Literal re-implementations, float64


def reference_vgg16(x: torch.Tensor, w: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """torchvision VGG-16 fed as LPIPS feeds it; outputs at its slices relu1_2 ... relu5_3."""
    h = ((2 * x.double() - 1) - LPIPS_SHIFT) / LPIPS_SCALE
    taps = []
    for block, convs in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)):
        if block > 1:
            h = F.max_pool2d(h, 2)
        for i in range(1, convs + 1):
            name = f"conv{block}_{i}"
            h = F.relu(
                F.conv2d(h, w[f"{name}.weight"].double(), w[f"{name}.bias"].double(), padding=1)
            )
        taps.append(h)
    return taps


def reference_lpips(x0: torch.Tensor, x1: torch.Tensor, w: dict[str, torch.Tensor]) -> float:
    total = 0.0
    for k, (f0, f1) in enumerate(zip(reference_vgg16(x0, w), reference_vgg16(x1, w))):
        n0 = f0 / (torch.sqrt(torch.sum(f0**2, dim=1, keepdim=True)) + 1e-10)
        n1 = f1 / (torch.sqrt(torch.sum(f1**2, dim=1, keepdim=True)) + 1e-10)
        lin = w[f"lpips_lin{k}.weight"].double().view(1, -1, 1, 1)
        total += float(((n0 - n1) ** 2 * lin).sum(dim=1).mean())
    return total


def reference_style_distance(
    x0: torch.Tensor, x1: torch.Tensor, w: dict[str, torch.Tensor]
) -> float:
    terms = []
    for f0, f1 in list(zip(reference_vgg16(x0, w), reference_vgg16(x1, w)))[:4]:
        grams = []
        for f in (f0, f1):
            _, c, h, ww = f.shape
            flat = f.reshape(c, h * ww)
            grams.append(flat @ flat.T / (c * h * ww))
        terms.append(float(torch.linalg.norm(grams[0] - grams[1]) / torch.linalg.norm(grams[1])))
    return sum(terms) / len(terms)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = int(3 * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = (k / k.sum()).repeat(3, 1, 1, 1)
    x = F.pad(image, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(3, 1, 1, -1), groups=3)
    return F.conv2d(x, k.view(3, 1, -1, 1), groups=3)


# ----------------------------------------------------------------------------------------------
# A seeded random VGG-16 with random non-negative heads


def random_vgg16_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    w = random_weights("vgg16", seed)
    g = torch.Generator().manual_seed(seed + 1)
    for name, channels in LPIPS_HEADS:
        w[f"{name}.weight"] = torch.rand(1, channels, 1, 1, generator=g)
    return w


@pytest.fixture
def random_judge(monkeypatch, tmp_path):
    """The judges on the random network (no files), style images brought to 48 px, not 512."""
    w = random_vgg16_weights()
    monkeypatch.setattr(score_module, "load_weights", lambda network, cache=None: w)
    monkeypatch.setattr(score_module, "STYLE_SIZE", 48)
    score_module._cached_judge.cache_clear()
    yield tmp_path, w
    score_module._cached_judge.cache_clear()


def test_lpips_input_is_imagenet_normalisation():
    # LPIPS's (2x - 1 - shift) / scale is (x - mean) / std with ImageNet's mean and std: the
    # normalisation VGGFeatures("vgg16") applies, so the judge feeds the network LPIPS's input.
    vgg = VGGFeatures("vgg16", ["relu1_1"], weights=random_weights("vgg16"))
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    lpips_input = ((2 * x.double() - 1) - LPIPS_SHIFT) / LPIPS_SCALE
    torch.testing.assert_close(vgg.normalize(x).double(), lpips_input, rtol=0, atol=1e-6)


def test_content_distance_matches_a_literal_lpips(random_judge):
    cache, w = random_judge
    g = torch.Generator().manual_seed(1)
    out, content = torch.rand(1, 3, 32, 40, generator=g), torch.rand(1, 3, 48, 56, generator=g)
    expected = reference_lpips(out, resize_to(content, 32, 40), w)  # content at the output's size
    assert content_distance(out, content, cache=cache) == pytest.approx(expected, rel=1e-5)
    assert expected > 0


def test_style_distance_matches_a_literal_gram_distance(random_judge):
    cache, w = random_judge
    g = torch.Generator().manual_seed(2)
    out, style = torch.rand(1, 3, 40, 30, generator=g), torch.rand(1, 3, 60, 96, generator=g)
    expected = reference_style_distance(resize_long_side(out, 48), resize_long_side(style, 48), w)
    assert style_distance(out, style, cache=cache) == pytest.approx(expected, rel=1e-5)


def test_score_is_both_figures_and_identical_inputs_give_zero(random_judge):
    cache, _ = random_judge
    g = torch.Generator().manual_seed(3)
    out, content, style = (torch.rand(1, 3, 32, 32, generator=g) for _ in range(3))
    s = score(out, content, style, cache=cache)
    assert s.style == pytest.approx(style_distance(out, style, cache=cache), rel=1e-6)
    assert s.content == pytest.approx(content_distance(out, content, cache=cache), rel=1e-6)
    assert score(out, out, out, cache=cache) == Score(style=0.0, content=0.0)


def test_bad_inputs(random_judge, tmp_path):
    cache, w = random_judge
    with pytest.raises(InputError, match="12x12 px; LPIPS needs at least 16x16"):
        content_distance(torch.rand(1, 3, 12, 12), torch.rand(1, 3, 32, 32), cache=cache)
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        style_distance(torch.rand(3, 32, 32), torch.rand(1, 3, 32, 32), cache=cache)
    with pytest.raises(InputError, match=r"style image '.*nope\.jpg' does not exist"):
        score(
            torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), tmp_path / "nope.jpg", cache=cache
        )
    w["lpips_lin2.weight"] = -w["lpips_lin2.weight"]
    score_module._cached_judge.cache_clear()
    with pytest.raises(WeightsError, match="lpips_lin2 has negative weights"):
        content_distance(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), cache=cache)


def test_cli_prints_two_aligned_lines(random_judge, tmp_path, capsys):
    cache, _ = random_judge
    g = torch.Generator().manual_seed(4)
    paths = [
        save_image(torch.rand(1, 3, 32, 32, generator=g), tmp_path / f"{n}.png") for n in "ocs"
    ]
    assert (
        main(
            [
                "score",
                str(paths[0]),
                "--content",
                str(paths[1]),
                "--style",
                str(paths[2]),
                "--cache-dir",
                str(cache),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    expected = score(*paths, cache=cache)
    assert lines == [
        f"style distance   {expected.style:.4f}  (VGG-16 Gram, 0 = the style's statistics)",
        f"content distance {expected.content:.4f}  (LPIPS-VGG, 0 = the photo itself)",
    ]


@pytest.mark.parametrize("which", ["output", "content", "style"])
def test_cli_bad_file_exits_2_with_one_line(which, tmp_path, capsys, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("weights were loaded for a run that should have been refused")

    monkeypatch.setattr(score_module, "load_weights", refuse)
    score_module._cached_judge.cache_clear()
    (tmp_path / "notes.jpg").write_text("not an image")
    files = {"output": RESULT, "content": PHOTO, "style": PAINTING}
    files[which] = tmp_path / ("nope.jpg" if which != "style" else "notes.jpg")
    rc = main(
        [
            "score",
            str(files["output"]),
            "--content",
            str(files["content"]),
            "--style",
            str(files["style"]),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith(
        f"impasto: error: {which} image"
    ), err
    score_module._cached_judge.cache_clear()


# ----------------------------------------------------------------------------------------------
# The real weights


@pytest.fixture(scope="module")
def shipped(vgg16_home):
    return score(RESULT, PHOTO, PAINTING, cache=vgg16_home)


@pytest.mark.weights
def test_shipped_example_figures_are_pinned(shipped):
    assert shipped.style == pytest.approx(PINNED.style, abs=1e-4)
    assert shipped.content == pytest.approx(PINNED.content, abs=1e-4)


@pytest.mark.weights
def test_cli_json_gives_the_same_figures_again(shipped, vgg16_home, capsys):
    argv = [
        "score",
        str(RESULT),
        "--content",
        str(PHOTO),
        "--style",
        str(PAINTING),
        "--json",
        "--cache-dir",
        str(vgg16_home),
    ]
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert set(again) == {"style", "content"}
    assert again["style"] == pytest.approx(shipped.style, abs=1e-4)
    assert again["content"] == pytest.approx(shipped.content, abs=1e-4)


@pytest.mark.weights
def test_style_distance_orders_style_result_and_photo(shipped, vgg16_home):
    assert style_distance(PAINTING, PAINTING, cache=vgg16_home) == 0.0
    photo = style_distance(PHOTO, PAINTING, cache=vgg16_home)
    assert photo > shipped.style > 0.0


@pytest.mark.weights
def test_content_distance_grows_with_blur(vgg16_home):
    photo = resize_long_side(load_image(PHOTO), 128)
    same = content_distance(photo, photo, cache=vgg16_home)
    light = content_distance(gaussian_blur(photo, 1.0), photo, cache=vgg16_home)
    heavy = content_distance(gaussian_blur(photo, 3.0), photo, cache=vgg16_home)
    assert same < 1e-6
    assert same < light < heavy
