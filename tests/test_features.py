import pytest
import torch

from impasto.errors import UsageError
from impasto.features import VGGFeatures
from impasto.layers import activations_per_pixel, plan
from tests.conftest import random_weights

DEFAULT_LAYERS = ["conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]


def test_truncated_after_the_deepest_layer(vgg19_random):
    net = VGGFeatures("vgg19", ["conv2_1", "conv1_1"], weights=vgg19_random)
    assert net.plan == ["relu1_1", "relu1_2", "pool1", "relu2_1"]
    assert list(net.convs) == ["conv1_1", "conv1_2", "conv2_1"]
    assert plan(["conv5_1"], "vgg19")[-1] == "relu5_1"


def test_outputs_keyed_by_requested_names_and_aliases_agree(vgg19_random):
    net = VGGFeatures("vgg19", ["conv4_2", "relu4_2", "pool2", "conv1_1"], weights=vgg19_random)
    out = net(torch.rand(1, 3, 32, 48))
    assert set(out) == {"conv4_2", "relu4_2", "pool2", "conv1_1"}
    assert out["conv4_2"] is out["relu4_2"]
    assert out["conv1_1"].shape == (1, 64, 32, 48)
    assert out["pool2"].shape == (1, 128, 8, 12)
    assert out["conv4_2"].shape == (1, 512, 4, 6)
    assert (out["conv1_1"] >= 0).all()  # post-ReLU


def test_matches_a_plain_reference_implementation(vgg19_random):
    # conv1_1 by hand: BGR, 0-255, minus the mean pixel, conv, ReLU.
    net = VGGFeatures("vgg19", ["conv1_1"], weights=vgg19_random)
    x = torch.rand(1, 3, 8, 8)
    caffe = x.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    ref = torch.relu(
        torch.nn.functional.conv2d(
            caffe, vgg19_random["conv1_1.weight"], vgg19_random["conv1_1.bias"], padding=1
        )
    )
    assert torch.allclose(net(x)["conv1_1"], ref, atol=1e-3)


def test_deep_features_and_gradient_match_a_plain_nchw_network(vgg19_random):
    # The network runs channels-last with in-place ReLUs; neither may change what it computes:
    # conv3_1 and the input gradient of a loss on two layers, against plain NCHW layers.
    layers = ["conv2_1", "conv3_1"]
    net = VGGFeatures("vgg19", layers, weights=vgg19_random)
    x = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    out = net(x)
    assert out["conv3_1"].is_contiguous(memory_format=torch.channels_last)
    (out["conv2_1"].square().mean() + out["conv3_1"].square().mean()).backward()

    def conv(t, name):
        return torch.relu(
            torch.nn.functional.conv2d(
                t, vgg19_random[f"{name}.weight"], vgg19_random[f"{name}.bias"], padding=1
            )
        )

    y = x.detach().clone().requires_grad_(True)
    t = y.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    t = torch.nn.functional.max_pool2d(conv(conv(t, "conv1_1"), "conv1_2"), 2)
    c21 = conv(t, "conv2_1")
    c31 = conv(torch.nn.functional.max_pool2d(conv(c21, "conv2_2"), 2), "conv3_1")
    (c21.square().mean() + c31.square().mean()).backward()
    assert torch.allclose(out["conv3_1"], c31, rtol=1e-4, atol=1e-3)
    assert torch.allclose(x.grad, y.grad, rtol=1e-3, atol=1e-5 * float(y.grad.abs().max()))


def test_vgg16_uses_imagenet_normalisation():
    w = random_weights("vgg16")
    net = VGGFeatures("vgg16", ["conv1_1"], weights=w)
    x = torch.rand(1, 3, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    ref = torch.relu(
        torch.nn.functional.conv2d(
            (x - mean) / std, w["conv1_1.weight"], w["conv1_1.bias"], padding=1
        )
    )
    assert torch.allclose(net(x)["conv1_1"], ref, atol=1e-4)


def test_avg_pooling(vgg19_random):
    x = torch.rand(1, 3, 16, 16)
    mx = VGGFeatures("vgg19", ["pool1"], weights=vgg19_random)(x)["pool1"]
    av = VGGFeatures("vgg19", ["pool1"], pooling="avg", weights=vgg19_random)(x)["pool1"]
    assert mx.shape == av.shape and (mx >= av - 1e-5).all() and not torch.allclose(mx, av)
    with pytest.raises(UsageError):
        VGGFeatures("vgg19", ["pool1"], pooling="median", weights=vgg19_random)


def test_frozen_and_gradient_flows_only_to_the_input(vgg19_random):
    net = VGGFeatures("vgg19", ["conv3_1"], weights=vgg19_random)
    assert not net.training
    assert all(not p.requires_grad for p in net.parameters())
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    net(x)["conv3_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def _saved_bytes(net: VGGFeatures, x: torch.Tensor, *, recompute: bool) -> int:
    """Bytes of the distinct activations (not weights) the forward pass keeps for the backward."""
    kept: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 4 and t.shape[0] == 1 and t.shape[-1] > 1:
            kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x, recompute=recompute)
    return sum(kept.values())


def test_recompute_gives_the_same_features_and_gradient_and_keeps_less(vgg19_random):
    net = VGGFeatures("vgg19", DEFAULT_LAYERS, weights=vgg19_random)
    x = torch.rand(1, 3, 64, 48)

    def grad_and_features(recompute: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        xi = x.clone().requires_grad_(True)
        out = net(xi, recompute=recompute)
        loss = sum((f * torch.linspace(-1, 1, f.numel()).view_as(f)).sum() for f in out.values())
        loss.backward()
        return xi.grad, {k: v.detach() for k, v in out.items()}

    g_plain, f_plain = grad_and_features(False)
    g_re, f_re = grad_and_features(True)
    assert torch.equal(g_plain, g_re)
    assert all(torch.equal(f_plain[k], f_re[k]) for k in f_plain)

    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    plain = _saved_bytes(net, x, recompute=False)
    recomputed = _saved_bytes(net, x, recompute=True)
    # Not kept: the insides of the two recomputed segments, relu1_2, pool1, relu2_2 and pool2
    # (the pools with their int64 indices); the memory estimate counts exactly what is kept.
    c = 4 * 64 * 64
    assert plain - recomputed == 64 * c + 3 * 64 * c / 4 + 128 * c / 4 + 3 * 128 * c / 16
    assert recomputed < 0.6 * plain
    assert activations_per_pixel(DEFAULT_LAYERS, "vgg19") * c == plain
    assert activations_per_pixel(DEFAULT_LAYERS, "vgg19", recompute=True) * c == recomputed


def test_recompute_is_off_without_gradients(vgg19_random):
    net = VGGFeatures("vgg19", DEFAULT_LAYERS, weights=vgg19_random)
    with torch.no_grad():
        out = net(torch.rand(1, 3, 32, 32), recompute=True)
    assert out["conv5_1"].shape == (1, 512, 2, 2)


def test_tap_sees_each_asked_for_name_as_its_layer_is_reached(vgg19_random):
    net = VGGFeatures("vgg19", ["conv3_1", "relu1_1", "conv1_1", "conv2_1"], weights=vgg19_random)
    seen = []
    out = net(torch.rand(1, 3, 16, 16), tap=lambda name, f: seen.append((name, f)))
    assert [n for n, _ in seen] == ["relu1_1", "conv1_1", "conv2_1", "conv3_1"]
    assert all(f is out[n] for n, f in seen)


@pytest.mark.parametrize("dtype", [torch.bfloat16])
def test_reduced_precision_runs_the_convolutions_and_taps_in_float32(vgg19_random, dtype):
    net = VGGFeatures("vgg19", ["conv2_1"], weights=vgg19_random)
    seen = []
    out = net(
        torch.rand(1, 3, 16, 16),
        tap=lambda name, f: seen.append(torch.is_autocast_enabled("cpu")),
        dtype=dtype,
    )
    assert out["conv2_1"].dtype == dtype and seen == [False]


def test_the_receptive_radius_bounds_how_far_a_pixel_reaches(vgg19_random):
    """A pixel's change reaches the deepest layer exactly as far as receptive_radius says."""
    from impasto.layers import receptive_radius

    layers = ["conv3_1"]
    net = VGGFeatures("vgg19", layers, weights=vgg19_random, pooling="avg")
    x = torch.rand(1, 3, 96, 96, dtype=torch.float64)
    net = net.double().to(memory_format=torch.contiguous_format)
    y = x.clone()
    y[..., 48, 48] += 1.0
    with torch.no_grad():
        diff = (net(y)["conv3_1"] - net(x)["conv3_1"]).abs().amax(dim=(0, 1))
    rows = torch.nonzero(diff.amax(dim=1) > 0).flatten()
    stride = 4  # two pools before conv3_1
    reach = max(48 - int(rows.min()) * stride, int(rows.max()) * stride - 48)
    radius = receptive_radius(layers, "vgg19")
    assert radius - stride < reach <= radius
