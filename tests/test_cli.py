"""The command line: options agree with StyleConfig, and every bad input gets one clear line,
the right exit code, no traceback, and no output file written or overwritten."""

import importlib
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from impasto.cli import build_parser, config_from_args, main
from impasto.config import StyleConfig, literal_choices, opt_name

stylize_module = importlib.import_module("impasto.stylize")  # the module; impasto.stylize is the function


def _stylize_parser():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["stylize"]


def test_cli_options_agree_with_the_dataclass():
    parser = _stylize_parser()
    options = {a.dest: a for a in parser._actions}
    for f in fields(StyleConfig):
        action = options[f.name]
        assert action.option_strings == [f"--{opt_name(f.name)}"]
        assert f.metadata["help"] in action.help
        if literal_choices(f.name):
            assert tuple(action.choices) == literal_choices(f.name)
    # With no options the CLI builds exactly the dataclass defaults.
    args = build_parser().parse_args(["stylize", "c.jpg", "s.jpg", "-o", "o.png"])
    assert config_from_args(args) == StyleConfig()


def test_cli_values_reach_the_config():
    args = build_parser().parse_args(
        ["stylize", "c.jpg", "s.jpg", "-o", "o.png", "--network", "vgg16", "--optimizer", "adam", "--lr", "10",
         "--iterations", "800", "--init", "noise", "--content-weight", "1", "--style-weight", "1e4",
         "--tv-weight", "1e-3", "--content-layers", "conv4_2", "--style-layers", "conv1_1,conv2_1,conv3_1,conv4_1,conv5_1",
         "--style-layer-weights", "1,1,1,1,1", "--size", "512", "--seed", "0", "--save-every", "50"]
    )  # fmt: skip
    c = config_from_args(args)
    assert (c.network, c.optimizer, c.lr, c.iterations, c.init, c.style_weight, c.tv_weight) == (
        "vgg16", "adam", 10.0, 800, "noise", 1e4, 1e-3,
    )
    assert c.style_layer_weights == (1.0,) * 5 and args.save_every == 50


def test_options_override_a_preset():
    args = build_parser().parse_args(["stylize", "c", "s", "-o", "o.png", "--preset", "tutorial", "--iterations", "7"])
    c = config_from_args(args)
    assert c.iterations == 7 and c.network == "vgg16" and c.optimizer == "adam"


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and "impasto 0.1.0" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["stylize", "--help"])
    assert e.value.code == 0 and "--style-weight" in capsys.readouterr().out


def test_layers_command(capsys):
    assert main(["layers", "--network", "vgg16"]) == 0
    out = capsys.readouterr().out
    assert "relu4_2  (= conv4_2)" in out and "pool5" in out and "relu5_4" not in out


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    content = tmp_path / "content.png"
    style = tmp_path / "style.png"
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(content)
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(style)
    return content, style


def _run_bad(capsys, argv, code, *messages):
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith(("impasto: error:", "usage:", "impasto stylize: error:")), err
    for m in messages:
        assert m in err, err
    return err


@pytest.fixture
def no_weights(monkeypatch):
    """Bad-input paths must fail before any weights load."""

    def refuse(*a, **k):
        raise AssertionError("weights were loaded for a run that should have been refused")

    monkeypatch.setattr(stylize_module, "VGGFeatures", refuse)


@pytest.mark.parametrize(
    "make, what",
    [
        (lambda d: d / "nope.jpg", "does not exist"),
        (lambda d: (d / "notes.jpg").write_text("not an image") and d / "notes.jpg", "could not be read as an image"),
        (lambda d: d, "folder"),
    ],
    ids=["missing", "not-an-image", "a-folder"],
)
@pytest.mark.parametrize("which", ["content", "style"])
def test_bad_image_files(capsys, tmp_path, images, no_weights, make, what, which):
    bad = make(tmp_path)
    content, style = images
    argv = ["stylize", bad if which == "content" else content, bad if which == "style" else style, "-o", tmp_path / "out.png"]
    _run_bad(capsys, argv, 2, f"{which} image", what)
    assert not (tmp_path / "out.png").exists()


def test_image_too_small_names_the_minimum(capsys, tmp_path, images, no_weights):
    content, style = images
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (12, 12), "red").save(tiny)
    _run_bad(capsys, ["stylize", tiny, style, "-o", tmp_path / "o.png"], 2, "12x12 px", "conv5_1 needs at least 16x16")
    _run_bad(capsys, ["stylize", content, style, "-o", tmp_path / "o.png", "--size", "10"], 2, "--size 10", "16x16")
    assert not (tmp_path / "o.png").exists()


