"""impasto serve's HTTP API, through the framework's test client: uploads are checked, jobs run in
order and stream their progress, cancel is prompt, results download, nothing leaves the data
folder, and a restart never loses a job silently. Real weights, 64 px images, a few steps."""

from __future__ import annotations

import argparse
import io
import json
import re
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from impasto.config import StyleConfig
from impasto.errors import UsageError
from impasto.web import options as form_options
from impasto.web.app import create_app
from impasto.web.jobs import STOPPED_QUEUED, STOPPED_RUNNING
from impasto.web.limits import Limits

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # a note about the test client's HTTP library, not about us
    from fastapi.testclient import TestClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG = b"\x89PNG\r\n\x1a\n"
TINY = {"size": "64", "iterations": "4"}
# Long enough to still be running when the test acts on it; each step takes ~0.05 s at 64 px.
LONG = {"size": "64", "iterations": "1000", "tolerance": "0"}
TOKEN = "test-key-0123456789abcdef"
# What a program holding the key sends; the page sends its cookie instead (tests/test_web_browser.py).
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def make_client(data_dir: Path, weights_home: Path) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(**kwargs: Any) -> TestClient:
        app = create_app(data_dir, cache=weights_home, token=TOKEN, **kwargs)
        client = TestClient(app, base_url="http://127.0.0.1:8000", headers=AUTH)
        client.__enter__()  # runs the app's start-up: folders, recovery, the worker
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def images(
    *styles: str | tuple[str, bytes], content: str | tuple[str, bytes] | None = "astronaut.jpg"
):
    """Multipart files: the content photo and the style images, by example name or (name, bytes)."""

    def part(field: str, item: str | tuple[str, bytes]) -> tuple[str, tuple[str, bytes, str]]:
        name, data = item if isinstance(item, tuple) else (item, (EXAMPLES / item).read_bytes())
        return field, (name, data, "image/jpeg")

    files = [part("content", content)] if content is not None else []
    return files + [part("style", s) for s in styles]


def submit(client: TestClient, options: dict[str, str], *styles: str) -> dict[str, Any]:
    response = client.post(
        "/api/jobs", files=images(*(styles or ("starry_night.jpg",))), data=options
    )
    assert response.status_code == 201, response.text
    return response.json()


def wait_for(
    client: TestClient, job_id: str, check: Callable[[dict[str, Any]], bool], timeout: float = 60
):
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if check(job):
            return job
        assert time.monotonic() < deadline, f"gave up waiting; the job is {job}"
        time.sleep(0.05)


def events_of(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def job_folders(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "jobs").iterdir())


# ---- the form, from StyleConfig -----------------------------------------------------------------


def test_options_describe_every_field_of_the_config(client: TestClient):
    described = client.get("/api/options").json()
    by_name = {f["name"]: f for f in described["fields"]}
    assert set(by_name) == {f.name for f in fields(StyleConfig)}
    for f in fields(StyleConfig):
        assert by_name[f.name]["default"] == form_options.format_value(f.default)
        assert by_name[f.name]["help"] == f.metadata["help"]
    assert by_name["size"]["main"] and by_name["size"]["label"] == "Size"
    assert by_name["network"]["choices"] == ["vgg19", "vgg16"]
    assert by_name["init"]["choices"] == ["content", "noise", "style"]  # never a path over the web
    # The defaults, sent back as they are shown, make the default config.
    defaults = {f["name"]: f["default"] for f in described["fields"]}
    assert form_options.make_config(defaults) == StyleConfig()
    assert described["limits"]["max_upload_bytes"] == Limits().max_upload_bytes


