"""``impasto video`` and ``impasto score --video`` end to end, on a synthetic clip with known
motion, with a random network (the method, not the painting, is under test): counts, rates and
audio kept, the flicker far below independent frames', a killed run resumed to the same frames,
and every bad input refused in one line with nothing written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
import torch

import impasto.engine
from impasto.cli import main
from impasto.image import load_image, read_metadata
from tests.conftest import EXAMPLES, ROOT
from tests.video_helpers import pan, write_clip

STYLE = EXAMPLES / "starry_night.jpg"
# Small and quick: 64 px frames, a few steps (the first frame single-scale at this size).
TINY = ["--size", "64", "--iterations", "6", "--later-iterations", "4", "-q"]


@pytest.fixture
def random_network(monkeypatch, vgg19_random):
    monkeypatch.setattr(impasto.engine, "load_weights", lambda network, cache=None: vgg19_random)


@pytest.fixture
def no_weights(monkeypatch):
    """Bad input must be refused before any weights load."""

    def refuse(*a, **k):
        raise AssertionError("weights were loaded for a run that should have been refused")

    monkeypatch.setattr(impasto.engine, "load_weights", refuse)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """12 frames, 96 x 64, 12 fps, a 440 Hz tone."""
    return write_clip(tmp_path_factory.mktemp("clip") / "pan.mp4", pan(12), fps=12, audio="aac")


def _video(path: Path) -> tuple[int, object, tuple[int, int], str | None]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        n = sum(1 for _ in c.decode(v))
        audio = c.streams.audio[0].codec_context.name if c.streams.audio else None
        return n, v.average_rate, (v.codec_context.width, v.codec_context.height), audio


def _bad(capsys, argv: list[str], *messages: str) -> str:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("impasto: error:"), err
    for m in messages:
        assert m in err, err
    return err


def test_video_keeps_frames_rate_and_audio(capsys, tmp_path, clip, random_network):
    out = tmp_path / "out.mp4"
    assert main(["video", str(clip), str(STYLE), "-o", str(out), *TINY]) == 0
    n, rate, size, audio = _video(out)
    assert (n, rate, size, audio) == (12, 12, (64, 42), "aac")  # 64 x 42.7, made even
    assert not (tmp_path / "out.mp4.frames").exists()  # cleared once the video is written
    with av.open(str(out)) as c:
        record = json.loads(c.metadata["comment"])
    assert record["made_by"] == "impasto video" and record["content"] == str(clip)
    assert record["video"]["later_iterations"] == 4


def test_frames_and_every_for_a_quick_look(capsys, tmp_path, clip, random_network):
    out = tmp_path / "part.mkv"
    argv = ["video", clip, STYLE, "-o", out, "--frames", "2:10", "--every", "3", *TINY]
    assert main([str(a) for a in argv]) == 0
    n, rate, _, audio = _video(out)
    assert (n, rate, audio) == (3, 4, "aac")  # frames 2, 5, 8 at 12/3 fps: the same duration


def test_image_sequences_in_and_out(capsys, tmp_path, clip, random_network):
    out = tmp_path / "painted" / "%03d.png"
    out.parent.mkdir()
    assert main(["video", str(clip), str(STYLE), "-o", str(out), "--frames", ":4", *TINY]) == 0
    files = sorted(out.parent.iterdir())
    assert [f.name for f in files] == ["001.png", "002.png", "003.png", "004.png"]
    assert read_metadata(files[1])["content"] == f"{clip} frame 1"
    assert load_image(files[0]).shape == (1, 3, 43, 64)  # no 4:2:0 video: the size as asked
    again = tmp_path / "again.mp4"
    argv = ["video", str(out), str(STYLE), "-o", str(again), "--fps", "5", *TINY]
    assert main(argv) == 0
    assert _video(again)[:2] == (4, 5)


def test_audio_that_cannot_be_copied_warns_and_keeps_the_video(capsys, tmp_path, random_network):
    source = write_clip(tmp_path / "pcm.mkv", pan(3), audio="pcm_s16le")
    out = tmp_path / "out.webm"
    assert main(["video", str(source), str(STYLE), "-o", str(out), *TINY]) == 0
    err = capsys.readouterr().err
    assert "warning: the audio (pcm_s16le) was left out" in err
    assert _video(out)[0] == 3 and _video(out)[3] is None


def test_score_video_measures_flicker(capsys, tmp_path, clip):
    """The input scores its own floor; the same clip with noise that changes every frame
    flickers, and scores far worse."""
    frames = [load_image(p) for p in _decoded(clip, tmp_path)]
    g = torch.Generator().manual_seed(0)
    noisy = [(f + 0.08 * torch.randn(f.shape, generator=g)).clamp(0, 1) for f in frames]
    flicker = write_clip(tmp_path / "flicker.mp4", noisy)
    argv = ["score", "--video", clip, "--content", clip, "--style", STYLE, "--temporal-only"]
    assert main([str(a) for a in argv + ["--json"]]) == 0
    same = json.loads(capsys.readouterr().out)
    assert abs(same["temporal"] - same["input_temporal"]) < 1e-9
    argv[2] = flicker
    assert main([str(a) for a in argv + ["--json"]]) == 0
    noisy_score = json.loads(capsys.readouterr().out)
    assert noisy_score["temporal"] > 3 * same["temporal"]
    assert len(noisy_score["per_frame"]["temporal"]) == 11
    assert main([str(a) for a in argv]) == 0
    assert capsys.readouterr().out.startswith("temporal error")


def _decoded(clip: Path, tmp_path: Path) -> list[Path]:
    from impasto.image import save_image
    from impasto.video.clip import Clip

    return [save_image(f, tmp_path / f"in{i}.png") for i, f in enumerate(Clip(clip).frames())]


def test_score_video_needs_the_same_frames(capsys, tmp_path, clip):
    short = write_clip(tmp_path / "short.mp4", pan(5))
    argv = ["score", "--video", short, "--content", clip, "--style", STYLE, "--temporal-only"]
    _bad(capsys, argv, "has 5 frames", "chosen frames", "12", "--frames")
    argv += ["--frames", "0:5"]
    assert main([str(a) for a in argv]) == 0


@pytest.mark.parametrize(
    "argv, messages",
    [
        (["NOTES", STYLE, "-o", "OUT/out.mp4"], ["could not be read as a video"]),
        (["CLIP", STYLE, "-o", "OUT/out.gif"], ["impasto video writes", "not .gif"]),
        (["CLIP", STYLE, "-o", "OUT/missing/out.mp4"], ["cannot write"]),
        (["CLIP", STYLE, "-o", "OUT/out.mp4", "--size", "8"], ["needs at least 16x16"]),
        (["CLIP", STYLE, "-o", "OUT/out.mp4", "--size", "16000"], ["would need about", "GB"]),
        (["CLIP", STYLE, "-o", "OUT/out.mp4", "--frames", "20:"], ["has 12 frames"]),
        (["CLIP", STYLE, "-o", "OUT/out.mp4", "--frames", "5:2"], ["--frames 5:2 is empty"]),
        (["CLIP", STYLE, "-o", "OUT/out.mp4", "--every", "0"], ["--every must be"]),
        (["CLIP", STYLE, "-o", "OUT/out.mp4", "--temporal-weight", "-1"], ["--temporal-weight"]),
        (["CLIP", STYLE, "-o", "OUT/out.mp4", "--temporal-frames", "1,99"], ["from 1 to 16"]),
        (["CLIP", "NOTES", "-o", "OUT/out.mp4"], ["style image", "could not be read"]),
        (["CLIP", STYLE, "-o", "CLIP"], ["an input of this run"]),
        (["CLIP", "-o", "OUT/out.mp4"], ["give a clip and at least one style"]),
        (["-o", "OUT/out.mp4", "--resume"], ["nothing to resume"]),
    ],
    ids=[
        "not-a-video",
        "no-container",
        "no-folder",
        "too-small",
        "too-large",
        "range-past-end",
        "empty-range",
        "every-0",
        "negative-weight",
        "look-back-too-far",
        "bad-style",
        "overwrite-input",
        "no-style",
        "nothing-to-resume",
    ],
)
def test_bad_input_is_refused_before_anything(capsys, tmp_path, clip, no_weights, argv, messages):
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    (tmp_path / "OUT").mkdir()
    names = {"NOTES": str(notes), "CLIP": str(clip), "OUT": str(tmp_path / "OUT")}
    argv = ["video"] + [names.get(str(a), str(a).replace("OUT", names["OUT"])) for a in argv]
    _bad(capsys, argv, *messages)
    assert list((tmp_path / "OUT").iterdir()) == []  # nothing written, not even the frames folder


@pytest.mark.parametrize("module", ["av", "cv2"])
def test_without_the_extra_the_message_says_how_to_install_it(
    capsys, tmp_path, clip, no_weights, monkeypatch, module
):
    monkeypatch.setitem(sys.modules, module, None)  # import fails, as when it is not installed
    out = tmp_path / "out.mp4"
    if module == "av":  # without PyAV even the output's encoder cannot be looked up
        _bad(
            capsys, ["video", clip, STYLE, "-o", out], "needs PyAV", 'pip install "impasto[video]"'
        )
    else:
        _bad(capsys, ["video", clip, STYLE, "-o", out], "needs OpenCV", "impasto[video]")
    assert not out.exists() and not (tmp_path / "out.mp4.frames").exists()


LAUNCH = """
import sys
import impasto.engine
from tests.conftest import random_weights

