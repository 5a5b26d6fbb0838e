"""``impasto batch`` and ``impasto.batch`` on the local backend: a folder of photos in two
styles, run again, bad items, Ctrl-C, and every bad argument refused before anything is
written. Random VGG weights, 64 px images, one thread: each item takes about a second."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import impasto
import impasto.engine
from impasto.batching.plan import sha256_of
from impasto.cli import main
from impasto.config import StyleConfig
from impasto.image import load_image
from impasto.record import read_record

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TINY = ["--size", "64", "--scales", "1", "--iterations", "4", "--cache-dir", "unused"]
CONFIG = StyleConfig(size=64, scales=1, iterations=4)


@pytest.fixture
def random_weights(monkeypatch, vgg19_random):
    """The engine loads seeded random weights, and one thread keeps the pixels the same
    whatever the machine's load (more threads sum in another order)."""
    calls = []

    def load(network, cache=None):
        calls.append(network)
        return vgg19_random

    monkeypatch.setattr(impasto.engine, "load_weights", load)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield calls
    torch.set_num_threads(threads)


@pytest.fixture
def no_weights(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("weights were loaded for a batch that should not run")

    monkeypatch.setattr(impasto.engine, "load_weights", refuse)


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut.jpg", "coffee.jpg", "dog.jpg"):
        shutil.copy(EXAMPLES / name, folder / name)
    return folder


@pytest.fixture
def styles(tmp_path) -> list[Path]:
    folder = tmp_path / "styles"
    folder.mkdir()
    return [Path(shutil.copy(EXAMPLES / n, folder / n)) for n in ("starry_night.jpg", "scream.jpg")]


def _batch(capsys, *argv):
    rc = main(["batch", *map(str, argv)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return rc, captured.err, captured.out


def _manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def test_a_folder_in_two_styles_then_only_what_is_missing(
    capsys, tmp_path, photos, styles, random_weights, monkeypatch
):
    out = tmp_path / "out"
    args = [photos, "--style", styles[0], "--style", styles[1], "-o", out, *TINY]
    rc, err, _ = _batch(capsys, *args)
    assert rc == 0, err
    assert "6 to run, 0 done already" in err and "6 written, 0 failed" in err
    names = {
        f"{p}__{s}.png" for p in ("astronaut", "coffee", "dog") for s in ("starry_night", "scream")
    }
    assert {p.name for p in out.iterdir()} == names | {"manifest.jsonl"}
    entries = _manifest(out)
    assert {e["output"] for e in entries} == names and {e["state"] for e in entries} == {"done"}
    for entry in entries:
        image = out / entry["output"]
        assert entry["content_sha256"] == sha256_of(Path(entry["content"]).read_bytes())
        assert entry["style_sha256"] == sha256_of(Path(entry["style"]).read_bytes())
        assert entry["output_sha256"] == sha256_of(image.read_bytes())
        assert entry["steps"] == 4 and entry["settings"]["config"]["size"] == 64
        record = read_record(image)
        assert record.made_by == "impasto batch" and record.config == CONFIG
        assert Path(record.content).stem in entry["output"] and record.steps == 4
        assert max(load_image(image).shape[-2:]) == 64
    assert random_weights == ["vgg19"]  # one engine: the network loaded once for six items

    # Again: nothing runs (no weights load), nothing is touched.
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    monkeypatch.setattr(impasto.engine, "load_weights", lambda *a, **k: pytest.fail("ran"))
    rc, err, _ = _batch(capsys, *args)
    assert rc == 0 and "nothing to do: all 6 items are done" in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    # ... and answers at once: a fresh process gets there without importing torch.
    argv = ["batch", *map(str, args)]
    code = (
        f"import sys; from impasto.cli import main; print(main({argv!r}), 'torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert fresh.stdout.split() == ["0", "False"], fresh.stderr

    # A photo changed: its two items run again, and only they.
    shutil.copy(EXAMPLES / "pagoda.jpg", photos / "dog.jpg")
    rc, err, dry = _batch(capsys, *args, "--dry-run")
    assert rc == 0 and "2 to run, 4 done already" in err
    assert sorted(line.split(" ")[0] for line in dry.splitlines()) == ["done"] * 4 + ["run"] * 2
    assert all("dog.jpg" in line for line in dry.splitlines() if line.startswith("run"))
    # Other settings, or --force: everything runs.
    for extra in (["--style-weight", "20"], ["--force"]):
        rc, err, _ = _batch(capsys, *args, "--dry-run", *extra)
        assert "6 to run, 0 done already" in err


def test_a_bad_photo_fails_alone_and_the_exit_code_counts_the_failures(
    capsys, tmp_path, photos, styles, random_weights
):
    (photos / "dog.jpg").unlink()
    (photos / "broken.jpg").write_text("this is not a JPEG")
    Image.new("RGB", (10, 8)).save(photos / "tiny.png")
    out = tmp_path / "out"
    args = [photos, "--style", styles[0], "-o", out, *TINY]
    rc, err, _ = _batch(capsys, *args)
    assert rc == 102, err  # 100 + two failed items
    assert "2 written, 2 failed" in err
    assert "failed: broken.jpg x starry_night.jpg: content image" in err
    assert "could not be read as an image" in err
    assert "failed: tiny.png x starry_night.jpg: content image is 10x8 px; conv5_1 needs" in err
    states = {e["output"]: e for e in _manifest(out)}
    assert states["broken__starry_night.png"]["state"] == "failed"
    assert "could not be read" in states["broken__starry_night.png"]["reason"]
    assert "needs at least" in states["tiny__starry_night.png"]["reason"]
    assert not (out / "broken__starry_night.png").exists()
    assert (out / "astronaut__starry_night.png").exists() and (
        out / "coffee__starry_night.png"
    ).exists()
    # Failed items are not done: a later run tries them again, and only them.
    rc, err, _ = _batch(capsys, *args)
    assert rc == 102 and "2 to run, 2 done already" in err


def test_ctrl_c_finishes_the_running_item_and_a_second_stops_at_once(
    capsys, tmp_path, photos, styles, random_weights, monkeypatch
):
    real = impasto.engine.optimize
    presses = {"count": 0}

    def interrupted(*args, on_progress=None, **kwargs):
        def progress(p):
            on_progress(p)
            if p.step == 2 and presses["count"]:
                n, presses["count"] = presses["count"], 0  # once per batch
                for _ in range(n):
                    os.kill(os.getpid(), signal.SIGINT)

        return real(*args, on_progress=progress, **kwargs)

    monkeypatch.setattr(impasto.engine, "optimize", interrupted)
    out = tmp_path / "out"
    args = [photos, "--style", styles[0], "-o", out, *TINY]

    presses["count"] = 1  # one Ctrl-C: the item running goes on to its end, no other starts
    rc, err, _ = _batch(capsys, *args)
    assert rc == 130 and "stopping after the running items" in err
    assert "1 written, 0 failed, 2 not run" in err and "run the same command to go on" in err
    assert [e["output"] for e in _manifest(out)] == ["astronaut__starry_night.png"]
    assert load_image(out / "astronaut__starry_night.png").shape[-1] == 64

    presses["count"] = 2  # two: the item running is dropped, nothing of it is written
    rc, err, _ = _batch(capsys, *args)
    assert rc == 130 and "0 written, 0 failed, 2 not run" in err
    assert [e["output"] for e in _manifest(out)] == ["astronaut__starry_night.png"]
    assert sorted(p.name for p in out.iterdir()) == [
        "astronaut__starry_night.png",
        "manifest.jsonl",
    ]  # no half-written file, no temporary one

    rc, err, _ = _batch(capsys, *args)
    assert rc == 0 and "2 written" in err and len(_manifest(out)) == 3


def test_a_file_the_batch_did_not_write_is_not_replaced(
    capsys, tmp_path, photos, styles, random_weights
):
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "coffee__starry_night.png"
    Image.new("RGB", (5, 5), (1, 2, 3)).save(mine)
    before = mine.read_bytes()
    args = [photos / "coffee.jpg", "--style", styles[0], "-o", out, *TINY]
    rc, err, _ = _batch(capsys, *args)
    assert rc == 101 and "exists and impasto batch did not write it" in err
    assert mine.read_bytes() == before
    rc, err, _ = _batch(capsys, *args, "--force")
    assert rc == 0 and read_record(mine).made_by == "impasto batch"


def test_pairs_csv_rows_carry_their_own_options(capsys, tmp_path, photos, styles, random_weights):
    csv = tmp_path / "pairs.csv"
    csv.write_text(
        "content,style,style_weight,output\n"
        f"photos/astronaut.jpg,{styles[0]},20,\n"
        f"photos/coffee.jpg,{styles[1]},,cup.jpg\n"
    )
    out = tmp_path / "out"
    rc, err, _ = _batch(capsys, "--pairs", csv, "-o", out, *TINY, "--style-weight", "5")
    assert rc == 0, err
    assert read_record(out / "astronaut__starry_night.png").config.style_weight == 20
    assert read_record(out / "cup.jpg").config.style_weight == 5  # the command's value


@pytest.mark.weights
def test_an_item_is_balanced_as_stylize_balances_it(capsys, tmp_path, weights_home):
    """The batch decodes photos no larger than --size, but measures the pair as stylize does
    (at 512 px): a weight measured on the 64 px pixels would differ."""
    from impasto import Stylizer
    from impasto.image import resize_long_side

    photo, style = EXAMPLES / "city_night.jpg", EXAMPLES / "seurat.jpg"
    out, tiny = tmp_path / "out", ["--size", "64", "--scales", "1", "--iterations", "2"]
    rc, err, _ = _batch(
        capsys, photo, "--style", style, "-o", out, *tiny, "--cache-dir", weights_home
    )
    assert rc == 0, err
    used = read_record(out / "city_night__seurat.png").style_weight_used
    engine, config = Stylizer(cache=weights_home), StyleConfig(size=64, scales=1, iterations=2)
    assert used == pytest.approx(engine.balanced(photo, style, config).style_weight, abs=1e-3)
    small = [resize_long_side(load_image(p), 64) for p in (photo, style)]
    assert engine.balanced(*small, config).style_weight != pytest.approx(used, abs=0.05)


def test_the_library_yields_images_as_they_complete(tmp_path, photos, styles, random_weights):
    steps = []
    job = impasto.batch(photos / "coffee.jpg", styles, CONFIG, on_progress=steps.append)
    results = list(job)
    assert [r.item.name for r in results] == ["coffee__starry_night.png", "coffee__scream.png"]
    assert all(r.ok and r.output is None and r.steps == 4 for r in results)
    assert not any(tmp_path.glob("**/*.png"))  # no output folder: nothing written
    # The bytes-decoded batch item is the very run impasto.stylize makes of the same files.
    engine = impasto.Stylizer(device="cpu")
    alone = engine.stylize(photos / "coffee.jpg", styles[1], CONFIG)
    assert torch.equal(results[1].image, alone)
    # Progress: every step of every item, from one worker (this process).
    per_item = {}
    for p in steps:
        per_item.setdefault(p.item.name, []).append(p.step)
    assert per_item == {name: [1, 2, 3, 4] for name in per_item} and len(per_item) == 2
    assert {p.worker for p in steps} == {results[0].worker}
    assert results[0].worker.endswith(f":{os.getpid()}")


def test_stop_from_the_library(tmp_path, photos, styles, random_weights):
    job = impasto.batch(photos, styles[0], CONFIG, output=tmp_path / "out")
    with job:
        first = next(iter(job))
        job.stop()
        rest = list(job)
    assert first.ok and rest == []
    assert [e["state"] for e in _manifest(tmp_path / "out")] == ["done"]


# ---------------------------------------------------------------------------------------------
# Bad arguments: one line, the right code, nothing loaded, nothing written


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["missing/"], 2, "content 'missing/' does not exist"),
        (["empty/"], 2, "content folder 'empty/' has no images"),
        (["photos/*.webp"], 2, "content pattern 'photos/*.webp' matches no file"),
        (["--pairs", "bad.csv"], 2, "bad.csv line 2: 3 columns, expected 2"),
        (["photos/", "-o", "afile"], 2, "output 'afile' is a file, not a folder"),
        (["photos/", "-o", "photos"], 2, "holds 'astronaut.jpg', an input of this batch"),
        (["photos/", "--workers", "2"], 2, "--workers is for --backend ray"),
        (["photos/", "--backend", "ray", "--workers", "0"], 2, "--workers must be a whole number"),
        (["photos/", "--size", "0"], 2, "--size must be a whole number from 1"),
        (["photos/", "--init", "photos/dog.jpg"], 2, "--init in a batch must be content"),
        (
            ["photos/", "--backend", "ray", "--address", "127.0.0.1:PORT"],
            1,
            "cannot reach a Ray cluster at 127.0.0.1:",
        ),
    ],
)
def test_bad_arguments(
    capsys, tmp_path, photos, styles, no_weights, monkeypatch, argv, code, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "bad.csv").write_text(f"photos/dog.jpg,{styles[0]}\nphotos/dog.jpg,{styles[0]},x\n")
    argv = [a.replace("PORT", str(_closed_port())) for a in argv]
    if "--pairs" not in argv:
        argv += ["--style", str(styles[0])]
    if "-o" not in argv:
        argv += ["-o", "out"]
    rc, err, _ = _batch(capsys, *TINY, *argv)
    assert rc == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("impasto: error: ") and message in lines[0]
    assert not (tmp_path / "out").exists()


def test_ray_not_installed_says_how_to_install_it(capsys, tmp_path, photos, styles, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails
    rc, err, _ = _batch(
        capsys, photos, "--style", styles[0], "-o", tmp_path / "out", "--backend", "ray"
    )
    assert rc == 2 and err.strip() == (
        'impasto: error: the Ray backend needs Ray, which is not installed: pip install "impasto[ray]"'
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.weights
def test_a_killed_batch_leaves_a_manifest_that_a_rerun_finishes(
    tmp_path, photos, styles, weights_home
):
    """A real process killed with SIGKILL after its first item (no chance to clean up): the
    manifest reads back, and the same command then runs exactly the items not recorded."""
    import time

    from impasto.batching.manifest import read_manifest

    out = tmp_path / "out"
    argv = [sys.executable, "-m", "impasto", "batch", str(photos), "--style", str(styles[0])]
    argv += ["-o", str(out), "--size", "64", "--scales", "1", "--iterations", "12"]
    argv += ["--tolerance", "0", "--cache-dir", str(weights_home), "-q"]
    src = str(Path(__file__).resolve().parent.parent / "src")
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}  # steady under load
    proc = subprocess.Popen(argv, env=env)
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if manifest.exists() and manifest.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_manifest(out)  # whole lines only, whatever the moment of the kill
    assert 1 <= len(before) < 3, "the batch was not killed mid-way"
    first = next(iter(before))
    stamp = (out / first).stat().st_mtime_ns

    rerun = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    after = read_manifest(out)
    assert len(after) == 3 and all(e["state"] == "done" for e in after.values())
    assert (out / first).stat().st_mtime_ns == stamp  # what was done was not done again
    assert sorted(p.name for p in out.glob("*.png")) == sorted(after)