def test_form_fields_parse_into_config_types():
    parsed = form_options.parse(
        {
            "size": "96",
            "style_weight": "20",
            "content_layers": "conv4_2, conv5_2",
            "style_layer_weights": "1,2,3,4,5",
            "network": "vgg19",
            "seed": "7",
            "tv_weight": "",
        }
    )
    assert parsed == {
        "size": 96,
        "style_weight": 20.0,
        "content_layers": ("conv4_2", "conv5_2"),
        "style_layer_weights": (1.0, 2.0, 3.0, 4.0, 5.0),
        "network": "vgg19",
        "seed": 7,
    }
    assert form_options.parse({"style_layer_weights": "equal"}) == {"style_layer_weights": None}
    with pytest.raises(UsageError, match=r"--size expects a whole number, not 'big'"):
        form_options.parse({"size": "big"})
    with pytest.raises(
        UsageError, match=r"unknown option 'style_wieght' \(did you mean 'style_weight'\?\)"
    ):
        form_options.parse({"style_wieght": "3"})
    with pytest.raises(UsageError, match=r"--init must be one of content, noise, style"):
        form_options.parse({"init": "/etc/passwd"})


# ---- a job, start to finish -----------------------------------------------------------------


def test_job_runs_streams_progress_and_downloads_as_png(client: TestClient, data_dir: Path):
    # A long job holds the worker, so that the stream of the job under test starts while it waits.
    blocker = submit(client, LONG)
    wait_for(client, blocker["id"], lambda j: j["state"] == "running")
    job = submit(client, TINY)
    assert (job["state"], job["position"], job["total_steps"]) == ("queued", 1, 4)
    assert job["content_name"] == "astronaut.jpg" and job["style_names"] == ["starry_night.jpg"]

    with ThreadPoolExecutor(1) as pool:
        listening = pool.submit(client.get, job["events_url"])  # returns when the job ends
        time.sleep(0.5)
        client.post(f"{blocker['url']}/cancel")
        stream = listening.result(timeout=60)
    assert stream.headers["content-type"].startswith("text/event-stream")
    events = events_of(stream.text)
    names = [name for name, _ in events]
    assert names[0] == "state" and events[0][1]["position"] == 1
    assert "started" in names and names[-1] == "done"
    progress = [data for name, data in events if name == "progress"]
    assert progress, names
    assert all(
        p["total_steps"] == 4 and set(p["losses"]) >= {"content", "style", "tv"} for p in progress
    )
    assert progress[0]["preview_url"] and progress[-1]["eta"] is not None

    done = client.get(job["url"]).json()
    assert (
        done["state"] == "done"
        and done["step"] == 4
        and (done["width"], done["height"]) == (64, 64)
    )
    assert done["settings"]["size"] == 64 and done["error"] is None

    preview = client.get(done["preview_url"])
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    result = client.get(done["result_url"])
    assert result.status_code == 200 and result.headers["content-type"] == "image/png"
    assert result.content.startswith(PNG)
    assert 'filename="impasto-astronaut-starry-night.png"' in result.headers["content-disposition"]
    assert Image.open(io.BytesIO(result.content)).size == (64, 64)

    # Inputs are stored under names the server chose, next to the state and the result.
    folder = data_dir / "jobs" / job["id"]
    assert {p.name for p in folder.iterdir()} == {
        "content.jpg",
        "style-1.jpg",
        "job.json",
        "preview.jpg",
        "result.png",
        "photo.jpg",
    }
    # The photo as the run saw it, at the result's size: the page lays one over the other.
    photo = client.get(done["photo_url"])
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(photo.content)).size == (64, 64)
    assert json.loads((folder / "job.json").read_text())["state"] == "done"
    from impasto.record import read_record

    assert read_record(folder / "result.png").config.size == 64

    # A finished job's events: just its final state.
    (final,) = events_of(client.get(job["events_url"]).text)
    assert final[0] == "done"
    assert [j["id"] for j in client.get("/api/jobs").json()] == [job["id"], blocker["id"]]


def test_cancel_stops_a_running_job_promptly(client: TestClient):
    job = submit(client, LONG)
    wait_for(client, job["id"], lambda j: j["step"] >= 2)
    asked = time.monotonic()
    answer = client.post(f"{job['url']}/cancel")
    assert answer.status_code == 200 and answer.json()["cancelling"]
    cancelled = wait_for(client, job["id"], lambda j: j["state"] == "cancelled", timeout=10)
    assert time.monotonic() - asked < 10
    assert 2 <= cancelled["step"] < 1000 and cancelled["result_url"] is None
    assert client.get(f"{job['url']}/result").status_code == 409
    # The worker is free again: the next job runs.
    after = submit(client, TINY)
    assert (
        wait_for(client, after["id"], lambda j: j["state"] in ("done", "failed"))["state"] == "done"
    )


