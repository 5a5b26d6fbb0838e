"""The server's queue and data folder (impasto/web/jobs.py, storage.py): a full queue refuses
with 429, the quota removes the oldest finished jobs (failed and cancelled ones first), delete
removes a job's files, and a run stopped by the user or by the time limit keeps its picture.

Most tests run a stand-in for the engine (steps of a few milliseconds, no network) so that the
queue's behaviour is what is tested; one stops a real run, on real weights."""

from __future__ import annotations

import io
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from impasto.image import read_metadata
from impasto.optimize import Progress
from impasto.web.app import create_app
from impasto.web.limits import Limits
from impasto.web.storage import folder_bytes, removal_order

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOKEN = "test-key-0123456789abcdef"


class Engine:
    """stylize's signature without a network: one image per step, ``delay`` seconds a step; a
    step waits while ``paused`` is clear, so a test can hold a job running."""

    def __init__(self, delay: float = 0.005) -> None:
        self.delay = delay
        self.paused = threading.Event()
        self.paused.set()

    def __call__(self, content: Any, style: Any, config: Any, *, on_progress: Any, cache: Any):
        total, start = config.total_steps, time.perf_counter()
        image = torch.zeros(1, 3, config.size, config.size)
        for step in range(1, total + 1):
            self.paused.wait(30)
            time.sleep(self.delay)
            image = torch.full((1, 3, config.size, config.size), step / total)
            losses = {"content": 1.0 / step, "style": 2.0 / step}
            elapsed = time.perf_counter() - start
            on_progress(Progress(step, total, losses, 3.0 / step, elapsed, image))
        return image


@pytest.fixture
def engine() -> Engine:
    return Engine()


