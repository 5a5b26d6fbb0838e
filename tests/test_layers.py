import subprocess
import sys

import pytest

from impasto.errors import UsageError
from impasto.layers import (
    activations_per_pixel,
    canonical,
    layer_names,
    min_input_size,
    plan,
    receptive_radius,
    recomputed_segments,
)

DEFAULT_LAYERS = ["conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]


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
    with pytest.raises(UsageError, match="unknown network 'vgg18'"):
        layer_names("vgg18")


def test_plan_stops_at_the_deepest_layer():
    assert plan(["conv2_1", "conv1_1"], "vgg19") == ["relu1_1", "relu1_2", "pool1", "relu2_1"]
    assert plan(["conv5_1"], "vgg19")[-1] == "relu5_1"


def test_min_input_size():
    assert min_input_size(["conv5_1"], "vgg19") == 16
    assert min_input_size(["conv1_1", "conv4_2"], "vgg19") == 8
    assert min_input_size(["pool5"], "vgg16") == 32


def test_recomputed_segments_are_the_first_blocks_between_wanted_layers():
    assert recomputed_segments(DEFAULT_LAYERS, "vgg19") == [
        ["relu1_2", "pool1", "relu2_1"],
        ["relu2_2", "pool2", "relu3_1"],
    ]


def test_activations_per_pixel_counts_what_the_backward_keeps():
    # input 3 + relu1_1 64: the first layer alone.
    assert activations_per_pixel(["conv1_1"], "vgg19") == 3 + 64
    # a max pool keeps its output and its int64 indices: three values' worth of a quarter.
    assert activations_per_pixel(["pool1"], "vgg19") == 3 + 64 + 64 + 3 * 64 / 4
    assert activations_per_pixel(["pool1"], "vgg19", pooling="avg") == 3 + 64 + 64 + 64 / 4
    assert activations_per_pixel(DEFAULT_LAYERS, "vgg19", recompute=True) < activations_per_pixel(
        DEFAULT_LAYERS, "vgg19"
    )


def test_receptive_radius_of_vgg19_to_conv5_1():
    # Left reach 70 px (the convolutions), right 85 (each 2x2 pool reaches one cell further).
    assert receptive_radius(["conv5_1"], "vgg19") == 85
    assert receptive_radius(["conv1_1"], "vgg19") == 1
    assert receptive_radius(["conv4_2", "conv1_1"], "vgg19") > receptive_radius(
        ["conv3_1"], "vgg19"
    )


def test_importing_the_layer_tables_and_the_config_loads_no_torch():
    code = (
        "import sys, impasto.layers, impasto.config, impasto.record; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
