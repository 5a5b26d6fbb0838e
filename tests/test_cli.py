"""The command line: options agree with StyleConfig, and every bad input gets one clear line,
the right exit code, no traceback, and no output file written or overwritten."""

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import impasto.engine
from impasto.cli import build_parser, main
from impasto.cli.options import config_from_args, format_default
from impasto.config import StyleConfig, literal_choices, opt_name


def _stylize_parser():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["stylize"]


def test_cli_options_agree_with_the_dataclass():
    parser = _stylize_parser()
    options = {
        a.dest: a
        for a in parser._actions
        if a.option_strings not in (["--single-scale"], ["--preset"])
    }
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
        [
            "stylize",
            "c.jpg",
            "s.jpg",
            "-o",
            "o.png",
            "--network",
            "vgg16",
            "--optimizer",
            "adam",
            "--lr",
            "10",
            "--iterations",
            "800",
            "--init",
            "noise",
            "--content-weight",
            "1",
            "--style-weight",
            "1e4",
            "--tv-weight",
            "1e-3",
            "--content-layers",
            "conv4_2",
            "--style-layers",
            "conv1_1,conv2_1,conv3_1,conv4_1,conv5_1",
            "--style-layer-weights",
            "1,1,1,1,1",
            "--size",
            "512",
            "--seed",
            "0",
            "--save-every",
            "50",
        ]
    )
    c = config_from_args(args)
    assert (c.network, c.optimizer, c.lr, c.iterations, c.init, c.style_weight, c.tv_weight) == (
        "vgg16",
        "adam",
        10.0,
        (800,),
        "noise",
        1e4,
        1e-3,
    )
    assert c.style_layer_weights == (1.0,) * 5 and args.save_every == 50


def test_scale_options_reach_the_config():
    parse = build_parser().parse_args
    c = config_from_args(
        parse(
            [
                "stylize",
                "c",
                "s",
                "-o",
                "o.png",
                "--size",
                "1024",
                "--min-size",
                "128",
                "--scales",
                "3",
                "--iterations",
                "60,30,10",
            ]
        )
    )
    assert c.schedule() == ((128, 60), (362, 30), (1024, 10))
    single = config_from_args(parse(["stylize", "c", "s", "-o", "o.png", "--single-scale"]))
    assert single.scales == 1 and single.schedule() == ((512, 200),)
    with pytest.raises(SystemExit):
        parse(["stylize", "c", "s", "-o", "o.png", "--iterations", "60,x"])


def test_options_override_a_preset():
    args = build_parser().parse_args(
        ["stylize", "c", "s", "-o", "o.png", "--preset", "tutorial", "--iterations", "7"]
    )
    c = config_from_args(args)
    assert c.iterations == (7,) and c.network == "vgg16" and c.optimizer == "adam"


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

    monkeypatch.setattr(impasto.engine, "load_weights", refuse)


@pytest.mark.parametrize(
    "make, what",
    [
        (lambda d: d / "nope.jpg", "does not exist"),
        (
            lambda d: (d / "notes.jpg").write_text("not an image") and d / "notes.jpg",
            "could not be read as an image",
        ),
        (lambda d: d, "folder"),
    ],
    ids=["missing", "not-an-image", "a-folder"],
)
@pytest.mark.parametrize("which", ["content", "style"])
def test_bad_image_files(capsys, tmp_path, images, no_weights, make, what, which):
    bad = make(tmp_path)
    content, style = images
    argv = [
        "stylize",
        bad if which == "content" else content,
        bad if which == "style" else style,
        "-o",
        tmp_path / "out.png",
    ]
    _run_bad(capsys, argv, 2, f"{which} image", what)
    assert not (tmp_path / "out.png").exists()


