import pytest
import torch

from impasto.errors import UsageError
from impasto.features import (
    VGGFeatures,
    activations_per_pixel,
    canonical,
    layer_names,
    min_input_size,
    plan,
    recomputed_segments,
)
from tests.conftest import random_weights


def test_layer_names_follow_the_paper():
    names = layer_names("vgg19")
    assert names[:5] == ["relu1_1", "relu1_2", "pool1", "relu2_1", "relu2_2"]
    assert names[-1] == "pool5" and "relu3_4" in names and len(names) == 16 + 5
    assert "relu3_4" not in layer_names("vgg16") and len(layer_names("vgg16")) == 13 + 5


def test_conv_names_mean_the_activation_after_relu():
    assert canonical("conv4_2", "vgg19") == "relu4_2"
    assert canonical("relu4_2", "vgg19") == "relu4_2"
    assert canonical("pool3", "vgg16") == "pool3"


def test_unknown_layer_suggests_the_closest():
    with pytest.raises(UsageError, match=r"unknown layer 'conv4_22'.*did you mean 'conv4_2'"):
        canonical("conv4_22", "vgg19")
    with pytest.raises(UsageError, match="conv3_4"):
        canonical("conv3_4", "vgg16")  # VGG-16 has three convs in block 3


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
    ref = torch.relu(torch.nn.functional.conv2d(caffe, vgg19_random["conv1_1.weight"], vgg19_random["conv1_1.bias"], padding=1))
    assert torch.allclose(net(x)["conv1_1"], ref, atol=1e-3)


def test_deep_features_and_gradient_match_a_plain_nchw_network(vgg19_random):
    # The network runs channels-last with in-place ReLUs; neither may change what it computes:
    # conv3_1 and the input gradient of a loss on two layers, against plain NCHW layers.
    layers = ["conv2_1", "conv3_1"]
    net = VGGFeatures("vgg19", layers, weights=vgg19_random)
    x = torch.rand(1, 3, 24, 24, requires_grad=True)
    out = net(x)
    assert out["conv3_1"].is_contiguous(memory_format=torch.channels_last)
    (out["conv2_1"].square().mean() + out["conv3_1"].square().mean()).backward()

    def conv(t, name):
        return torch.relu(torch.nn.functional.conv2d(t, vgg19_random[f"{name}.weight"], vgg19_random[f"{name}.bias"], padding=1))

    y = x.detach().clone().requires_grad_(True)
    t = y.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    t = torch.nn.functional.max_pool2d(conv(conv(t, "conv1_1"), "conv1_2"), 2)
    c21 = conv(t, "conv2_1")
    c31 = conv(torch.nn.functional.max_pool2d(conv(c21, "conv2_2"), 2), "conv3_1")
    (c21.square().mean() + c31.square().mean()).backward()
    assert torch.allclose(out["conv3_1"], c31, rtol=1e-4, atol=1e-3)
    assert torch.allclose(x.grad, y.grad, rtol=1e-3, atol=1e-6 * float(y.grad.abs().max()))


def test_vgg16_uses_imagenet_normalisation():
    w = random_weights("vgg16")
    net = VGGFeatures("vgg16", ["conv1_1"], weights=w)
    x = torch.rand(1, 3, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    ref = torch.relu(torch.nn.functional.conv2d((x - mean) / std, w["conv1_1.weight"], w["conv1_1.bias"], padding=1))
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


def test_min_input_size():
    assert min_input_size(["conv5_1"], "vgg19") == 16
    assert min_input_size(["conv1_1", "conv4_2"], "vgg19") == 8
    assert min_input_size(["pool5"], "vgg16") == 32


DEFAULT_LAYERS = ["conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]


def _saved_bytes(net: VGGFeatures, x: torch.Tensor) -> int:
    """Bytes of the distinct activations (not weights) the forward pass keeps for the backward."""
    kept: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 4 and t.shape[0] == 1 and t.shape[-1] > 1:
            kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x)
    return sum(kept.values())


def test_recomputed_segments_are_the_first_blocks_between_wanted_layers():
    assert recomputed_segments(DEFAULT_LAYERS, "vgg19") == [
        ["relu1_2", "pool1", "relu2_1"],
        ["relu2_2", "pool2", "relu3_1"],
    ]


def test_recompute_gives_the_same_features_and_gradient_and_keeps_less(vgg19_random):
    net = VGGFeatures("vgg19", DEFAULT_LAYERS, weights=vgg19_random)
    x = torch.rand(1, 3, 64, 48)

    def grad_and_features(recompute: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        net.recompute = recompute
        xi = x.clone().requires_grad_(True)
        out = net(xi)
        loss = sum((f * torch.linspace(-1, 1, f.numel()).view_as(f)).sum() for f in out.values())
        loss.backward()
        return xi.grad, {k: v.detach() for k, v in out.items()}

    g_plain, f_plain = grad_and_features(False)
    g_re, f_re = grad_and_features(True)
    assert torch.equal(g_plain, g_re)
    assert all(torch.equal(f_plain[k], f_re[k]) for k in f_plain)

    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    net.recompute = False
    plain = _saved_bytes(net, x)
    net.recompute = True
    recomputed = _saved_bytes(net, x)
    # Not kept: the insides of the two recomputed segments, relu1_2, pool1, relu2_2 and pool2
    # (the pools with their int64 indices); the memory estimate counts exactly what is kept.
    c = 4 * 64 * 64
    assert plain - recomputed == 64 * c + 3 * 64 * c / 4 + 128 * c / 4 + 3 * 128 * c / 16
    assert recomputed < 0.6 * plain
    assert activations_per_pixel(DEFAULT_LAYERS, "vgg19") * c == plain
    assert activations_per_pixel(DEFAULT_LAYERS, "vgg19", recompute=True) * c == recomputed


def test_recompute_is_off_without_gradients(vgg19_random):
    net = VGGFeatures("vgg19", DEFAULT_LAYERS, weights=vgg19_random)
    net.recompute = True
    with torch.no_grad():
        out = net(torch.rand(1, 3, 32, 32))
    assert out["conv5_1"].shape == (1, 512, 2, 2)


def test_tap_sees_each_asked_for_name_as_its_layer_is_reached(vgg19_random):
    net = VGGFeatures("vgg19", ["conv3_1", "relu1_1", "conv1_1", "conv2_1"], weights=vgg19_random)
    seen = []
    out = net(torch.rand(1, 3, 16, 16), tap=lambda name, f: seen.append((name, f)))
    assert [n for n, _ in seen] == ["relu1_1", "conv1_1", "conv2_1", "conv3_1"]
    assert all(f is out[n] for n, f in seen)
