"""End-to-end runs on the real pretrained weights, on small images (64-96 px)."""

import pytest
import torch
from PIL import Image

from impasto import StyleConfig, stylize
from impasto.features import VGGFeatures
from impasto.image import load_image, resize_long_side
from impasto.losses import gram_matrix

pytestmark = pytest.mark.weights
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


def _gram_distance(net, a, b):
    """Mean over style layers of ||G(a) - G(b)|| / ||G(b)||."""
    fa, fb = net(a), net(b)
    return sum(
        float((gram_matrix(fa[n]) - gram_matrix(fb[n])).norm() / gram_matrix(fb[n]).norm()) for n in STYLE_LAYERS
    ) / len(STYLE_LAYERS)


@pytest.fixture(scope="module")
def small_pair():
    from tests.conftest import EXAMPLES

    return (
        resize_long_side(load_image(EXAMPLES / "astronaut.jpg"), 96),
        resize_long_side(load_image(EXAMPLES / "starry_night.jpg"), 96),
    )


def test_style_loss_falls_and_grams_move_toward_the_style(small_pair, weights_home):
    content, style = small_pair
    seen = []
    out = stylize(content, style, StyleConfig(size=96, iterations=60, tolerance=0), on_progress=seen.append, cache=weights_home)
    assert out.shape == content.shape and out.min() >= 0 and out.max() <= 1
    assert seen[-1].losses["style"] < seen[0].losses["style"] / 10
    net = VGGFeatures("vgg19", STYLE_LAYERS, cache=weights_home)
    with torch.no_grad():
        before, after = _gram_distance(net, content, style), _gram_distance(net, out, style)
    assert after < 0.5 * before, (before, after)


def test_content_init_stays_closer_to_the_content_than_noise(small_pair, weights_home):
    content, style = small_pair
    cfg = StyleConfig(size=96, iterations=40, tolerance=0)
    from_content = stylize(content, style, cfg, cache=weights_home)
    from_noise = stylize(content, style, cfg.replace(init="noise"), cache=weights_home)
    net = VGGFeatures("vgg19", ["conv4_2"], cache=weights_home)
    with torch.no_grad():
        target = net(content)["conv4_2"]
        d_content = float((net(from_content)["conv4_2"] - target).pow(2).mean())
        d_noise = float((net(from_noise)["conv4_2"] - target).pow(2).mean())
    assert d_content < d_noise
    assert (from_content - content).abs().mean() < (from_noise - content).abs().mean()


def test_same_seed_same_pixels(small_pair, weights_home):
    content, style = small_pair
    cfg = StyleConfig(size=64, iterations=8, init="noise", seed=3)
    a = stylize(content, style, cfg, cache=weights_home)
    b = stylize(content, style, cfg, cache=weights_home)
    c = stylize(content, style, cfg.replace(seed=4), cache=weights_home)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_accepts_paths_and_pil_images(small_pair, weights_home, content_path, style_path):
    cfg = StyleConfig(size=48, iterations=2)
    from_paths = stylize(content_path, style_path, cfg, cache=weights_home)
    from_pil = stylize(Image.open(content_path), Image.open(style_path), cfg, cache=weights_home)
    assert from_paths.shape == from_pil.shape == (1, 3, 48, 48)
    assert torch.allclose(from_paths, from_pil, atol=1e-5)


@pytest.mark.parametrize("init", ["style", "noise"])
def test_other_inits(small_pair, weights_home, init):
    content, style = small_pair
    out = stylize(content, style, StyleConfig(size=64, iterations=2, init=init), cache=weights_home)
    assert out.shape[-1] == 64


def test_init_from_an_image_file(small_pair, weights_home, style_path):
    content, style = small_pair
    cfg = StyleConfig(size=64, iterations=1, optimizer="adam", lr=0.01, init=str(style_path))
    out = stylize(content, style, cfg, cache=weights_home)
    # Resized to the content's shape, and the output starts from the painting, not the photo.
    assert out.shape == resize_long_side(content, 64).shape
    painting = resize_long_side(load_image(style_path), 64)
    assert painting.shape != out.shape


def test_tutorial_preset_runs_end_to_end_on_vgg16(small_pair, vgg16_home):
    content, style = small_pair
    home = vgg16_home
    cfg = StyleConfig.from_preset("tutorial", size=64, iterations=30)
    seen = []
    out = stylize(content, style, cfg, on_progress=seen.append, cache=home)
    assert out.shape[-1] == 64
    assert seen[-1].total < seen[0].total
    assert seen[-1].losses["tv"] == 0.0
    tv = stylize(content, style, StyleConfig.from_preset("tutorial-tv", size=64, iterations=3), cache=home)
    assert tv.shape == out.shape
