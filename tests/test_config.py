import math
from dataclasses import FrozenInstanceError, fields

import pytest

from impasto.config import PRESETS, StyleConfig, literal_choices, parse_value
from impasto.errors import UsageError


def test_defaults_are_the_papers_layers():
    c = StyleConfig()
    assert c.network == "vgg19" and c.content_layers == ("conv4_2",)
    assert c.style_layers == ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    assert c.normalized_style_layer_weights == pytest.approx((0.2,) * 5)


def test_frozen():
    with pytest.raises(FrozenInstanceError):
        StyleConfig().size = 3


def test_layer_weights_are_normalised():
    c = StyleConfig(style_layers="conv1_1,conv2_1", style_layer_weights=[1, 3])
    assert c.style_layers == ("conv1_1", "conv2_1")
    assert c.normalized_style_layer_weights == pytest.approx((0.25, 0.75))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"style_weight": -1.0}, "--style-weight must be a finite number >= 0"),
        (
            {"content_weight": math.nan},
            "--content-weight must be a finite number >= 0 and at most 1e+06, not nan",
        ),
        ({"tv_weight": math.inf}, "--tv-weight"),
        ({"lr": 0.0}, "--lr must be a finite number > 0"),
        ({"lr": 1e308}, "--lr must be a finite number > 0 and at most 255"),
        ({"size": 0}, "--size must be a whole number from 1 to 16,384 px, not 0"),
        ({"size": 100_000}, "--size must be a whole number from 1 to 16,384 px, not 100000"),
        (
            {"iterations": 0},
            "--iterations must be a whole number from 1 to 100,000 steps per scale",
        ),
        ({"iterations": 1_000_000_000}, "--iterations must be a whole number from 1 to 100,000"),
        ({"iterations": (100, -1)}, "--iterations must be a whole number from 1"),
        ({"iterations": (10, 20, 30)}, "--iterations has 3 values for 2 scales"),
        ({"size": 2048, "iterations": (10, 20, 30)}, "--iterations has 3 values for 4 scales"),
        ({"scales": 0}, "--scales must be a whole number from 1 to 12"),
        ({"min_size": 0}, "--min-size must be a whole number from 1"),
        ({"size": 64, "min_size": 60, "scales": 8}, "the scales would repeat sizes"),
        ({"style_scale": 1000}, "--style-scale must be a finite number > 0 and at most 8"),
        ({"seed": 2**70}, "--seed must be a whole number from 0 to 9,223,372,036,854,775,807"),
        ({"seed": -1}, "--seed must be a whole number from 0"),
        ({"seed": 1.5}, "--seed must be a whole number"),
        ({"tolerance": 2.0}, "--tolerance must be a finite number >= 0 and at most 1"),
        ({"style_layers": ("conv1_1", "conv9_9")}, "unknown layer 'conv9_9'"),
        ({"content_layers": ("conv4_3x",)}, "did you mean 'conv4_3'"),
        ({"style_layer_weights": (1.0, 2.0)}, "has 2 values but --style-layers has 5"),
        (
            {"style_layer_weights": (1.0, -2.0, 1, 1, 1)},
            "--style-layer-weights must be a finite number >= 0",
        ),
        ({"style_blend": (0, 0)}, "--style-blend must not be all 0"),
        ({"style_blend": "a,b"}, "--style-blend expects a number, not 'a'"),
        ({"network": "vgg17"}, "--network must be one of vgg19, vgg16, not 'vgg17'"),
        ({"optimizer": "sgd"}, "--optimizer must be one of lbfgs, adam"),
        ({"network": "vgg16", "style_layers": ("conv3_4",)}, "unknown layer 'conv3_4' for vgg16"),
    ],
)
def test_bad_values_raise_usage_errors(kwargs, message):
    with pytest.raises(
        UsageError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")
    ):
        StyleConfig(**kwargs)


def test_the_largest_values_allowed_are_accepted():
    c = StyleConfig(seed=2**63 - 1, lr=255, style_scale=8, iterations=(100_000, 1), scales=2)
    assert c.seed == 2**63 - 1 and c.schedule()[0][1] == 100_000


@pytest.mark.parametrize(
    "name, text, value",
    [
        ("size", "768", 768),
        ("style_weight", "2.5", 2.5),
        ("style_blend", "0.7, 0.3", (0.7, 0.3)),
        ("style_blend", "equal", None),
        ("iterations", "60,40", (60, 40)),
        ("iterations", "auto", None),
        ("style_layers", "conv1_1,conv2_1", ("conv1_1", "conv2_1")),
        ("colors", "luminance", "luminance"),
        ("init", "noise", "noise"),
    ],
)
def test_one_parser_reads_every_field_from_text(name, text, value):
    assert parse_value(name, text) == value


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("size", "big", "--size expects a whole number, not 'big'"),
        ("size", "1.5", "--size expects a whole number"),
        ("style_weight", "nan", "--style-weight expects a finite number"),
        ("style_scale", ",", "--style-scale expects a comma-separated list"),
        ("sise", "5", "unknown option 'sise' \\(did you mean 'size'\\?\\)"),
    ],
)
def test_the_parser_names_the_option_and_what_it_expected(name, text, message):
    with pytest.raises(UsageError, match=message):
        parse_value(name, text)