def test_jobs_queue_and_show_their_position(client: TestClient):
    first = submit(client, LONG)
    wait_for(client, first["id"], lambda j: j["state"] == "running")
    second, third = submit(client, TINY), submit(client, TINY)
    assert (second["state"], second["position"]) == ("queued", 1)
    assert (third["state"], third["position"]) == ("queued", 2)
    cancelled = client.post(f"{second['url']}/cancel").json()  # a queued job: at once
    assert cancelled["state"] == "cancelled" and cancelled["position"] is None
    assert client.get(third["url"]).json()["position"] == 1
    client.post(f"{first['url']}/cancel")
    done = wait_for(client, third["id"], lambda j: j["state"] == "done")
    assert done["position"] is None
    assert client.get(first["url"]).json()["state"] == "cancelled"


def test_a_restart_marks_interrupted_jobs_failed(
    make_client: Callable[..., TestClient], data_dir: Path
):
    client = make_client()
    running = submit(client, LONG)
    wait_for(client, running["id"], lambda j: j["step"] >= 1)
    queued = submit(client, TINY)
    client.__exit__(None, None, None)  # the server stops
    for job, reason in ((running, STOPPED_RUNNING), (queued, STOPPED_QUEUED)):
        saved = json.loads((data_dir / "jobs" / job["id"] / "job.json").read_text())
        assert (saved["state"], saved["error"]) == ("failed", reason)

    # A server killed outright leaves "running" behind; the next start says what happened.
    folder = data_dir / "jobs" / running["id"]
    saved = json.loads((folder / "job.json").read_text())
    (folder / "job.json").write_text(json.dumps({**saved, "state": "running", "error": None}))

    again = make_client()
    job = again.get(running["url"]).json()
    assert (job["state"], job["error"]) == ("failed", STOPPED_RUNNING)
    assert job["step"] >= 1 and job["preview_url"]
    assert again.get(job["preview_url"]).status_code == 200
    assert {j["id"] for j in again.get("/api/jobs").json()} == {running["id"], queued["id"]}


def test_results_survive_a_restart(make_client: Callable[..., TestClient]):
    client = make_client()
    job = wait_for(client, submit(client, TINY)["id"], lambda j: j["state"] == "done")
    client.__exit__(None, None, None)
    again = make_client()
    assert again.get(job["url"]).json()["state"] == "done"
    assert again.get(job["result_url"]).content.startswith(PNG)


# ---- what is refused ----------------------------------------------------------------------------