weights = random_weights("vgg19")
impasto.engine.load_weights = lambda network, cache=None: weights
from impasto.cli import main

sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_run_resumes_to_the_same_frames(capsys, tmp_path, random_network):
    """A real process, killed with SIGKILL (no chance to clean up) after a few frames;
    --resume finishes it, and its frames and video equal an uninterrupted run's."""
    clip = write_clip(tmp_path / "pan.mp4", pan(10), fps=12)
    common = [str(clip), str(STYLE), *TINY, "--keep-frames"]
    killed, whole = tmp_path / "killed.mp4", tmp_path / "whole.mp4"
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    proc = subprocess.Popen(
        [sys.executable, str(launcher), "video", *common, "-o", str(killed)], env=env, cwd=ROOT
    )
    frames = tmp_path / "killed.mp4.frames"
    deadline = time.monotonic() + 120
    while not (frames / "000003.png").exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "no frame was painted in two minutes"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(frames.glob("*.png")))
    assert not killed.exists() and 3 <= done < 10, "the run ended before it could be killed"

    again = ["video", *common, "-o", str(killed)]
    _bad(capsys, again, "holds", "interrupted run", "--resume")  # not thrown away unasked
    _bad(capsys, [*again, "--later-iterations", "5", "--resume"], "--later-iterations differ")
    assert main(["video", "-o", str(killed), "--resume", "-q", "--keep-frames"]) == 0
    assert main(["video", *common, "-o", str(whole)]) == 0
    for i in range(10):
        a = load_image(frames / f"{i + 1:06d}.png")
        b = load_image(tmp_path / "whole.mp4.frames" / f"{i + 1:06d}.png")
        assert torch.equal(a, b), f"frame {i} differs"
    assert killed.read_bytes() == whole.read_bytes() or _video(killed) == _video(whole)
