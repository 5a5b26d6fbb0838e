import pytest
import torch

from impasto.losses import (
    ContentLoss,
    StyleLoss,
    StyleTarget,
    TVLoss,
    content_loss,
    gram_distance,
    gram_matrix,
    relative_scale,
    style_loss,
    tv_loss,
)
from impasto.statistics import get_statistic


def gram_style_loss(features, layer_weights, *, relative=True, squared=True):
    """One style everywhere: a StyleLoss with targets from one image's features."""
    if len(layer_weights) != len(features):
        raise ValueError(f"{len(features)} style layers but {len(layer_weights)} weights")
    gram = get_statistic("gram")
    with torch.no_grad():
        stats = {name: gram.of(f) for name, f in features.items()}
    return StyleLoss(
        [StyleTarget(stats)],
        dict(zip(features, layer_weights)),
        statistic=gram,
        relative=relative,
        squared=squared,
    )


def test_gram_matrix_hand_computed():
    # Two channels over a 1x2 image: F = [[1, 2], [3, 4]]; F F^T = [[5, 11], [11, 25]]; C*H*W = 4.
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)
    expected = torch.tensor([[5.0, 11.0], [11.0, 25.0]]) / 4
    assert torch.allclose(gram_matrix(f)[0], expected)


def test_gram_matrix_is_size_normalised():
    # Tiling an image 2x2 leaves per-pixel statistics, and hence the normalised Gram, unchanged.
    f = torch.rand(1, 3, 4, 5)
    assert torch.allclose(gram_matrix(f), gram_matrix(f.repeat(1, 1, 2, 2)), atol=1e-6)


def test_gram_matrix_of_bf16_is_float32():
    f = torch.rand(1, 4, 3, 3).bfloat16()
    assert gram_matrix(f).dtype == torch.float32


def test_content_loss_hand_computed():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 2, 2)
    b = torch.tensor([1.0, 0.0, 3.0, 8.0]).reshape(1, 1, 2, 2)
    assert content_loss(a, b).item() == pytest.approx((0 + 4 + 0 + 16) / 4)


def test_style_loss_hand_computed():
    g = torch.tensor([[[1.0, 2.0], [2.0, 5.0]]])
    t = torch.tensor([[[0.0, 2.0], [2.0, 3.0]]])
    assert style_loss(g, t).item() == pytest.approx((1 + 0 + 0 + 4) / 4)


def test_tv_loss_hand_computed():
    img = torch.tensor([[0.0, 1.0], [3.0, 5.0]]).reshape(1, 1, 2, 2)
    # horizontal diffs: 1, 2 -> l1 mean 1.5, l2 mean 2.5; vertical: 3, 4 -> 3.5 and 12.5
    assert tv_loss(img, "l1").item() == pytest.approx(1.5 + 3.5)
    assert tv_loss(img, "l2").item() == pytest.approx(2.5 + 12.5)
    assert tv_loss(torch.full((1, 3, 5, 5), 0.3)).item() == 0.0
    with pytest.raises(ValueError):
        tv_loss(img, "l3")


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: gram_matrix(x).double().sum(),
        lambda x: content_loss(x, torch.ones_like(x)),
        lambda x: style_loss(gram_matrix(x).double(), torch.eye(3, dtype=torch.float64)[None]),
        lambda x: tv_loss(x, "l2"),
        lambda x: tv_loss(x + torch.arange(x.numel(), dtype=x.dtype).reshape(x.shape), "l1"),
    ],
    ids=["gram", "content", "style", "tv-l2", "tv-l1"],
)
def test_gradcheck(fn):
    x = torch.rand(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-5)


