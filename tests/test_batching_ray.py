"""The Ray backend on a Ray started here (2 CPUs, a small object store): the same pixels as the
local backend, and a worker killed mid-item costs nothing but time. Ray's start takes seconds,
so the module shares one Ray and keeps to two tests."""

from __future__ import annotations

import os
import shutil
import signal
from collections import Counter
from pathlib import Path

import pytest
import ray
import torch

import impasto
import impasto.image
from impasto.config import StyleConfig

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def local_ray():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 2**20,  # room for the random weights (80 MB), sent once
        log_to_driver=False,
        logging_level="ERROR",
    )
    yield
    ray.shutdown()


@pytest.fixture
def one_thread():
    """The local runs on one thread, as each of two Ray workers on two CPUs is: the sums of a
    convolution, and so the pixels, depend on how many threads share them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut.jpg", "coffee.jpg", "dog.jpg"):
        shutil.copy(EXAMPLES / name, folder / name)
    return folder


def test_ray_workers_paint_the_pixels_of_the_local_backend(
    local_ray, one_thread, tmp_path, photos, vgg19_random
):
    weights = {"vgg19": vgg19_random}
    style = EXAMPLES / "starry_night.jpg"
    config = StyleConfig(size=64, scales=1, iterations=4, init="noise", seed=7)
    local = {r.item.name: r.image for r in impasto.batch(photos, style, config, weights=weights)}
    out = tmp_path / "out"
    remote = list(
        impasto.batch(photos, style, config, output=out, backend="ray", workers=2, weights=weights)
    )
    assert sorted(r.item.name for r in remote) == sorted(local)
    for result in remote:
        assert result.ok and torch.equal(result.image, local[result.item.name])
        assert not result.worker.endswith(f":{os.getpid()}")  # painted in a worker process
        assert (out / result.item.name).exists()  # and written here, by the driver
    # The seed travels with the job: another seed gives other pixels.
    other = next(
        iter(impasto.batch(photos / "dog.jpg", style, config.replace(seed=8), weights=weights))
    )
    assert not torch.equal(other.image, local["dog__starry_night.png"])


def test_a_worker_killed_mid_item_loses_and_repeats_nothing(
    local_ray, tmp_path, photos, vgg19_random, monkeypatch
):
    writes = Counter()
    save = impasto.image.save_image

    def counted(image, path, **kwargs):
        writes[Path(path).name] += 1
        return save(image, path, **kwargs)

    monkeypatch.setattr(impasto.image, "save_image", counted)
    killed: list[tuple[str, int]] = []

    def kill_the_first_worker_seen_at_work(p):
        if not killed and p.step >= 2:
            pid = int(p.worker.rsplit(":", 1)[1])
            os.kill(pid, signal.SIGKILL)
            killed.append((p.item.name, pid))

    styles = [EXAMPLES / "starry_night.jpg", EXAMPLES / "scream.jpg"]
    config = StyleConfig(size=64, scales=1, iterations=10)  # long enough to be caught at work
    out = tmp_path / "out"
    results = list(
        impasto.batch(
            [photos / "astronaut.jpg", photos / "coffee.jpg"],
            styles,
            config,
            output=out,
            backend="ray",
            workers=1,  # so the item killed can only be finished by the worker Ray restarts
            weights={"vgg19": vgg19_random},
            on_progress=kill_the_first_worker_seen_at_work,
        )
    )
    assert killed, "no worker was seen at work"
    names = [r.item.name for r in results]
    assert len(names) == 4 and len(set(names)) == 4 and all(r.ok for r in results)
    assert writes == {name: 1 for name in names}  # every output written exactly once
    victim, pid = killed[0]
    [redone] = [r for r in results if r.item.name == victim]
    assert redone.steps == 10 and not redone.worker.endswith(f":{pid}")  # a new process
    manifest = (out / "manifest.jsonl").read_text().splitlines()
    assert len(manifest) == 4 and all('"state": "done"' in line for line in manifest)
