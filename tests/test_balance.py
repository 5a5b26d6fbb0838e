"""--balance auto: the style weight scaled by how far the photo starts from the painting."""

import argparse

import pytest
import torch

from impasto import StyleConfig, Stylizer
from impasto.balance import MAX_FACTOR, MEASURE_SIZE, REFERENCE, factor, photo_distance
from impasto.image import load_image, resize_long_side
from impasto.inputs import prepare_inputs
from tests.conftest import EXAMPLES

FAST = dict(size=96, min_size=48, iterations=(2, 2), tolerance=0)


@pytest.fixture(scope="module")
def photos():
    def at(name, side=96):
        return resize_long_side(load_image(EXAMPLES / name), side)

    return {
        "astronaut": at("astronaut.jpg"),
        "city": at("city_night.jpg"),
        "starry": at("starry_night.jpg"),
        "seurat": at("seurat.jpg"),
    }


# -- the rule --------------------------------------------------------------------------------


def test_the_factor_is_the_distance_over_the_reference_within_bounds():
    config = StyleConfig()
    ref = REFERENCE[("vgg19", "gram")]
    assert factor(config, ref) == pytest.approx(1.0)
    assert factor(config, 1.5 * ref) == pytest.approx(1.5)
    assert factor(config, 0.5 * ref) == pytest.approx(0.5)
    assert factor(config, 1.2345 * ref) == 1.23
    assert factor(config, 100 * ref) == MAX_FACTOR
    assert factor(config, 0.0) == pytest.approx(0.33)
    other = StyleConfig(network="vgg16", style_loss="histogram")
    assert factor(other, REFERENCE[("vgg16", "histogram")]) == pytest.approx(1.0)


def test_only_the_default_losses_are_balanced():
    assert StyleConfig().auto_balance
    assert not StyleConfig(balance="fixed").auto_balance
    # The squared distance already pulls harder from farther away; plain means have no scale.
    assert not StyleConfig(style_distance="squared").auto_balance
    assert not StyleConfig(loss_normalization="mean").auto_balance
    assert not StyleConfig.from_preset("tutorial").auto_balance


def test_a_style_weight_typed_means_that_weight():
    assert StyleConfig.typed({"style_weight": 4.0}) == {"style_weight": 4.0, "balance": "fixed"}
    both = {"style_weight": 4.0, "balance": "auto"}
    assert StyleConfig.typed(both) == both
    assert StyleConfig.typed({"size": 256}) == {"size": 256}


def test_the_command_line_the_web_form_and_a_batch_row_agree(tmp_path):
    from impasto.batching.plan import read_pairs
    from impasto.cli.options import add_config_options, config_from_args
    from impasto.web.options import make_config

    parser = argparse.ArgumentParser()
    add_config_options(parser)
    assert config_from_args(parser.parse_args([])).balance == "auto"
    typed = config_from_args(parser.parse_args(["--style-weight", "4"]))
    assert (typed.style_weight, typed.balance) == (4.0, "fixed")
    both = config_from_args(parser.parse_args(["--style-weight", "4", "--balance", "auto"]))
    assert (both.style_weight, both.balance) == (4.0, "auto")
    # --like a stored auto run, with a weight typed: the weight typed, as given.
    like = config_from_args(parser.parse_args(["--style-weight", "7"]), base=StyleConfig())
    assert like.balance == "fixed"

    assert make_config({"style_weight": "4"}).balance == "fixed"
    assert make_config({"size": "128"}).balance == "auto"

    (tmp_path / "pairs.csv").write_text(
        f"content,style,style_weight\n{EXAMPLES / 'dog.jpg'},{EXAMPLES / 'scream.jpg'},4\n"
        f"{EXAMPLES / 'dog.jpg'},{EXAMPLES / 'scream.jpg'},\n"
    )
    rows = read_pairs(tmp_path / "pairs.csv", StyleConfig())
    assert [r.config.balance for r in rows] == ["fixed", "auto"]


def test_an_auto_balance_typed_for_losses_it_never_scales_is_refused(tmp_path, capsys):
    from impasto.batching.plan import read_pairs
    from impasto.cli import main
    from impasto.errors import UsageError
    from impasto.web.options import make_config

    pair, out = [str(EXAMPLES / "dog.jpg"), str(EXAMPLES / "scream.jpg")], tmp_path / "out.png"
    for losses, named in (
        (["--preset", "tutorial"], "--style-distance squared"),
        (["--style-distance", "squared"], "--style-distance squared"),
        (["--loss-normalization", "mean"], "--loss-normalization mean"),
    ):
        assert main(["stylize", *pair, "-o", str(out), *losses, "--balance", "auto"]) == 2
        err = capsys.readouterr().err
        assert "--balance auto scales the default losses only" in err and named in err
        assert "Traceback" not in err and not out.exists()
    message = "--balance auto scales the default losses only"
    with pytest.raises(UsageError, match=message):
        make_config({"style_distance": "squared", "balance": "auto"})
    (tmp_path / "pairs.csv").write_text(f"content,style,balance\n{pair[0]},{pair[1]},auto\n")
    with pytest.raises(UsageError, match="pairs.csv line 2: " + message):
        read_pairs(tmp_path / "pairs.csv", StyleConfig(style_distance="squared"))
    # Those losses with the balance left out: the weight as given, no error.
    assert StyleConfig.from_preset("tutorial").balance == "fixed"
    assert make_config({"style_distance": "squared"}).style_weight == 10.0


def test_a_record_from_before_the_balance_reproduces_its_weight():
    stored = StyleConfig.stored({"style_weight": 10.0, "coarse_style": 0.3})
    assert StyleConfig(**stored).balance == "fixed"