def test_image_too_small_names_the_minimum(capsys, tmp_path, images, no_weights):
    content, style = images
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (12, 12), "red").save(tiny)
    _run_bad(
        capsys,
        ["stylize", tiny, style, "-o", tmp_path / "o.png"],
        2,
        "12x12 px",
        "conv5_1 needs at least 16x16",
    )
    _run_bad(
        capsys,
        ["stylize", content, style, "-o", tmp_path / "o.png", "--size", "10"],
        2,
        "--size 10",
        "16x16",
    )
    assert not (tmp_path / "o.png").exists()


def test_absurd_size_says_the_memory_it_needs(capsys, tmp_path, images, no_weights):
    content, style = images
    err = _run_bad(
        capsys,
        ["stylize", content, style, "-o", tmp_path / "o.png", "--size", "16000"],
        2,
        "--size 16000 would need about",
    )
    assert " TB" in err or " GB" in err
    _run_bad(
        capsys,
        ["stylize", content, style, "-o", tmp_path / "o.png", "--size", "99999"],
        2,
        "--size must be a whole number from 1 to 16,384 px",
    )
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize(
    "extra, code, message",
    [
        (["--style-layers", "conv1_1,conv4_22"], 2, "did you mean 'conv4_2'"),
        (["--content-layers", "relu9_1"], 2, "unknown layer 'relu9_1'"),
        (
            ["--style-weight", "-5"],
            2,
            "--style-weight must be a finite number >= 0 and at most 1e+06, not -5.0",
        ),
        (
            ["--content-weight", "nan"],
            2,
            "argument --content-weight: expects a finite number, not 'nan'",
        ),
        (["--tv-weight", "abc"], 2, "argument --tv-weight: expects a number, not 'abc'"),
        (["--seed", "1180591620717411303424"], 2, "--seed must be a whole number from 0 to"),
        (
            ["--iterations", "1000000000"],
            2,
            "--iterations must be a whole number from 1 to 100,000",
        ),
        (["--style-scale", "1000"], 2, "--style-scale must be a finite number > 0 and at most 8"),
        (["--optimizer", "sgd"], 2, "invalid choice: 'sgd'"),
        (["--style-layer-weights", "1,2"], 2, "has 2 values but --style-layers has 5"),
        (
            ["--init", "nowhere.png"],
            2,
            "--init must be 'content', 'noise', 'style' or the path of an image",
        ),
        (["--save-every", "-1"], 2, "--save-every must be 0"),
        (["--preset", "tutorail"], 2, "invalid choice: 'tutorail'"),
    ],
)
def test_bad_options(capsys, tmp_path, images, extra, code, message, monkeypatch):
    monkeypatch.setattr(
        impasto.engine, "load_weights", lambda *a, **k: pytest.fail("weights loaded")
    )
    content, style = images
    out = tmp_path / "out.png"
    if extra[0] in ("--optimizer", "--tv-weight", "--content-weight", "--preset"):
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
    monkeypatch.setattr(
        "os.access", lambda p, mode, **k: False if Path(p) == locked else real_access(p, mode, **k)
    )
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
    rc = main(
        [
            "stylize",
            str(content),
            str(style),
            "-o",
            str(out),
            "--size",
            "32",
            "--iterations",
            "6",
            "--save-every",
            "3",
            "--cache-dir",
            str(weights_home),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert Image.open(out).size == (32, 27)
    assert (tmp_path / "out_0003.jpg").exists() and (tmp_path / "out_0006.jpg").exists()
    assert "wrote" in capsys.readouterr().err


@pytest.mark.weights
def test_quiet_prints_nothing(capsys, tmp_path, images, weights_home):
    content, style = images
    rc = main(
        [
            "stylize",
            str(content),
            str(style),
            "-o",
            str(tmp_path / "o.png"),
            "--size",
            "32",
            "--iterations",
            "2",
            "-q",
            "--cache-dir",
            str(weights_home),
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0 and captured.err == "" and captured.out == ""


@pytest.mark.weights
def test_ctrl_c_keeps_the_last_image_and_says_where(
    capsys, tmp_path, images, weights_home, monkeypatch
):
    real = impasto.engine.optimize

    def interrupted_after_3(*args, on_progress=None, **kwargs):
        def progress(p):
            on_progress(p)
            if p.step == 3:
                raise KeyboardInterrupt

        return real(*args, on_progress=progress, **kwargs)

    monkeypatch.setattr(impasto.engine, "optimize", interrupted_after_3)
    content, style = images
    out = tmp_path / "out.png"
    rc = main(
        [
            "stylize",
            str(content),
            str(style),
            "-o",
            str(out),
            "--size",
            "32",
            "--iterations",
            "50",
            "--cache-dir",
            str(weights_home),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 130 and "Traceback" not in err
    assert "interrupted at step 3" in err and "out_0003.png" in err
    assert (tmp_path / "out_0003.png").exists() and not out.exists()
    assert f"impasto stylize --resume {out}" in err and (tmp_path / "out.png.ckpt").exists()


# ---------------------------------------------------------------------------------------------
# Several styles, masks, 16-bit output with settings inside, info, --like, --resume, report, sheet


def _tiny(weights_home, *extra):
    return [
        "--size",
        "32",
        "--iterations",
        "3",
        "-q",
        "--cache-dir",
        str(weights_home),
        *map(str, extra),
    ]


@pytest.mark.weights
def test_several_styles_blend_and_the_settings_travel_in_the_file(
    capsys, tmp_path, images, weights_home
):
    from impasto.image import read_metadata

    content, style = images
    out = tmp_path / "out.png"
    rc = main(
        [
            "stylize",
            str(content),
            str(style),
            "--style",
            str(content),
            "--style-blend",
            "3,1",
            "-o",
            str(out),
            "--bit-depth",
            "16",
            *_tiny(weights_home),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    meta = read_metadata(out)
    assert meta["styles"] == [str(style), str(content)] and meta["config"]["style_blend"] == [
        3.0,
        1.0,
    ]
    assert meta["impasto"] and meta["steps"] == 3
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert (
        "style:    " + str(style) in info
        and "(weight 0.75)" in info
        and "--style-blend 3,1" in info
    )
    assert "--like" in info


@pytest.mark.weights
def test_like_reruns_an_image_to_the_same_pixels(capsys, tmp_path, images, weights_home):
    from impasto.image import load_image

    content, style = images
    first, again, other = tmp_path / "first.png", tmp_path / "again.png", tmp_path / "other.png"
    assert (
        main(
            [
                "stylize",
                str(content),
                str(style),
                "-o",
                str(first),
                "--init",
                "noise",
                "--seed",
                "5",
                *_tiny(weights_home),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "stylize",
                "--like",
                str(first),
                "-o",
                str(again),
                "-q",
                "--cache-dir",
                str(weights_home),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "stylize",
                "--like",
                str(first),
                "-o",
                str(other),
                "--seed",
                "6",
                "-q",
                "--cache-dir",
                str(weights_home),
            ]
        )
        == 0
    )
    a, b, c = (load_image(p) for p in (first, again, other))
    assert np.array_equal(a.numpy(), b.numpy()) and not np.array_equal(a.numpy(), c.numpy())


def test_info_and_like_refuse_images_without_settings(capsys, tmp_path, images):
    content, _ = images
    _run_bad(capsys, ["info", content], 2, "holds no impasto settings")
    _run_bad(
        capsys,
        ["stylize", "--like", content, "-o", tmp_path / "o.png"],
        2,
        "holds no impasto settings",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bit-depth", "16", "-o", "{tmp}/o.jpg"], "16-bit output needs PNG and TIFF"),
        (["--resume", "{tmp}/o.png"], "no checkpoint at"),
        (
            ["--resume", "{tmp}/o.png", "--size", "64"],
            "--resume continues a run with its own images and options; drop --size",
        ),
        (
            ["--content-mask", "{style}", "-o", "{tmp}/o.png"],
            "content mask 1 is 40x40 px but the content image is 48x40 px",
        ),
        (
            ["--style-mask", "{content}", "--style-mask", "{content}", "-o", "{tmp}/o.png"],
            "2 style masks for 1 style images",
        ),
        (
            ["--style-blend", "1,2", "-o", "{tmp}/o.png"],
            "--style-blend has 2 weights for 1 style image",
        ),
    ],
)
def test_bad_creative_options(capsys, tmp_path, images, monkeypatch, argv, message):
    monkeypatch.setattr(
        impasto.engine, "load_weights", lambda *a, **k: pytest.fail("weights loaded")
    )
    content, style = images
    argv = [a.format(tmp=tmp_path, style=style, content=content) for a in argv]
    inputs = [] if "--resume" in argv else [content, style]
    _run_bad(capsys, ["stylize", *inputs, *argv], 2, message)
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "o.jpg").exists()


@pytest.mark.weights
def test_a_killed_run_resumes_to_the_pixels_of_an_uninterrupted_one(capsys, tmp_path, weights_home):
    """A real process, killed with SIGKILL (no chance to clean up) after its first checkpoints;
    --resume finishes it, and the 16-bit result equals an uninterrupted run's."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from impasto.image import load_image
    from tests.conftest import EXAMPLES

    common = [
        str(EXAMPLES / "astronaut.jpg"),
        str(EXAMPLES / "starry_night.jpg"),
        "--size",
        "64",
        "--iterations",
        "150",
        "--tolerance",
        "0",
        "--bit-depth",
        "16",
        "--cache-dir",
        str(weights_home),
        "-q",
    ]
    killed, whole = tmp_path / "killed.png", tmp_path / "whole.png"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "impasto",
            "stylize",
            *common,
            "-o",
            str(killed),
            "--checkpoint-every",
            "5",
        ],
        env=env,
    )
    ckpt = tmp_path / "killed.png.ckpt"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # a few more steps, so the kill lands between checkpoints
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists() and not killed.exists(), "the run ended before it could be killed"
    assert main(["stylize", "--resume", str(killed), "-q", "--cache-dir", str(weights_home)]) == 0
    assert not ckpt.exists()
    assert main(["stylize", *common, "-o", str(whole), "--checkpoint-every", "0"]) == 0
    a, b = load_image(killed), load_image(whole)
    assert float((a - b).abs().max()) <= 2 / 65535


@pytest.mark.weights
def test_report_and_sheet_write_their_pictures(capsys, tmp_path, images, weights_home):
    content, style = images
    report = tmp_path / "report.png"
    assert (
        main(
            [
                "stylize",
                str(content),
                str(style),
                "-o",
                str(tmp_path / "o.png"),
                "--report",
                str(report),
                *_tiny(weights_home),
            ]
        )
        == 0
    )
    assert Image.open(report).size[0] >= 1000
    sheet = tmp_path / "sheet.png"
    assert (
        main(
            [
                "sheet",
                str(content),
                str(style),
                "--style",
                str(style),
                "-o",
                str(sheet),
                *_tiny(weights_home),
            ]
        )
        == 0
    )
    assert Image.open(sheet).size[0] > 100
    assert (tmp_path / "content_style.png").exists() and (tmp_path / "style_style.png").exists()


def test_readme_options_table_agrees_with_the_dataclass():
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    table = readme.split("| option | default | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = dict(
        (line.split("|")[1].strip(" `"), line.split("|")[2].strip(" `"))
        for line in table.splitlines()
        if line.startswith("| `--")
    )
    expected = {
        f"--{opt_name(f.name)}": format_default(f.default, f.metadata["none"])
        for f in fields(StyleConfig)
    }
    assert rows == expected


def test_info_help_and_version_answer_without_torch(tmp_path):
    """The commands that only read text answer at once: no torch is imported for them."""
    import subprocess
    import sys

    import torch

    from impasto.image import save_image
    from impasto.record import RunRecord

    out = tmp_path / "made.png"
    record = RunRecord("photo.jpg", ("painting.jpg",), StyleConfig(size=64))
    save_image(torch.rand(1, 3, 8, 8), out, metadata=record.to_metadata())
    for argv in (["info", str(out)], ["--version"], ["stylize", "--help"]):
        code = (
            f"import sys\nfrom impasto.cli import main\ntry:\n    main({argv!r})\n"
            "except SystemExit:\n    pass\n"
            "print('torch imported' if 'torch' in sys.modules else 'no torch', file=sys.stderr)"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert done.stderr.strip().endswith("no torch"), (argv, done.stderr)
    assert (
        "painting.jpg"
        in subprocess.run(
            [sys.executable, "-m", "impasto", "info", str(out)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


# ---------------------------------------------------------------------------------------------
# Safe by default: no photo is ever overwritten, and every input is bounded before a run


def _same_file_spellings(tmp_path, path):
    """Other names for ``path``: another spelling, a symbolic link, a hard link."""
    (tmp_path / "sub").mkdir(exist_ok=True)
    spelled = tmp_path / "sub" / ".." / path.name
    link = tmp_path / f"link-{path.name}"
    link.symlink_to(path)
    hard = tmp_path / f"hard-{path.name}"
    hard.hardlink_to(path)
    return [path, spelled, link, hard]


@pytest.mark.parametrize("which", ["content", "style", "mask", "init", "report"])
def test_an_output_that_is_an_input_is_refused_before_the_run(
    capsys, tmp_path, images, no_weights, which
):
    content, style = images
    mask = tmp_path / "mask.png"
    Image.new("L", (48, 40), 255).save(mask)
    init = tmp_path / "start.png"
    Image.new("RGB", (48, 40), "gray").save(init)
    target = {"content": content, "style": style, "mask": mask, "init": init, "report": content}
    precious = target[which].read_bytes()
    for name in _same_file_spellings(tmp_path, target[which]):
        flag = "--report" if which == "report" else "-o"
        out = ["-o", tmp_path / "out.png"] if which == "report" else []
        extra = {"mask": ["--content-mask", mask], "init": ["--init", init]}.get(which, [])
        err = _run_bad(
            capsys, ["stylize", content, style, *extra, *out, flag, name], 2, "is an input of"
        )
        assert "would overwrite the original: choose another output name" in err
        for p in (target[which], name):
            assert p.read_bytes() == precious
    assert not (tmp_path / "out.png").exists()


def test_the_report_may_not_be_the_output(capsys, tmp_path, images, no_weights):
    content, style = images
    out = tmp_path / "out.png"
    (tmp_path / "sub").mkdir()
    _run_bad(
        capsys,
        ["stylize", content, style, "-o", out, "--report", tmp_path / "sub" / ".." / "out.png"],
        2,
        "--report and -o name the same file",
    )


def test_an_output_the_folder_would_refuse_fails_before_the_run(
    capsys, tmp_path, images, no_weights, monkeypatch
):
    import tempfile

    content, style = images
    refusing = tmp_path / "refusing"
    refusing.mkdir()
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):  # noqa: A002 -- tempfile's own name
        if dir is not None and Path(dir) == refusing:
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    # os.access says yes (as it does for root, or for /proc): only creating the file tells.
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    _run_bad(
        capsys,
        ["stylize", content, style, "-o", refusing / "out.png"],
        2,
        f"cannot write '{refusing / 'out.png'}': Permission denied",
    )
    assert list(refusing.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="a /proc file system (Linux)")
def test_an_output_in_proc_fails_before_the_run(capsys, images, no_weights):
    content, style = images
    _run_bad(capsys, ["stylize", content, style, "-o", "/proc/x.png"], 2, "cannot write")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # Read as the option's value (not as an option), then refused on its merits.
        (["--style-blend", "-1,2"], "--style-blend must be a finite number >= 0"),
        (["--style-blend", "-.5,1"], "--style-blend must be a finite number >= 0"),
        (["--style-scale", "-1,2"], "--style-scale must be a finite number > 0"),
    ],
)
def test_negative_looking_values_are_read_as_values(
    capsys, tmp_path, images, no_weights, argv, message
):
    content, style = images
    err = _run_bad(capsys, ["stylize", content, style, *argv, "-o", tmp_path / "o.png"], 2)
    assert message in err and "expected one argument" not in err


def test_attach_negative_values_joins_only_values_to_their_options():
    from impasto.cli.options import attach_negative_values

    takes_value = {"--style-blend", "-o", "--size"}
    argv = ["stylize", "a.png", "--style-blend", "-1,2", "-q", "-o", "-.5.png", "--size", "-5"]
    assert attach_negative_values(argv, takes_value) == [
        "stylize",
        "a.png",
        "--style-blend=-1,2",
        "-q",
        "-o=-.5.png",
        "--size=-5",
    ]
    # A flag that takes no value leaves what follows alone.
    assert attach_negative_values(["-q", "-1"], takes_value) == ["-q", "-1"]


def test_style_images_count_in_the_memory_check(capsys, tmp_path, images, no_weights, monkeypatch):
    """--size 2048 alone fits in 16 GB; a style image at 8x that (16384 px) does not in one
    piece: its pass through the network needs its widest layer whole. (In tiles, the default,
    it fits: tests/test_budget.py.)"""
    import impasto.budget

    monkeypatch.setattr(impasto.budget, "available_memory", lambda device: 16 * 2**30)
    content, style = images
    out = tmp_path / "o.png"
    config = StyleConfig(size=2048, style_scale=8)
    assert impasto.budget.memory_needed(config, 1707, 2048) < 16 * 2**30
    _run_bad(
        capsys,
        [
            "stylize",
            content,
            style,
            "-o",
            out,
            "--size",
            "2048",
            "--style-scale",
            "8",
            "--tile",
            "0",
        ],
        2,
        "--size 2048 with --style-scale 8 would need about",
        "in one piece (--tile 0)",
        "use --tile auto or a smaller --size or --style-scale",
    )
    assert not out.exists()


def _doctored(tmp_path, name, **changes):
    """An image whose stored record was edited by hand."""
    from impasto.image import save_image

    record = {
        "impasto": "0.1",
        "content": "photo.jpg",
        "styles": ["painting.jpg"],
        "config": StyleConfig().to_dict(),
    }
    for key, value in changes.items():
        if value is None:
            record.pop(key)
        elif key == "seed":
            record["config"] = {**record["config"], "seed": value}
        else:
            record[key] = value
    path = tmp_path / name
    save_image(torch.full((1, 3, 20, 20), 0.5), path, metadata=record)
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"config": "str"}, "'config' should be an object of settings, found 'str'"),
        ({"content": None}, "'content' should be the content image's name, found None"),
        ({"styles": "s.jpg"}, "'styles' should be a list of style image names, found 's.jpg'"),
        ({"seed": 2**70}, "--seed must be a whole number from 0 to"),
    ],
    ids=["config-a-string", "no-content", "styles-a-string", "seed-2**70"],
)
def test_doctored_settings_are_one_line_in_info_and_like(
    capsys, tmp_path, no_weights, changes, message
):
    doctored = _doctored(tmp_path, "doctored.png", **changes)
    for argv in (["info", doctored], ["stylize", "--like", doctored, "-o", tmp_path / "o.png"]):
        err = _run_bad(capsys, argv, 2, "the impasto record in", message)
        assert str(doctored) in err
    assert not (tmp_path / "o.png").exists()


def test_the_largest_seed_runs_from_noise():
    from impasto.config import MAX_SEED
    from impasto.inputs import initial_image

    photo = torch.zeros(1, 3, 8, 8)
    start = initial_image(StyleConfig(init="noise", seed=MAX_SEED), photo, photo)
    again = initial_image(StyleConfig(init="noise", seed=MAX_SEED), photo, photo)
    assert torch.equal(start, again) and float(start.std()) > 0.2