@pytest.fixture
def make_client(tmp_path: Path, engine: Engine) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(**kwargs: Any) -> TestClient:
        kwargs.setdefault("runner", engine)
        app = create_app(tmp_path / "data", token=TOKEN, **kwargs)
        client = TestClient(
            app, base_url="http://127.0.0.1:8000", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def submit(client: TestClient, steps: int = 3, expect: int = 201, **options: str) -> Any:
    photo = (EXAMPLES / "astronaut.jpg").read_bytes()
    files = [("content", ("a.jpg", photo, "image/jpeg")), ("style", ("s.jpg", photo, "image/jpeg"))]
    data = {"size": "32", "iterations": str(steps), "scales": "1", **options}
    response = client.post("/api/jobs", files=files, data=data)
    assert response.status_code == expect, response.text
    return response


def wait_for(client: TestClient, job_id: str, check: Callable[[Any], bool], timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/jobs/{job_id}")
        job = response.json() if response.status_code == 200 else None
        if check(job):
            return job
        assert time.monotonic() < deadline, f"gave up waiting; the job is {job}"
        time.sleep(0.02)


def finished(job: Any) -> bool:
    return job is not None and job["state"] in ("done", "failed", "cancelled")


def folders(tmp_path: Path) -> set[str]:
    return {p.name for p in (tmp_path / "data" / "jobs").iterdir()}


# ---- the queue ---------------------------------------------------------------------------------


def test_a_full_queue_refuses_with_429_before_reading_the_upload(
    make_client: Callable[..., TestClient], engine: Engine, tmp_path: Path
):
    client = make_client(limits=Limits(max_queue=2))
    engine.paused.clear()  # the first job holds the worker
    running = submit(client).json()
    wait_for(client, running["id"], lambda j: j["state"] == "running")
    waiting = [submit(client).json() for _ in range(2)]
    refused = submit(client, expect=429)
    assert refused.json()["detail"] == (
        "the queue is full: 2 jobs are waiting, the most this server takes (impasto serve "
        "--max-queue); try again when one has finished"
    )
    assert refused.headers["retry-after"].isdigit()
    assert len(folders(tmp_path)) == 3 and not list((tmp_path / "data" / "incoming").iterdir())
    client.post(f"{waiting[0]['url']}/cancel")  # a place frees up
    submit(client)
    engine.paused.set()
    for job in client.get("/api/jobs").json():
        wait_for(client, job["id"], finished)


# ---- delete ------------------------------------------------------------------------------------


def test_delete_removes_a_job_and_its_files_whatever_its_state(
    make_client: Callable[..., TestClient], engine: Engine, tmp_path: Path
):
    client = make_client()
    done = submit(client).json()
    wait_for(client, done["id"], lambda j: j["state"] == "done")
    assert {"result.png", "photo.jpg", "content.jpg"} <= {
        p.name for p in (tmp_path / "data" / "jobs" / done["id"]).iterdir()
    }
    assert client.delete(done["url"]).status_code == 204
    assert done["id"] not in folders(tmp_path)
    assert client.get(done["url"]).status_code == 404
    assert client.get(f"{done['url']}/result").status_code == 404

    engine.paused.clear()
    running = submit(client, steps=50).json()
    wait_for(client, running["id"], lambda j: j["state"] == "running")
    queued = submit(client).json()
    assert client.delete(queued["url"]).status_code == 204  # at once
    assert queued["id"] not in folders(tmp_path)
    answer = client.delete(running["url"])  # once it stops, within a step
    assert answer.status_code == 202 and answer.json()["cancelling"]
    engine.paused.set()
    wait_for(client, running["id"], lambda j: j is None)
    assert folders(tmp_path) == set() and client.get("/api/jobs").json() == []
    assert client.delete(running["url"]).status_code == 404


# ---- stop and keep, the time limit --------------------------------------------------------------


def test_stop_keeps_the_picture_so_far_as_the_result(
    make_client: Callable[..., TestClient], engine: Engine
):
    client = make_client()
    engine.delay = 0.02
    job = submit(client, steps=500).json()
    wait_for(client, job["id"], lambda j: j["step"] >= 3)
    answer = client.post(f"{job['url']}/stop")
    assert answer.status_code == 200 and answer.json()["keeping"]
    kept = wait_for(client, job["id"], finished)
    assert kept["state"] == "done" and kept["stopped"] == "asked"
    assert 3 <= kept["step"] < 500 and kept["error"] is None
    result = client.get(kept["result_url"])
    image = Image.open(io.BytesIO(result.content))
    assert image.size == (32, 32)
    # The picture of the last step taken (the stand-in paints step / total everywhere).
    level = image.convert("L").getpixel((5, 5)) / 255
    assert abs(level - kept["step"] / 500) < 2 / 255
    assert client.get(kept["photo_url"]).status_code == 200


def test_cancel_after_stop_throws_the_picture_away(
    make_client: Callable[..., TestClient], engine: Engine
):
    client = make_client()
    engine.paused.clear()
    job = submit(client, steps=50).json()
    wait_for(client, job["id"], lambda j: j["state"] == "running")
    client.post(f"{job['url']}/stop")
    client.post(f"{job['url']}/cancel")
    engine.paused.set()
    assert wait_for(client, job["id"], finished)["state"] == "cancelled"


def test_a_job_over_the_time_limit_stops_and_keeps_its_picture(
    make_client: Callable[..., TestClient], engine: Engine
):
    client = make_client(limits=Limits(max_seconds=0.5))
    engine.delay = 0.02
    job = submit(client, steps=1000).json()
    ended = wait_for(client, job["id"], finished)
    assert ended["state"] == "done" and ended["stopped"] == "time limit"
    assert 1 <= ended["step"] < 1000 and ended["elapsed"] < 10
    assert client.get(ended["result_url"]).status_code == 200
    # A job within the limit ends as usual.
    quick = wait_for(client, submit(client, steps=3).json()["id"], finished)
    assert quick["state"] == "done" and quick["stopped"] is None and quick["step"] == 3


@pytest.mark.weights
def test_stop_keeps_a_real_runs_picture(tmp_path: Path, weights_home: Path):
    app = create_app(tmp_path / "data", token=TOKEN, cache=weights_home)
    with TestClient(
        app, base_url="http://127.0.0.1:8000", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        job = submit(client, steps=1000, size="64", tolerance="0").json()
        wait_for(client, job["id"], lambda j: j["step"] >= 3, timeout=120)
        client.post(f"{job['url']}/stop")
        kept = wait_for(client, job["id"], finished, timeout=60)
        assert (kept["state"], kept["stopped"]) == ("done", "asked")
        result = client.get(kept["result_url"]).content
        assert Image.open(io.BytesIO(result)).size == (64, 64)
        record = read_metadata(tmp_path / "data" / "jobs" / job["id"] / "result.png")
        assert record["steps"] == kept["step"] < 1000
        # The weight the balance chose (the photo is its own painting: little to travel) is
        # shown and kept in the picture.
        assert kept["style_weight_used"] < 10
        assert record["style_weight_used"] == pytest.approx(kept["style_weight_used"], abs=1e-3)


# ---- the data folder's quota -------------------------------------------------------------------


@dataclass
class Stored:
    state: str
    created: float
    folder: Path = Path()


def test_the_quota_removes_failed_and_cancelled_jobs_first_then_the_oldest():
    jobs = [
        Stored("done", 1.0),
        Stored("running", 0.5),
        Stored("cancelled", 3.0),
        Stored("done", 2.0),
        Stored("failed", 4.0),
        Stored("queued", 0.1),
    ]
    order = [(j.state, j.created) for j in removal_order(jobs)]
    assert order == [("cancelled", 3.0), ("failed", 4.0), ("done", 1.0), ("done", 2.0)]


def test_the_quota_makes_room_by_removing_the_oldest_finished_jobs(
    make_client: Callable[..., TestClient], tmp_path: Path
):
    jobs_dir = tmp_path / "data" / "jobs"
    client = make_client()
    first = wait_for(client, submit(client).json()["id"], finished)
    one_job = folder_bytes(jobs_dir)  # uploads, state, preview, result and photo
    client.__exit__(None, None, None)

    # Room for two such jobs, not three: the third's files push out the first.
    client = make_client(limits=Limits(max_data_bytes=int(2.5 * one_job)))
    second = wait_for(client, submit(client).json()["id"], finished)
    assert folders(tmp_path) == {first["id"], second["id"]}
    third = wait_for(client, submit(client).json()["id"], finished)
    assert folders(tmp_path) == {second["id"], third["id"]}
    assert client.get(first["url"]).status_code == 404
    assert folder_bytes(jobs_dir) <= 2.5 * one_job
    client.__exit__(None, None, None)

    # A lower quota at the next start is kept at once.
    client = make_client(limits=Limits(max_data_bytes=int(1.5 * one_job)))
    assert folders(tmp_path) == {third["id"]}


def test_a_job_that_cannot_fit_beside_running_ones_is_refused_with_507(
    make_client: Callable[..., TestClient], engine: Engine, tmp_path: Path
):
    photo = (EXAMPLES / "astronaut.jpg").stat().st_size
    client = make_client(limits=Limits(max_data_bytes=3 * photo))
    engine.paused.clear()
    running = submit(client, steps=50).json()
    wait_for(client, running["id"], lambda j: j["state"] == "running")
    refused = submit(client, expect=507)
    assert refused.json()["detail"].startswith("the data folder is full: jobs still queued or")
    assert "--max-data-mb" in refused.json()["detail"]
    assert folders(tmp_path) == {running["id"]}
    engine.paused.set()
    wait_for(client, running["id"], finished)