def _truncated_jpeg() -> bytes:
    data = (EXAMPLES / "astronaut.jpg").read_bytes()
    return data[: len(data) // 3]


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


BAD_UPLOADS = {
    "text named .png": (
        {"files": images(("notes.png", b"this is a text file, not a picture\n"))},
        415,
        "style image 'notes.png' is not an image this server reads",
    ),
    "empty file": ({"files": images(("empty.jpg", b""))}, 415, "style image 'empty.jpg' is empty"),
    "truncated image": (
        {"files": images("starry_night.jpg", content=("cut.jpg", _truncated_jpeg()))},
        422,
        "content photo 'cut.jpg' could not be read as an image",
    ),
    "too many bytes": (
        {"files": images("starry_night.jpg"), "limits": Limits(max_upload_bytes=200_000)},
        413,
        "style image 'starry_night.jpg' is larger than 195 KB",
    ),
    "too many pixels": (
        {"files": images(("wide.png", _png(3000, 200))), "limits": Limits(max_pixels=500_000)},
        422,
        "style image 'wide.png' is 3000x200 px (0.6 megapixels); this server accepts at most 0.5 megapixels",
    ),
    "missing content": (
        {"files": images("starry_night.jpg", content=None)},
        422,
        "choose a content photo",
    ),
    "no style": ({"files": images()}, 422, "choose a style image"),
    "bad option value": (
        {"files": images("starry_night.jpg"), "data": {"size": "-5"}},
        422,
        "--size must be a whole number from 1 to 16,384 px, not -5",
    ),
    "mistyped layer": (
        {"files": images("starry_night.jpg"), "data": {"style_layers": "conv1_1,conv9_1"}},
        422,
        "conv9_1",
    ),
    "not a number": (
        {"files": images("starry_night.jpg"), "data": {"style_weight": "lots"}},
        422,
        "--style-weight expects a number, not 'lots'",
    ),
    "unknown option": (
        {"files": images("starry_night.jpg"), "data": {"colour": "blue"}},
        422,
        "unknown option 'colour'",
    ),
    "init from a server path": (
        {"files": images("starry_night.jpg"), "data": {"init": str(EXAMPLES / "astronaut.jpg")}},
        422,
        "--init must be one of content, noise, style",
    ),
    "size above the server's limit": (
        {
            "files": images("starry_night.jpg"),
            "data": {"size": "4096"},
            "limits": Limits(max_size=1024),
        },
        422,
        "--size 4096 is larger than this server allows (1024 px)",
    ),
    "too many styles": (
        {
            "files": images("starry_night.jpg", "starry_night.jpg", "starry_night.jpg"),
            "limits": Limits(max_styles=2),
        },
        422,
        "3 style images were sent; this server takes at most 2",
    ),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_uploads_are_refused_with_a_clear_message(
    case: str, make_client: Callable[..., TestClient], data_dir: Path
):
    request, status, message = BAD_UPLOADS[case]
    request = dict(request)
    client = make_client(limits=request.pop("limits", None))
    response = client.post("/api/jobs", **request)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and message in detail
    assert "Traceback" not in detail and str(data_dir) not in detail
    assert job_folders(data_dir) == [] and list((data_dir / "incoming").iterdir()) == []
    assert client.get("/api/jobs").json() == []


def test_an_oversized_request_is_refused_before_it_is_read(make_client: Callable[..., TestClient]):
    client = make_client(limits=Limits(max_upload_bytes=10_000, max_styles=1))
    body = b"x" * 3_000_000  # over (1 + 1 images) x 10 kB + 1 MB for the form's text fields
    headers = {"content-type": "multipart/form-data; boundary=b"}
    response = client.post("/api/jobs", content=body, headers=headers)
    assert (
        response.status_code == 413
        and "larger than this server accepts" in response.json()["detail"]
    )
    # Without a Content-Length (chunked), the body is counted as it arrives.
    chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
    response = client.post("/api/jobs", content=chunks, headers=headers)
    assert (
        response.status_code == 413
        and "larger than this server accepts" in response.json()["detail"]
    )


def test_unknown_and_path_like_job_ids_touch_no_file(
    client: TestClient, data_dir: Path, tmp_path: Path
):
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG + b"secret")
    # A folder in jobs/ whose name is not a job id is never served.
    (data_dir / "jobs" / "not-a-uuid").mkdir()
    (data_dir / "jobs" / "not-a-uuid" / "result.png").write_bytes(PNG)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for path in (
        f"/api/jobs/{uuid.uuid4()}",
        f"/api/jobs/{uuid.uuid4()}/result",
        "/api/jobs/not-a-uuid/result",
        "/api/jobs/..%2F..%2Fsecret.png",
        "/api/jobs/%2e%2e/%2e%2e/secret.png",
        "/api/jobs/..%5C..%5Csecret.png/result",
        f"/api/jobs/{str(uuid.uuid4()).upper()}x/preview",
        "/static/..%2F..%2F..%2Fsecret.png",
    ):
        for method in ("GET", "DELETE"):
            response = client.request(method, path)
            assert response.status_code in (404, 405, 422), (method, path, response.status_code)
            assert b"secret" not in response.content
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


# ---- the page and its documentation -------------------------------------------------------------


def test_page_docs_and_openapi_load_offline(client: TestClient):
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    for path in (
        "/static/app.js",
        "/static/style.css",
        "/static/favicon.svg",
        "/static/example-astronaut.jpg",
    ):
        assert client.get(path).status_code == 200, path
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    assert "http://" not in docs.text and "https://" not in docs.text  # nothing from elsewhere
    spec = client.get("/openapi.json").json()
    assert {
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/events",
        "/api/jobs/{job_id}/result",
    } <= set(spec["paths"])
    form = spec["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"][
        "schema"
    ]
    assert form["required"] == ["content", "style"]
    assert {f.name for f in fields(StyleConfig)} <= set(form["properties"])
    assert "delete" in spec["paths"]["/api/jobs/{job_id}"]


# ---- the command -------------------------------------------------------------------------------


def test_serve_options_and_a_busy_port(capsys: pytest.CaptureFixture[str]):
    from impasto.cli import build_parser
    from impasto.web.server import bind, url_of

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.data_dir) == ("127.0.0.1", 8000, None)
    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        assert url_of(sock, "127.0.0.1") == f"http://127.0.0.1:{port}/"
        assert url_of(sock, "0.0.0.0") == f"http://127.0.0.1:{port}/"
        with pytest.raises(UsageError, match=rf"cannot listen on 127.0.0.1:{port}: .*--port 0"):
            bind("127.0.0.1", port)
    finally:
        sock.close()