def test_gradcheck_through_float64_gram():
    # gram_matrix computes in float32 at the least; float64 input stays float64.
    x = torch.rand(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert gram_matrix(x).dtype == torch.float64
    assert torch.autograd.gradcheck(lambda x: gram_matrix(x).sum(), (x,))


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_gram_distance_equals_the_autograd_loss_and_its_gradient(layout):
    # The hand-written backward must give what autograd gives for the plain formula, whatever
    # the feature map's layout (the network hands over channels-last maps).
    torch.manual_seed(0)
    x = torch.rand(1, 5, 4, 6, dtype=torch.float64)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    target = gram_matrix(torch.rand(1, 5, 7, 3, dtype=torch.float64))[0]
    fast = gram_distance(x, target)
    (grad_fast,) = torch.autograd.grad(fast, x)
    plain = style_loss(gram_matrix(x)[0], target)
    (grad_plain,) = torch.autograd.grad(plain, x)
    assert torch.allclose(fast, plain, rtol=1e-12)
    assert torch.allclose(grad_fast, grad_plain, rtol=1e-10, atol=1e-18)
    assert grad_fast.abs().sum() > 0
    assert torch.autograd.gradcheck(lambda f: gram_distance(f, target), (x,))


def test_gram_distance_checks_shapes():
    with pytest.raises(ValueError, match="C, C"):
        gram_distance(torch.rand(1, 4, 3, 3), torch.eye(3))


def test_modules_equal_functions():
    feats = {"a": torch.rand(1, 4, 6, 6), "b": torch.rand(1, 8, 3, 3)}
    gen = {k: torch.rand_like(v) for k, v in feats.items()}
    content = ContentLoss({"a": feats["a"]}, relative=False)
    assert torch.allclose(content(gen), content_loss(gen["a"], feats["a"]))
    style = gram_style_loss(feats, [0.25, 0.75], relative=False)
    expected = 0.25 * style_loss(
        gram_matrix(gen["a"]), gram_matrix(feats["a"])
    ) + 0.75 * style_loss(gram_matrix(gen["b"]), gram_matrix(feats["b"]))
    assert torch.allclose(style(gen), expected)
    img = torch.rand(1, 3, 7, 5)
    assert torch.allclose(TVLoss("l2")(img), tv_loss(img, "l2"))
    # Layer by layer (as a run takes them, while the network goes forward): the same total.
    assert torch.allclose(
        style.layer_term("a", gen["a"]) + style.layer_term("b", gen["b"]), expected
    )
    assert torch.allclose(content.layer_term("a", gen["a"]), content(gen))
    assert (
        content.layer_term("b", gen["b"]) == 0
        and gram_style_loss({"a": feats["a"]}, [1.0]).layer_term("b", gen["b"]) == 0
    )


def test_relative_losses_are_scale_free():
    # Relative errors do not change when a network's activations are 100x larger.
    feats = {"a": torch.rand(1, 4, 6, 6), "b": torch.rand(1, 8, 3, 3)}
    gen = {k: torch.rand_like(v) for k, v in feats.items()}
    big = {k: 100 * v for k, v in feats.items()}
    big_gen = {k: 100 * v for k, v in gen.items()}
    s1 = gram_style_loss(feats, [0.5, 0.5])(gen)
    s2 = gram_style_loss(big, [0.5, 0.5])(big_gen)
    assert torch.allclose(s1, s2, rtol=1e-4)
    c1 = ContentLoss({"a": feats["a"]})(gen)
    c2 = ContentLoss({"a": big["a"]})(big_gen)
    assert torch.allclose(c1, c2, rtol=1e-4)
    assert relative_scale(torch.full((2, 2), 2.0)).item() == pytest.approx(0.25)


def test_losses_are_zero_at_the_target():
    feats = {"a": torch.rand(1, 4, 6, 6)}
    assert gram_style_loss(feats, [1.0])(feats).item() == 0.0
    assert ContentLoss(feats)(feats).item() == 0.0


def test_style_loss_needs_one_weight_per_layer():
    with pytest.raises(ValueError):
        gram_style_loss({"a": torch.rand(1, 2, 2, 2)}, [0.5, 0.5])


def test_style_loss_as_a_norm_is_the_root_of_each_layers_squared_distance():
    torch.manual_seed(0)
    feats = {"a": torch.randn(1, 4, 6, 6), "b": torch.randn(1, 8, 3, 3)}
    targets = {k: torch.randn_like(v) for k, v in feats.items()}
    squared = gram_style_loss(targets, [0.25, 0.75])
    norm = gram_style_loss(targets, [0.25, 0.75])
    norm.squared = False
    for name in feats:
        root = float((squared.layer_term(name, feats[name]) / squared.layer_weights[name]).sqrt())
        assert float(norm.layer_term(name, feats[name])) == pytest.approx(
            root * norm.layer_weights[name], rel=1e-5
        )
    # At an exact match: zero, with a zero (not infinite or NaN) gradient.
    x = targets["a"].clone().requires_grad_(True)
    value = norm.layer_term("a", x)
    value.backward()
    assert float(value.detach()) == pytest.approx(0.0, abs=1e-6) and torch.isfinite(x.grad).all()
