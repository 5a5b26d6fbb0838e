"""End-to-end runs on the real pretrained weights, on small images (64-96 px)."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

import impasto.budget
import impasto.config
import impasto.engine
from impasto import StyleConfig, Stylizer, resume, stylize
from impasto.errors import InputError, UsageError
from impasto.features import VGGFeatures
from impasto.image import load_image, resize_long_side, to_pil
from impasto.losses import gram_matrix
from impasto.weights import load_weights

pytestmark = pytest.mark.weights
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


def _gram_distance(net, a, b):
    """Mean over style layers of ||G(a) - G(b)|| / ||G(b)||."""
    fa, fb = net(a), net(b)
    return sum(
        float((gram_matrix(fa[n]) - gram_matrix(fb[n])).norm() / gram_matrix(fb[n]).norm())
        for n in STYLE_LAYERS
    ) / len(STYLE_LAYERS)


def _net(home, layers):
    return VGGFeatures("vgg19", layers, weights=load_weights("vgg19", cache=home))


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
    out = stylize(
        content,
        style,
        StyleConfig(size=96, iterations=60, tolerance=0),
        on_progress=seen.append,
        cache=weights_home,
    )
    assert out.shape == content.shape and out.min() >= 0 and out.max() <= 1
    assert seen[-1].losses["style"] < seen[0].losses["style"] / 10
    net = _net(weights_home, STYLE_LAYERS)
    with torch.no_grad():
        before, after = _gram_distance(net, content, style), _gram_distance(net, out, style)
    assert after < 0.5 * before, (before, after)


def test_content_init_stays_closer_to_the_content_than_noise(small_pair, weights_home):
    content, style = small_pair
    cfg = StyleConfig(size=96, iterations=40, tolerance=0)
    from_content = stylize(content, style, cfg, cache=weights_home)
    from_noise = stylize(content, style, cfg.replace(init="noise"), cache=weights_home)
    net = _net(weights_home, ["conv4_2"])
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
    tv = stylize(
        content, style, StyleConfig.from_preset("tutorial-tv", size=64, iterations=3), cache=home
    )
    assert tv.shape == out.shape


# ---------------------------------------------------------------------------------------------
# Creative controls: several styles, colours, regions, style statistics, resume.


@pytest.fixture(scope="module")
def wave():
    from tests.conftest import EXAMPLES

    return resize_long_side(load_image(EXAMPLES / "great_wave.jpg"), 96)


def test_blend_weights_one_and_zero_give_that_style_alone(small_pair, wave, weights_home):
    content, starry = small_pair
    cfg = StyleConfig(size=64, iterations=6)
    alone = stylize(content, starry, cfg, cache=weights_home)
    blended = stylize(content, [starry, wave], cfg.replace(style_blend=(1, 0)), cache=weights_home)
    other = stylize(content, [starry, wave], cfg.replace(style_blend=(0, 1)), cache=weights_home)
    assert torch.allclose(alone, blended, atol=1e-6)
    assert not torch.allclose(alone, other, atol=1e-3)


def test_an_even_blend_lies_between_the_two_styles(small_pair, wave, weights_home):
    content, starry = small_pair
    cfg = StyleConfig(size=96, iterations=60, tolerance=0)
    net = _net(weights_home, STYLE_LAYERS)
    outs = {
        w: stylize(content, [starry, wave], cfg.replace(style_blend=w), cache=weights_home)
        for w in [(1, 0), (0.5, 0.5), (0, 1)]
    }
    with torch.no_grad():
        to_starry = {w: _gram_distance(net, o, starry) for w, o in outs.items()}
        to_wave = {w: _gram_distance(net, o, wave) for w, o in outs.items()}
    assert to_starry[(1, 0)] < to_starry[(0.5, 0.5)] < to_starry[(0, 1)], to_starry
    assert to_wave[(0, 1)] < to_wave[(0.5, 0.5)] < to_wave[(1, 0)], to_wave


def test_blend_and_scales_must_fit_the_number_of_styles(small_pair, wave, weights_home):
    content, starry = small_pair
    with pytest.raises(UsageError, match="--style-blend has 3 weights for 2 style images"):
        stylize(
            content, [starry, wave], StyleConfig(size=64, style_blend=(1, 1, 1)), cache=weights_home
        )
    with pytest.raises(UsageError, match="--style-scale has 3 values for 2 style images"):
        stylize(
            content, [starry, wave], StyleConfig(size=64, style_scale=(1, 1, 1)), cache=weights_home
        )


def _chroma(x):
    from impasto.color import rgb_to_yiq

    return rgb_to_yiq(x)[:, 1:]


def test_colors_luminance_keeps_the_photos_colours_and_takes_the_texture(small_pair, weights_home):
    content, style = small_pair
    cfg = StyleConfig(size=96, iterations=60, tolerance=0)
    plain = stylize(content, style, cfg, cache=weights_home)
    kept = stylize(content, style, cfg.replace(colors="luminance"), cache=weights_home)
    # Colour: the mean colour and the chroma of every pixel are the photo's (up to the clamp).
    assert (kept.mean((2, 3)) - content.mean((2, 3))).abs().max() < 0.03
    assert (_chroma(kept) - _chroma(content)).abs().mean() < 0.02
    assert (_chroma(plain) - _chroma(content)).abs().mean() > 2 * (
        _chroma(kept) - _chroma(content)
    ).abs().mean()
    # Texture: the luminance moved toward the style's, as in a plain run.
    from impasto.color import luminance

    net = _net(weights_home, STYLE_LAYERS)
    with torch.no_grad():
        before = _gram_distance(net, luminance(content), luminance(style))
        after = _gram_distance(net, luminance(kept), luminance(style))
    assert after < 0.7 * before, (before, after)


def test_colors_match_keeps_the_photos_palette(small_pair, weights_home):
    content, style = small_pair
    cfg = StyleConfig(size=96, iterations=60, tolerance=0)
    plain = stylize(content, style, cfg, cache=weights_home)
    matched = stylize(content, style, cfg.replace(colors="match"), cache=weights_home)
    gap = lambda x: float((x.mean((2, 3)) - content.mean((2, 3))).abs().max())  # noqa: E731
    assert gap(matched) < 0.04 and gap(matched) < gap(plain) / 2, (gap(matched), gap(plain))
    assert (matched - content).abs().mean() > 0.03  # and it is not just the photo


def _half_masks(h, w):
    left = torch.zeros(1, 3, h, w)
    left[..., : w // 2] = 1
    return left


def test_regions_each_style_matches_inside_its_region_and_not_outside(
    small_pair, wave, weights_home
):
    """Starry Night left, the Great Wave right: each half's Gram statistics are closer to its
    own style's than to the other's, and the other way round with the mask flipped."""
    content, starry = small_pair
    h, w = content.shape[-2:]
    mask = _half_masks(h, w)
    cfg = StyleConfig(size=96, iterations=80, tolerance=0, style_weight=10)
    out = stylize(content, [starry, wave], cfg, content_masks=[mask], cache=weights_home)
    flipped = stylize(content, [starry, wave], cfg, content_masks=[1 - mask], cache=weights_home)
    net = _net(weights_home, STYLE_LAYERS)
    left, right = (
        (slice(None), slice(None), slice(None), slice(0, w // 2)),
        (slice(None), slice(None), slice(None), slice(w // 2, None)),
    )
    with torch.no_grad():
        d = lambda img, side, style: _gram_distance(net, img[side], style)  # noqa: E731
        assert d(out, left, starry) < d(out, left, wave)
        assert d(out, right, wave) < d(out, right, starry)
        assert d(flipped, left, wave) < d(flipped, left, starry)
        assert d(flipped, right, starry) < d(flipped, right, wave)
        # Region by region, the matched style is nearer than in the flipped run.
        assert d(out, left, starry) < d(flipped, left, starry)
        assert d(out, right, wave) < d(flipped, right, wave)


def test_one_style_one_mask_leaves_the_rest_of_the_photo(small_pair, weights_home):
    content, starry = small_pair
    h, w = content.shape[-2:]
    cfg = StyleConfig(size=96, iterations=40, tolerance=0)
    out = stylize(content, starry, cfg, content_masks=[_half_masks(h, w)], cache=weights_home)
    changed_left = (out - content)[..., : w // 2 - 8].abs().mean()
    changed_right = (out - content)[..., w // 2 + 8 :].abs().mean()
    assert changed_left > 3 * changed_right


def test_bad_masks_are_clear_errors(small_pair, wave, weights_home):
    content, starry = small_pair
    h, w = content.shape[-2:]
    cfg = StyleConfig(size=64, iterations=1)
    with pytest.raises(
        InputError, match=r"content mask 1 is 40x10 px but the content image is 96x96 px"
    ):
        stylize(content, starry, cfg, content_masks=[torch.ones(1, 3, 10, 40)], cache=weights_home)
    with pytest.raises(InputError, match="content mask 1 has no white pixels"):
        stylize(content, starry, cfg, content_masks=[torch.zeros(1, 3, h, w)], cache=weights_home)
    with pytest.raises(InputError, match="3 content masks for 2 style images"):
        stylize(
            content,
            [starry, wave],
            cfg,
            content_masks=[torch.ones(1, 3, h, w)] * 3,
            cache=weights_home,
        )
    with pytest.raises(InputError, match="1 style masks for 2 style images"):
        stylize(
            content, [starry, wave], cfg, style_masks=[torch.ones(1, 3, 96, 96)], cache=weights_home
        )
    speck = torch.zeros(1, 3, h, w)
    speck[..., :3, :3] = 1
    with pytest.raises(InputError, match=r"the region of style 1 is too small for conv\d_1"):
        stylize(content, starry, cfg, content_masks=[speck], cache=weights_home)


def test_a_style_mask_takes_the_statistics_from_its_region(small_pair, weights_home):
    """Style = Starry Night's left half beside a flat grey right half: with the style mask on the
    painted half, the result is as near the painting as with the painting alone."""
    content, starry = small_pair
    h, w = starry.shape[-2:]
    half_grey = starry.clone()
    half_grey[..., w // 2 :] = 0.5
    mask = _half_masks(h, w)
    cfg = StyleConfig(size=96, iterations=60, tolerance=0)
    net = _net(weights_home, STYLE_LAYERS)
    painted = starry[..., : w // 2]
    masked = stylize(content, half_grey, cfg, style_masks=[mask], cache=weights_home)
    unmasked = stylize(content, half_grey, cfg, cache=weights_home)
    with torch.no_grad():
        assert _gram_distance(net, masked, painted) < _gram_distance(net, unmasked, painted)


@pytest.mark.parametrize("kind", ["meancov", "histogram"])
def test_other_style_statistics_reduce_their_loss_and_move_toward_the_style(
    small_pair, weights_home, kind
):
    content, style = small_pair
    seen = []
    cfg = StyleConfig(size=96, iterations=60, tolerance=0, style_loss=kind)
    out = stylize(content, style, cfg, on_progress=seen.append, cache=weights_home)
    assert seen[-1].losses["style"] < seen[0].losses["style"] / 3
    net = _net(weights_home, STYLE_LAYERS)
    with torch.no_grad():
        assert _gram_distance(net, out, style) < 0.7 * _gram_distance(net, content, style)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
@pytest.mark.parametrize("how", ["ctrl-c", "killed"])
def test_resume_reaches_the_pixels_of_an_uninterrupted_run(
    small_pair, weights_home, tmp_path, optimizer, how
):
    """Ctrl-C checkpoints where it stops; a killed process leaves the last periodic checkpoint.
    Either way the resumed run ends on the uninterrupted run's pixels."""
    from impasto.checkpoint import load_checkpoint

    content, style = small_pair
    cfg = StyleConfig(size=64, iterations=20, tolerance=0, optimizer=optimizer, colors="luminance")
    whole = stylize(content, style, cfg, cache=weights_home)
    ckpt = tmp_path / "out.png.ckpt"

    def stop_at_13(p):
        if p.step == 13:
            raise KeyboardInterrupt if how == "ctrl-c" else SystemExit(9)

    with pytest.raises((KeyboardInterrupt, SystemExit)):
        stylize(
            content,
            style,
            cfg,
            on_progress=stop_at_13,
            cache=weights_home,
            checkpoint=ckpt,
            checkpoint_every=5,
        )
    assert load_checkpoint(ckpt)["state"]["step"] == (13 if how == "ctrl-c" else 10)
    steps = []
    resumed = resume(ckpt, on_progress=lambda p: steps.append(p.step), cache=weights_home)
    assert steps[0] == (14 if how == "ctrl-c" else 11) and steps[-1] == 20
    assert torch.allclose(resumed, whole, atol=1e-5), float((resumed - whole).abs().max())


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_agrees_with_fp32(small_pair, weights_home, precision):
    """The network in bf16/fp16 (autocast), the image and losses in float32. On the same image
    (the first step sees the photo) the loss differs only by rounding, and does differ (the
    setting is applied); after 15 steps the run has optimised about as far as float32 and
    lands nearer the float32 result than the photo it started from. The bounds leave room for
    CPUs with and without native 16-bit arithmetic (fp16 on the Caffe network's large
    activations loses the most: its final loss was 1.3x float32's on an AMD EPYC)."""
    from impasto.budget import compute_dtype

    content, style = small_pair
    cfg = StyleConfig(
        size=64,
        iterations=15,
        tolerance=0,
        style_weight=5.0,
        tv_weight=0.05,
        style_distance="squared",
    )
    seen_full, seen = [], []
    full = stylize(content, style, cfg, on_progress=seen_full.append, cache=weights_home)
    reduced = stylize(
        content,
        style,
        cfg.replace(precision=precision),
        on_progress=seen.append,
        cache=weights_home,
    )
    assert reduced.dtype == torch.float32
    assert seen[0].total != seen_full[0].total
    assert seen[0].total == pytest.approx(seen_full[0].total, rel=0.01)
    assert all(math.isfinite(p.total) for p in seen)
    assert seen[-1].total < 0.1 * seen[0].total and seen[-1].total < 2 * seen_full[-1].total
    moved = float((full - resize_long_side(content, 64)).abs().mean())
    apart = float((reduced - full).abs().mean())
    assert 0 < apart < 0.75 * moved, (apart, moved)
    assert compute_dtype("auto", torch.device("cpu")) is None
    assert (
        compute_dtype(precision, torch.device("cpu"))
        == {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    )


# ----------------------------------------------------------------------------------------------
# Coarse to fine


def test_coarse_to_fine_runs_each_scale_at_its_size_and_counts_steps_across_them(
    small_pair, weights_home
):
    content, style = small_pair
    cfg = StyleConfig(size=96, min_size=48, iterations=(6, 4), tolerance=0)
    seen = []
    out = stylize(
        content,
        style,
        cfg,
        on_progress=lambda p: seen.append(
            (p.step, p.total_steps, p.scale, p.scales, tuple(p.image.shape[-2:]))
        ),
        cache=weights_home,
    )
    assert out.shape == (1, 3, 96, 96)
    assert seen == [(i, 10, 1, 2, (48, 48)) for i in range(1, 7)] + [
        (i, 10, 2, 2, (96, 96)) for i in range(7, 11)
    ]


def test_coarse_style_lightens_the_smallest_scale_only(small_pair, weights_home):
    # The first step of each run sees the same image (the photo) and the same targets, so the
    # style term differs by exactly the factor; at the larger scale, and in a single-scale run,
    # --coarse-style has no effect.
    content, style = small_pair

    def first_style_terms(cfg: StyleConfig) -> dict[int, float]:
        seen: dict[int, float] = {}
        stylize(
            content,
            style,
            cfg,
            on_progress=lambda p: seen.setdefault(p.scale, p.losses["style"]),
            cache=weights_home,
        )
        return seen

    two = StyleConfig(size=96, min_size=48, iterations=(1, 1), tolerance=0, init="content")
    light, plain = (
        first_style_terms(two.replace(coarse_style=0.3)),
        first_style_terms(two.replace(coarse_style=1.0)),
    )
    assert light[1] == pytest.approx(0.3 * plain[1], rel=1e-5)
    one = StyleConfig(size=64, scales=1, iterations=1, tolerance=0)
    assert first_style_terms(one.replace(coarse_style=0.3)) == first_style_terms(one)


def test_style_distance_norm_is_the_root_of_the_squared(small_pair, weights_home):
    content, style = small_pair
    cfg = StyleConfig(
        size=64, scales=1, iterations=1, tolerance=0, style_weight=1.0, balance="fixed"
    )
    terms = []
    for distance in ("squared", "norm"):
        seen = []
        stylize(
            content,
            style,
            cfg.replace(style_distance=distance),
            on_progress=seen.append,
            cache=weights_home,
        )
        terms.append(seen[0].losses["style"])
    # Each layer's share is w * d (squared) or w * sqrt(d) (norm), for weights w summing to 1:
    # the option must change the term, and by Jensen sum w sqrt(d) <= sqrt(sum w d).
    assert terms[1] != pytest.approx(terms[0], rel=1e-3)
    assert terms[1] <= terms[0] ** 0.5 * (1 + 1e-5)


def test_each_scale_starts_from_the_last_scales_result(small_pair, weights_home, monkeypatch):
    """The second scale is initialised with the first scale's output, upsampled, not the photo."""
    from impasto.image import resize_to

    content, style = small_pair
    inits = []
    real = impasto.engine.optimize

    def spy(image, *args, **kwargs):
        inits.append(image.detach().clone())
        return real(image, *args, **kwargs)

    monkeypatch.setattr(impasto.engine, "optimize", spy)
    first = stylize(
        content, style, StyleConfig(size=48, iterations=6, tolerance=0), cache=weights_home
    )
    # The first scale at the full style weight, as the single-scale run above has it.
    stylize(
        content,
        style,
        StyleConfig(size=96, min_size=48, iterations=(6, 1), tolerance=0, coarse_style=1.0),
        cache=weights_home,
    )
    assert len(inits) == 3
    assert torch.allclose(inits[2], resize_to(first, 96, 96), atol=1e-6)
    assert float((inits[2] - resize_long_side(content, 96)).abs().mean()) > 0.01


def test_style_targets_are_taken_at_each_scales_size(small_pair, weights_home, monkeypatch):
    """--style-scale keeps its meaning at every scale: the style image shrinks with the output."""
    content, style = small_pair
    sizes = []
    real = impasto.engine.style_statistics_of

    def spy(*args, **kwargs):
        compute = real(*args, **kwargs)

        def stats_of(style, mask, what):
            sizes.append(tuple(style.shape[-2:]))
            return compute(style, mask, what)

        return stats_of

    monkeypatch.setattr(impasto.engine, "style_statistics_of", spy)
    engine = Stylizer(cache=weights_home)  # its own: no style statistics remembered yet
    engine.stylize(
        content, style, StyleConfig(size=96, min_size=48, iterations=(1, 1), style_scale=0.5)
    )
    # First the pair's balance, measured at the 96 px photo's own size (the style at half that,
    # kept for the last scale), then the first scale.
    assert sizes == [(38, 48), (19, 24)]


def test_a_coarse_to_fine_run_keeps_the_content_and_takes_the_style(
    small_pair, weights_home, vgg16_home
):
    """The content/style balance holds across scales: judged on VGG-16 (which the run does not
    optimise), a coarse-to-fine run ends about as near the photo as a single-scale run of the
    same length, and about as near the painting."""
    from impasto.score import score

    content, style = small_pair
    c2f = stylize(
        content,
        style,
        StyleConfig(size=96, min_size=48, iterations=(40, 10), tolerance=0),
        cache=weights_home,
    )
    single = stylize(
        content,
        style,
        StyleConfig(size=96, scales=1, iterations=50, tolerance=0),
        cache=weights_home,
    )
    start = score(resize_long_side(content, 96), content, style, cache=vgg16_home)
    a, b = (
        score(c2f, content, style, cache=vgg16_home),
        score(single, content, style, cache=vgg16_home),
    )
    assert a.style < 0.8 * start.style, (a, start)
    assert a.content < 1.25 * b.content and a.style < 1.25 * b.style, (a, b)


@pytest.mark.parametrize("stop_at", [4, 9])
def test_resume_within_either_scale_reaches_the_uninterrupted_pixels(
    small_pair, weights_home, tmp_path, stop_at
):
    from impasto.checkpoint import load_checkpoint

    content, style = small_pair
    cfg = StyleConfig(size=96, min_size=48, iterations=(6, 6), tolerance=0)
    whole = stylize(content, style, cfg, cache=weights_home)
    ckpt = tmp_path / "out.png.ckpt"

    def stop(p):
        if p.step == stop_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stylize(
            content,
            style,
            cfg,
            on_progress=stop,
            cache=weights_home,
            checkpoint=ckpt,
            checkpoint_every=0,
        )
    assert load_checkpoint(ckpt)["state"]["scale"] == (0 if stop_at <= 6 else 1)
    steps = []
    resumed = resume(ckpt, on_progress=lambda p: steps.append(p.step), cache=weights_home)
    assert steps == list(range(stop_at + 1, 13))
    assert torch.allclose(resumed, whole, atol=1e-5), float((resumed - whole).abs().max())


def test_too_small_a_min_size_is_a_clear_error(small_pair, weights_home):
    content, style = small_pair
    with pytest.raises(
        InputError, match="at the smallest scale .--min-size 8.*use a larger --min-size"
    ):
        stylize(content, style, StyleConfig(size=96, min_size=8, iterations=1), cache=weights_home)


def test_large_scales_recompute_activations_and_give_the_same_pixels(
    small_pair, weights_home, monkeypatch
):
    """Above RECOMPUTE_PIXELS the network recomputes its first blocks in the backward pass:
    the run is the same, only its memory is less. Here the threshold sits between the scales."""
    content, style = small_pair
    cfg = StyleConfig(size=96, min_size=48, iterations=(3, 3), tolerance=0)
    plain = stylize(content, style, cfg, cache=weights_home)
    used = []
    real = VGGFeatures.forward

    def spy(self, image, tap=None, **kwargs):
        if torch.is_grad_enabled() and image.requires_grad:
            used.append((tuple(image.shape[-2:]), kwargs.get("recompute", False)))
        return real(self, image, tap, **kwargs)

    monkeypatch.setattr(VGGFeatures, "forward", spy)
    monkeypatch.setattr(impasto.budget, "RECOMPUTE_PIXELS", 48 * 48)
    recomputed = stylize(content, style, cfg, cache=weights_home)
    assert {(48, 48): False, (96, 96): True} == dict(used)
    assert torch.equal(plain, recomputed)


def test_a_checkpoint_resumes_on_its_own_schedule_when_the_default_changes(
    small_pair, weights_home, tmp_path, monkeypatch
):
    """A run on the default schedule stores that schedule step for step: resumed by a version
    whose default differs, it still takes the steps it started with and gives the same pixels."""
    config_module = impasto.config
    content, style = small_pair
    monkeypatch.setattr(config_module, "DEFAULT_ITERATIONS", (5, 4))
    cfg = StyleConfig(size=96, min_size=48, tolerance=0)
    assert cfg.iterations is None and cfg.schedule() == ((48, 5), (96, 4))
    whole = stylize(content, style, cfg, cache=weights_home)
    ckpt = tmp_path / "out.png.ckpt"

    def stop(p):
        if p.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stylize(
            content,
            style,
            cfg,
            on_progress=stop,
            cache=weights_home,
            checkpoint=ckpt,
            checkpoint_every=0,
        )
    monkeypatch.setattr(config_module, "DEFAULT_ITERATIONS", (2, 2))  # "a later version"
    steps = []
    resumed = resume(ckpt, on_progress=lambda p: steps.append(p.step), cache=weights_home)
    assert steps == list(range(4, 10))
    assert torch.allclose(resumed, whole, atol=1e-5), float((resumed - whole).abs().max())


# ----------------------------------------------------------------------------------------------
# The engine: built once, runs many


def test_an_engine_loads_its_weights_once_and_gives_the_pixels_of_stylize(
    small_pair, weights_home, monkeypatch
):
    content, style = small_pair
    loads, builds = [], []
    real_load, real_init = impasto.engine.load_weights, VGGFeatures.__init__

    def counting_load(network, **kwargs):
        loads.append(network)
        return real_load(network, **kwargs)

    def counting_init(self, *args, **kwargs):
        builds.append(args[0])
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(impasto.engine, "load_weights", counting_load)
    monkeypatch.setattr(VGGFeatures, "__init__", counting_init)
    engine = Stylizer("vgg19", "cpu", cache=weights_home)
    cfg = StyleConfig(size=64, iterations=4, tolerance=0)
    outs = [engine.stylize(content, style, cfg) for _ in range(3)]
    assert loads == ["vgg19"] and builds == ["vgg19"]
    engine.stylize(content, style, cfg.replace(style_layers=("conv1_1", "conv3_1")))
    assert loads == ["vgg19"] and builds == ["vgg19", "vgg19"]  # another layer set, same weights
    monkeypatch.undo()
    assert torch.equal(outs[0], outs[2])
    assert torch.equal(outs[0], stylize(content, style, cfg, cache=weights_home))


def test_a_style_is_measured_once_per_size_for_many_photos(
    small_pair, wave, weights_home, monkeypatch
):
    """A batch in one style computes the style's statistics once per scale, not once per photo."""
    content, style = small_pair
    from impasto.statistics import GramStatistic

    calls = []
    real = GramStatistic.of
    monkeypatch.setattr(
        GramStatistic, "of", lambda self, f, m=None: calls.append(f.shape) or real(self, f, m)
    )
    engine = Stylizer(cache=weights_home)
    cfg = StyleConfig(size=96, min_size=48, iterations=(1, 1), tolerance=0)
    photos = [content, content.flip(-1), wave]
    for photo in photos:
        engine.stylize(photo, style, cfg)
    layers = len(cfg.style_layers)
    # Two scales (the balance measures these 96 px photos at the last one's size), five layers,
    # for three photos.
    assert len(calls) == 2 * layers
    engine.stylize(content, wave, cfg)  # another style is measured, of course
    assert len(calls) == 4 * layers


def test_colour_modes_that_repaint_the_style_are_not_confused_across_photos(
    small_pair, wave, weights_home
):
    """With --colors match the network sees the style in each photo's palette: remembering the
    style's statistics must not reuse one photo's for another."""
    content, style = small_pair
    cfg = StyleConfig(size=64, iterations=3, tolerance=0, colors="match")
    engine = Stylizer(cache=weights_home)
    engine.stylize(content, style, cfg)
    assert torch.equal(
        engine.stylize(wave, style, cfg), Stylizer(cache=weights_home).stylize(wave, style, cfg)
    )


def test_results_as_pil_images_for_notebooks(small_pair, weights_home):
    content, style = small_pair
    engine = Stylizer(cache=weights_home)
    cfg = StyleConfig(size=48, iterations=2)
    image = engine.stylize(content, style, cfg, output="pil")
    assert isinstance(image, Image.Image) and image.size == (48, 48)
    assert np.array_equal(
        np.asarray(image), np.asarray(to_pil(engine.stylize(content, style, cfg)))
    )


def test_an_engine_serves_several_threads_at_once(small_pair, vgg19_random):
    """The web page's workers share one engine: runs in threads give the pixels of runs in turn."""
    from concurrent.futures import ThreadPoolExecutor

    content, style = small_pair
    engine = Stylizer(weights={"vgg19": vgg19_random}, device="cpu")
    configs = [
        StyleConfig(size=s, min_size=32, iterations=(3, 2), tolerance=0) for s in (48, 64, 80)
    ]
    alone = [engine.stylize(content, style, c) for c in configs]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(lambda c: engine.stylize(content, style, c), configs))
    assert all(torch.equal(a, b) for a, b in zip(alone, together))


def test_extra_terms_and_a_given_start_reach_the_optimiser(small_pair, vgg19_random):
    """Video's hooks: a start image replaces --init, and extra loss terms join the others."""
    content, style = small_pair
    engine = Stylizer(weights={"vgg19": vgg19_random}, device="cpu")
    cfg = StyleConfig(size=48, scales=1, iterations=1, tolerance=0)
    start = torch.rand(1, 3, 48, 48)
    seen = []
    engine.stylize(
        content,
        style,
        cfg,
        init=start,
        on_progress=lambda p: seen.append(p),
        extra=lambda x: {"pull": (x - start).square().mean()},
    )
    assert (
        "pull" in seen[0].losses and seen[0].losses["pull"] == 0.0
    )  # the run started at ``start``