def _start_serve(data: Path, *extra: str) -> tuple[Any, str]:
    """``impasto serve`` as a user starts it; returns the process and the address it printed."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "impasto", "serve", "--port", "0", "--data-dir", str(data)]
    process = subprocess.Popen(
        [*argv, *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    line = process.stdout.readline() if process.stdout else ""
    found = re.search(r"open (http://127\.0\.0\.1:\d+/\?token=\S+) in a web browser", line)
    if not found:
        process.kill()
        raise AssertionError(f"impasto serve printed {line!r}")
    return process, found.group(1)


def test_serve_prints_an_address_that_carries_its_key(tmp_path: Path):
    import httpx

    data = tmp_path / "data"
    process, url = _start_serve(data)
    try:
        key = url.split("?token=")[1]
        assert key == (data / "token").read_text().strip()  # kept for the next start
        with httpx.Client() as web:
            opened = web.get(url)
            assert opened.status_code == 303 and key in opened.headers["set-cookie"]
            assert web.get(url.split("?")[0]).status_code == 200  # the cookie opens the page
            assert web.get(f"{url.split('?')[0]}api/jobs").status_code == 200
            assert httpx.get(f"{url.split('?')[0]}api/jobs").status_code == 401  # no key
    finally:
        process.terminate()
        process.wait(30)
    again, same = _start_serve(data)
    again.terminate()
    again.wait(30)
    renewed, other = _start_serve(data, "--new-token")
    renewed.terminate()
    renewed.wait(30)
    assert same.split("?token=")[1] == key and other.split("?token=")[1] != key


def test_serve_without_the_web_extra_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch):
    import importlib.util

    import impasto.web

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    with pytest.raises(UsageError, match=r"pip install 'impasto\[web\]'"):
        impasto.web.run(argparse.Namespace())


def test_impasto_info_reads_a_result_from_the_page_as_one_from_the_command_line(
    client: TestClient, tmp_path: Path, capsys, weights_home: Path
):
    """One record for every front: the downloaded result and a CLI result read back alike."""
    from impasto.cli import main

    job = submit(client, {**TINY, "style_weight": "7"})
    done = wait_for(client, job["id"], lambda j: j["state"] == "done")
    downloaded = tmp_path / "from-the-page.png"
    downloaded.write_bytes(client.get(done["result_url"]).content)
    made_here = tmp_path / "from-the-cli.png"
    argv = [
        str(EXAMPLES / "astronaut.jpg"),
        str(EXAMPLES / "starry_night.jpg"),
        "-o",
        str(made_here),
    ]
    extra = [
        "--size",
        "64",
        "--iterations",
        "4",
        "--style-weight",
        "7",
        "-q",
        "--cache-dir",
        str(weights_home),
    ]
    assert main(["stylize", *argv, *extra]) == 0
    for path, made_by in ((downloaded, "impasto serve"), (made_here, "impasto stylize")):
        capsys.readouterr()
        assert main(["info", str(path)]) == 0
        out = capsys.readouterr().out
        assert f"made by {made_by} 0.1.0" in out
        assert "astronaut.jpg" in out and "style:    " in out and "starry_night.jpg" in out
        assert "--style-weight 7" in out and "--size 64" in out and "run:      4 steps" in out