def test_config_takes_text_lists_and_single_numbers_like_the_command_line():
    a = StyleConfig(
        style_layers="conv1_1,conv2_1", style_blend=[1, 3], iterations=7, style_scale=0.5
    )
    assert a.style_layers == ("conv1_1", "conv2_1") and a.style_blend == (1.0, 3.0)
    assert a.iterations == (7,) and a.style_scale == (0.5,)


def test_literal_choices_come_from_annotations():
    assert literal_choices("optimizer") == ("lbfgs", "adam")
    assert literal_choices("size") == ()


def test_presets_override_and_are_overridden():
    t = StyleConfig.from_preset("tutorial")
    assert (t.network, t.optimizer, t.init, t.iterations, t.tv_weight, t.lr) == (
        "vgg16",
        "adam",
        "noise",
        (1000,),
        0.0,
        30.0,
    )
    assert t.schedule() == ((512, 1000),)  # the tutorial's plain run: one scale
    tv = StyleConfig.from_preset("tutorial-tv")
    assert tv.iterations == (500,) and tv.tv_weight > 0
    assert StyleConfig.from_preset("tutorial", iterations=5).iterations == (5,)
    with pytest.raises(UsageError, match="did you mean 'tutorial'"):
        StyleConfig.from_preset("tutorail")


def test_two_iteration_counts_mean_the_smallest_scale_then_each_larger():
    assert (
        StyleConfig(size=2048, iterations=(60, 40)).schedule() == StyleConfig(size=2048).schedule()
    )
    assert StyleConfig(size=2048, iterations=(7, 3)).schedule() == (
        (256, 7),
        (512, 3),
        (1024, 3),
        (2048, 3),
    )
    assert StyleConfig(size=512, iterations=(7, 3)).schedule() == ((256, 7), (512, 3))


def test_painterly_preset_weighs_style_more_and_works_longer_at_every_size():
    default = StyleConfig()
    for size in (512, 1024, 2048):
        p = StyleConfig.from_preset("painterly", size=size)
        assert p.style_weight > default.style_weight
        assert p.total_steps > StyleConfig(size=size).total_steps
    assert StyleConfig.from_preset("painterly", style_weight=10).style_weight == 10


def test_every_preset_key_is_a_field():
    names = {f.name for f in fields(StyleConfig)}
    for preset in PRESETS.values():
        assert set(preset) <= names


# ----------------------------------------------------------------------------------------------
# Coarse to fine


@pytest.mark.parametrize(
    "kwargs, schedule",
    [
        ({}, ((256, 60), (512, 40))),
        ({"size": 500}, ((256, 60), (500, 40))),
        ({"size": 2048}, ((256, 60), (512, 40), (1024, 40), (2048, 40))),
        ({"size": 700}, ((256, 60), (423, 40), (700, 40))),  # factors of at most 2.5
        ({"size": 617}, ((256, 60), (617, 40))),
        ({"size": 1600}, ((256, 60), (640, 40), (1600, 40))),
        ({"size": 256}, ((256, 200),)),  # at --min-size: one scale, the single-scale count
        ({"size": 96}, ((96, 200),)),
        ({"scales": 1}, ((512, 200),)),
        ({"size": 1024, "scales": 3, "min_size": 128}, ((128, 60), (362, 40), (1024, 40))),
        ({"iterations": 30}, ((256, 30), (512, 30))),
        ({"iterations": (10, 20)}, ((256, 10), (512, 20))),
        ({"scales": 1, "iterations": 7}, ((512, 7),)),
    ],
)
def test_schedule_grows_from_min_size_to_size(kwargs, schedule):
    c = StyleConfig(**kwargs)
    assert c.schedule() == schedule
    assert c.total_steps == sum(n for _, n in schedule)


def test_stored_settings_from_before_scales_rerun_single_scale():
    old = {"size": 512, "iterations": 200, "no_longer_an_option": 1}
    assert StyleConfig(**StyleConfig.stored(old)).schedule() == ((512, 200),)
    new = StyleConfig(size=512).to_dict()
    assert StyleConfig(**StyleConfig.stored(new)) == StyleConfig(size=512)


def test_settings_stored_before_the_style_distance_and_coarse_style_rerun_as_they_ran():
    old = StyleConfig().to_dict()
    del old["style_distance"], old["coarse_style"]
    cfg = StyleConfig(**StyleConfig.stored(old))
    assert cfg.style_distance == "squared" and cfg.coarse_style == 1.0
    now = StyleConfig(**StyleConfig.stored(StyleConfig().to_dict()))
    assert now.style_distance == "norm" and now.coarse_style == 0.3


def test_painterly_keeps_the_default_balance_and_weighs_style_more():
    cfg, default = StyleConfig.from_preset("painterly"), StyleConfig()
    assert (cfg.style_distance, cfg.coarse_style, cfg.tv_weight) == (
        default.style_distance,
        default.coarse_style,
        default.tv_weight,
    )
    assert cfg.style_weight == 2 * default.style_weight and cfg.schedule() == (
        (256, 60),
        (512, 120),
    )
    assert StyleConfig.from_preset("tutorial").style_distance == "squared"