# -- the measurement, on the real network --------------------------------------------------


@pytest.mark.weights
def test_the_distance_is_the_photos_own_style_loss(photos, weights_home):
    engine = Stylizer(cache=weights_home)
    config = StyleConfig(size=96)
    net = engine.network(config)

    def distance(content, style):
        inputs = prepare_inputs(config, content, style, (), (), device=engine.device)
        return photo_distance(net, config, inputs, device=engine.device)

    # The painting is at distance 0 from itself, and the photo's first step sees exactly its
    # distance times the style weight.
    assert distance(photos["starry"], photos["starry"]) < 1e-3
    d = distance(photos["astronaut"], photos["starry"])
    seen = []
    engine.stylize(
        photos["astronaut"],
        photos["starry"],
        StyleConfig(size=96, scales=1, iterations=1, balance="fixed", style_weight=1.0),
        on_progress=lambda p: seen.append(p.losses["style"]),
    )
    assert seen[0] == pytest.approx(d, rel=1e-4)


@pytest.mark.weights
def test_a_photo_far_from_the_painting_gets_a_firmer_hand(photos, weights_home):
    engine = Stylizer(cache=weights_home)
    config = StyleConfig(**FAST)
    near = engine.balanced(photos["starry"], photos["starry"], config)
    assert near.balance == "fixed"
    assert near.style_weight == pytest.approx(config.style_weight * 0.33)
    # Measured at MEASURE_SIZE from the files, whatever the run's size: a night city starts
    # farther from a sunlit Seurat than the astronaut from Van Gogh.
    far = engine.balanced(EXAMPLES / "city_night.jpg", EXAMPLES / "seurat.jpg", config)
    usual = engine.balanced(EXAMPLES / "astronaut.jpg", EXAMPLES / "starry_night.jpg", config)
    assert far.style_weight > 1.3 * usual.style_weight
    assert engine.balanced(
        EXAMPLES / "astronaut.jpg", EXAMPLES / "starry_night.jpg", config.replace(size=512)
    ) == usual.replace(size=512)
    # A fixed balance keeps the weight as given.
    fixed = config.replace(balance="fixed")
    assert engine.balanced(photos["city"], photos["seurat"], fixed) == fixed


@pytest.mark.weights
def test_an_auto_run_is_the_fixed_run_at_the_pairs_weight(photos, weights_home):
    engine = Stylizer(cache=weights_home)
    content, style = photos["city"], photos["seurat"]
    auto = StyleConfig(**FAST)
    settled = engine.balanced(content, style, auto)
    weights = []
    a = engine.stylize(content, style, auto, on_progress=lambda p: weights.append(p.style_weight))
    assert set(weights) == {settled.style_weight}
    assert torch.equal(a, engine.stylize(content, style, settled))
    assert not torch.equal(a, engine.stylize(content, style, auto.replace(balance="fixed")))


@pytest.mark.weights
def test_runs_of_every_size_measure_at_the_measure_size(photos, weights_home, monkeypatch):
    import impasto.balance

    sizes = []
    real = impasto.balance.layer_sizes

    def spy(h, w, *args):
        sizes.append(max(h, w))
        return real(h, w, *args)

    monkeypatch.setattr(impasto.balance, "layer_sizes", spy)
    engine = Stylizer(cache=weights_home)
    dog = EXAMPLES / "dog.jpg"  # 1024 px: a 96 px preview and a 600 px print measure alike
    small, large = (engine.balanced(dog, photos["starry"], StyleConfig(size=n)) for n in (96, 600))
    assert small.style_weight == large.style_weight
    # A 96 px photo: at 512 px where the run enlarges it, at its own size in a smaller run.
    engine.balanced(photos["astronaut"], photos["starry"], StyleConfig(size=600))
    engine.balanced(photos["astronaut"], photos["starry"], StyleConfig(size=64))
    assert sizes == [MEASURE_SIZE, MEASURE_SIZE, MEASURE_SIZE, 96]
    # So a wide painting is read as large as the run reads it: 512 x 43 px, not 96 x 8.
    wide = torch.nn.functional.interpolate(load_image(EXAMPLES / "seurat.jpg"), size=(100, 1200))
    assert engine.balanced(photos["astronaut"], wide, StyleConfig(size=512)).balance == "fixed"


@pytest.mark.weights
def test_the_command_line_says_the_weight_the_pair_settled_on(tmp_path, weights_home, capsys):
    from impasto.cli import main
    from impasto.record import read_record

    pair = [str(EXAMPLES / "city_night.jpg"), str(EXAMPLES / "seurat.jpg")]
    common = ["--size", "64", "--iterations", "2", "--cache-dir", str(weights_home)]
    assert main(["stylize", *pair, "-o", str(tmp_path / "auto.png"), *common]) == 0
    said = capsys.readouterr().err
    assert "balance auto: style weight" in said and "x --style-weight 10" in said
    record = read_record(tmp_path / "auto.png")
    assert record.config.balance == "auto"  # --like measures a new pair again
    # The image keeps the weight the run used, and info shows the one the run printed.
    used = Stylizer(cache=weights_home).balanced(*pair, StyleConfig(size=64)).style_weight
    assert record.style_weight_used == pytest.approx(used, abs=1e-4) and used != 10
    assert main(["info", str(tmp_path / "auto.png")]) == 0
    shown = f"style weight {used:.3g} for this pair"
    assert shown in said and shown in capsys.readouterr().out
    typed = ["--style-weight", "12", "-o", str(tmp_path / "typed.png")]
    assert main(["stylize", *pair, *typed, *common]) == 0
    assert "balance auto" not in capsys.readouterr().err
    assert read_record(tmp_path / "typed.png").config.balance == "fixed"