def test_absurd_size_says_the_memory_it_needs(capsys, tmp_path, images, no_weights):
    content, style = images
    err = _run_bad(capsys, ["stylize", content, style, "-o", tmp_path / "o.png", "--size", "16000"], 2, "--size 16000 would need about")
    assert " TB" in err or " GB" in err
    _run_bad(capsys, ["stylize", content, style, "-o", tmp_path / "o.png", "--size", "99999"], 2, "far too large")
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize(
    "extra, code, message",
    [
        (["--style-layers", "conv1_1,conv4_22"], 2, "did you mean 'conv4_2'"),
        (["--content-layers", "relu9_1"], 2, "unknown layer 'relu9_1'"),
        (["--style-weight", "-5"], 2, "--style-weight must be a finite number >= 0, not -5.0"),
        (["--content-weight", "nan"], 2, "--content-weight must be a finite number >= 0, not nan"),
        (["--tv-weight", "abc"], 2, "expected a number, found 'abc'"),
        (["--optimizer", "sgd"], 2, "invalid choice: 'sgd'"),
        (["--style-layer-weights", "1,2"], 2, "has 2 values but --style-layers has 5"),
        (["--init", "nowhere.png"], 2, "--init must be 'content', 'noise', 'style' or the path of an image"),
        (["--save-every", "-1"], 2, "--save-every must be 0"),
        (["--preset", "tutorail"], 2, "invalid choice: 'tutorail'"),
    ],
)
def test_bad_options(capsys, tmp_path, images, extra, code, message, monkeypatch):
    monkeypatch.setattr(stylize_module, "VGGFeatures", lambda *a, **k: pytest.fail("weights loaded"))
    content, style = images
    out = tmp_path / "out.png"
    if extra[0] in ("--optimizer", "--tv-weight", "--preset"):
        with pytest.raises(SystemExit) as e:
            main(["stylize", str(content), str(style), "-o", str(out), *extra])
        assert e.value.code == code and message in capsys.readouterr().err
    else:
        _run_bad(capsys, ["stylize", content, style, "-o", out, *extra], code, message)
    assert not out.exists()


@pytest.mark.parametrize(
    "output, message",
    [
        ("missing/out.png", "does not exist"),
        ("out.gif", "'.gif'"),
        ("out.xyz", "'.xyz'"),
        ("out", "extension"),
    ],
)
def test_bad_output_paths(capsys, tmp_path, images, no_weights, output, message):
    content, style = images
    _run_bad(capsys, ["stylize", content, style, "-o", tmp_path / output], 2, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png", "style.png"]


def test_unwritable_output_folder(capsys, tmp_path, images, no_weights, monkeypatch):
    content, style = images
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = __import__("os").access
    monkeypatch.setattr("os.access", lambda p, mode, **k: False if Path(p) == locked else real_access(p, mode, **k))
    _run_bad(capsys, ["stylize", content, style, "-o", locked / "out.png"], 2, "not writable")
    assert list(locked.iterdir()) == []


def test_existing_output_is_not_touched_by_a_failed_run(capsys, tmp_path, images, no_weights):
    content, style = images
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    _run_bad(capsys, ["stylize", tmp_path / "nope.png", style, "-o", out], 2, "does not exist")
    assert out.read_bytes() == b"precious"


def test_weights_verify_names_the_fix(capsys, tmp_path):
    assert main(["weights", "verify", "vgg16", "--cache-dir", str(tmp_path)]) == 1
    assert "impasto weights fetch vgg16" in capsys.readouterr().out
    assert main(["weights", "fetch", "vgg91", "--cache-dir", str(tmp_path)]) == 2
    assert "did you mean 'vgg19'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Real runs (real weights, tiny images)


@pytest.mark.weights
def test_stylize_writes_the_output_and_snapshots(capsys, tmp_path, images, weights_home):
    content, style = images
    out = tmp_path / "out.jpg"
    rc = main(["stylize", str(content), str(style), "-o", str(out), "--size", "32", "--iterations", "6",
               "--save-every", "3", "--cache-dir", str(weights_home)])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    assert Image.open(out).size == (32, 27)
    assert (tmp_path / "out_0003.jpg").exists() and (tmp_path / "out_0006.jpg").exists()
    assert "wrote" in capsys.readouterr().err


@pytest.mark.weights
def test_quiet_prints_nothing(capsys, tmp_path, images, weights_home):
    content, style = images
    rc = main(["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "32",
               "--iterations", "2", "-q", "--cache-dir", str(weights_home)])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0 and captured.err == "" and captured.out == ""


@pytest.mark.weights
def test_ctrl_c_keeps_the_last_image_and_says_where(capsys, tmp_path, images, weights_home, monkeypatch):
    real = stylize_module.optimize

    def interrupted_after_3(*args, on_progress=None, **kwargs):
        def progress(p):
            on_progress(p)
            if p.step == 3:
                raise KeyboardInterrupt
        return real(*args, on_progress=progress, **kwargs)

    monkeypatch.setattr(stylize_module, "optimize", interrupted_after_3)
    content, style = images
    out = tmp_path / "out.png"
    rc = main(["stylize", str(content), str(style), "-o", str(out), "--size", "32", "--iterations", "50",
               "--cache-dir", str(weights_home)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 130 and "Traceback" not in err
    assert "interrupted at step 3" in err and "out_0003.png" in err
    assert (tmp_path / "out_0003.png").exists() and not out.exists()


def test_readme_options_table_agrees_with_the_dataclass():
    from tests.conftest import ROOT

    from impasto.cli import _format_default

    readme = (ROOT / "README.md").read_text()
    rows = dict(
        (line.split("|")[1].strip(" `"), line.split("|")[2].strip(" `"))
        for line in readme.splitlines()
        if line.startswith("| `--")
    )
    expected = {f"--{opt_name(f.name)}": _format_default(f.default) for f in fields(StyleConfig)}
    assert rows == expected
