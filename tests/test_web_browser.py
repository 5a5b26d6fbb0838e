"""impasto serve end to end, in a real headless browser: Playwright drives the system's Chromium
(no browser is downloaded) against a real server, as a user would: two example images chosen
through the file inputs, a small fast run, the picture forming, the result downloaded; a run
stopped and kept, compared with its photo, its settings reused, the gallery kept by the server
and cleared; and a page of another origin, which must not be able to start a job.

Missing Chromium is a failure, not a skip: CI installs it. Run as a script to remake the
README's screenshot of the page after a realistic run:

    python -m tests.test_web_browser docs/serve.png
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from impasto.web.app import create_app
from tests.webserver import running_server

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PNG = b"\x89PNG\r\n\x1a\n"
TOKEN = "browser-test-key-0123456789"


@contextmanager
def serving(data_dir: Path, cache: Path | None, **kwargs: object) -> Iterator[str]:
    """impasto serve's app on a free port; yields the address it prints (with its key)."""
    with running_server(create_app(data_dir, cache=cache, token=TOKEN, **kwargs)) as url:
        yield f"{url}/?token={TOKEN}"


@contextmanager
def chromium() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), (
        f"Chromium is needed for this test and was not found at {CHROMIUM} "
        "(on Debian: apt-get install chromium)"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def watched(page: Page) -> list[str]:
    """The page's errors as they come: script errors and console errors, Content Security
    Policy violations among them."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


@contextmanager
def browser_page(**context: object) -> Iterator[Page]:
    with chromium() as browser:
        yield browser.new_page(accept_downloads=True, **context)


def start_run(page: Page, url: str, *, size: int, iterations: int | None) -> None:
    """Open the page, choose the two example images, set the size and steps (None: the
    default schedule), press Start."""
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.set_input_files("#content-input", EXAMPLES / "astronaut.jpg")
    page.set_input_files("#style-input", EXAMPLES / "starry_night.jpg")
    expect(page.locator("#content-thumbs img")).to_have_count(1)
    expect(page.locator("#style-thumbs img")).to_have_count(1)
    page.fill("#opt-size", str(size))
    page.fill("#opt-iterations", "" if iterations is None else str(iterations))
    page.click("#start")


def test_the_page_stylizes_a_photo_and_downloads_it(tmp_path: Path, weights_home: Path):
    with serving(tmp_path / "data", weights_home) as url, browser_page() as page:
        errors = watched(page)
        # A file that is not an image is refused with the server's message, in the page.
        notes = tmp_path / "notes.png"
        notes.write_text("not a picture")
        page.goto(url)
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        page.set_input_files("#content-input", notes)
        page.set_input_files("#style-input", EXAMPLES / "starry_night.jpg")
        page.click("#start")
        expect(page.locator("#message")).to_contain_text("'notes.png' is not an image")

        start_run(page, url, size=64, iterations=8)
        stage = page.locator("#stage")
        # The picture forms: a preview is shown before the result.
        expect(stage).not_to_have_attribute("data-previews", "0", timeout=60_000)
        expect(page.locator("#download")).to_be_visible(timeout=60_000)
        expect(stage).to_have_attribute("data-kind", "result")
        expect(page.locator("#status")).to_contain_text("Done: 8 steps")
        expect(page.locator("#losses dt")).to_contain_text(["content", "style", "tv", "total"])
        expect(page.locator("#gallery .card")).to_have_count(1)

        with page.expect_download() as download_info:
            page.click("#download")
        download = download_info.value
        assert download.suggested_filename == "impasto-astronaut-starry-night.png"
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        assert saved.read_bytes().startswith(PNG)
        # The API's page renders from /openapi.json, its script a file of its own.
        page.goto(url.split("?")[0] + "docs")
        expect(page.locator("#ops .op").first).to_be_visible()
        expect(page.locator("#ops")).to_contain_text("/api/jobs/{job_id}/stop")
        # Only the refused upload's answer, which the browser logs itself; nothing the
        # Content-Security-Policy blocked, no script error.
        assert [e for e in errors if "status of 415" not in e] == []


def test_the_gallery_is_the_servers_and_a_run_can_be_stopped_kept_compared_reused_deleted(
    tmp_path: Path, weights_home: Path
):
    data = tmp_path / "data"
    with serving(data, weights_home) as url, chromium() as browser:
        page = browser.new_page()
        errors = watched(page)
        page.on("dialog", lambda dialog: dialog.accept())  # "Delete ...?"
        start_run(page, url, size=64, iterations=8)
        expect(page.locator("#status")).to_contain_text("Done: 8 steps", timeout=60_000)

        # Before and after: the photo, at the result's size, over the result up to the slider.
        expect(page.locator("#compare-row")).to_be_visible()
        before, stage = page.locator("#before"), page.locator("#stage")
        assert before.evaluate("b => [b.naturalWidth, b.naturalHeight]") == stage.evaluate(
            "s => [s.naturalWidth, s.naturalHeight]"
        )
        page.locator("#compare").fill("500")
        expect(page.locator("#split")).to_be_visible()
        split = page.locator("#split").bounding_box()
        frame = stage.bounding_box()
        assert split and frame and abs(split["x"] - (frame["x"] + frame["width"] / 2)) < 3
        assert "inset" in before.evaluate("b => b.style.clipPath")

        # A long run, stopped: the picture so far is its result.
        start_run(page, url, size=64, iterations=1000)
        expect(page.locator("#status")).to_have_text(
            re.compile(r"Step ([3-9]|\d\d+) of 1000"), timeout=60_000
        )
        page.click("#stop")
        expect(page.locator("#status")).to_contain_text("Stopped at step", timeout=30_000)
        expect(page.locator("#status")).to_contain_text("the picture so far")
        expect(page.locator("#download")).to_be_visible()
        expect(stage).to_have_attribute("data-kind", "result")

        # A recipe sets how the picture is made, not its size; Reset puts the defaults back; a
        # job's settings come back whole.
        # A weight set by hand is meant as given (the balance turns fixed, as typing
        # --style-weight does); a recipe's weight is scaled by the pair's balance, as --preset's.
        expect(page.locator("#opt-balance")).to_have_value("auto")
        page.fill("#opt-style_weight", "4")
        expect(page.locator("#opt-balance")).to_have_value("fixed")
        sent = page.evaluate("changedOptions()")
        assert (sent["style_weight"], sent["balance"]) == ("4", "fixed")
        page.fill("#opt-size", "96")
        page.select_option("#preset", "painterly")
        expect(page.locator("#opt-style_weight")).to_have_value("20")
        expect(page.locator("#opt-balance")).to_have_value("auto")
        sent = page.evaluate("changedOptions()")
        assert (sent["style_weight"], sent["balance"]) == ("20", "auto")
        expect(page.locator("#opt-iterations")).to_have_value("60,120")
        expect(page.locator("#opt-size")).to_have_value("96")
        expect(page.locator("#preset-hint")).to_contain_text("more of the painting")
        page.select_option("#preset", "")
        expect(page.locator("#opt-iterations")).to_have_value("")
        page.click("summary")  # the advanced options, where Reset is
        page.click("#reset")
        expect(page.locator("#opt-style_weight")).to_have_value("10")
        expect(page.locator("#opt-iterations")).to_have_value("")
        first = page.locator("#gallery .card").last  # the oldest: 8 steps at 64 px
        first.get_by_role("button", name="Reuse settings").click()
        expect(page.locator("#opt-iterations")).to_have_value("8")
        expect(page.locator("#opt-size")).to_have_value("64")

        # Another browser, another session: the gallery is the server's, not the tab's.
        other = browser.new_context().new_page()
        other.on("dialog", lambda dialog: dialog.accept())
        errors += watched(other)
        other.goto(url)
        expect(other.locator("body")).to_have_attribute("data-ready", "true")
        cards = other.locator("#gallery .card")
        expect(cards).to_have_count(2)
        expect(other.locator("#gallery-count")).to_have_text("(2)")
        cards.first.hover()
        cards.first.locator(".delete").click()
        expect(cards).to_have_count(1)
        assert len(list((data / "jobs").iterdir())) == 1
        # The first page catches up when it is looked at again.
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
        expect(page.locator("#gallery .card")).to_have_count(1)
        assert errors == []


EVIL_PAGE = """<!doctype html><meta charset="utf-8"><title>cute cats</title>
<script>
// What a page of any other origin could try: start a job on the visitor's machine, with the
// visitor's cookies, without a click; and read the job list.
const target = "TARGET";
const png = Uint8Array.from(atob("PNG64"), (c) => c.charCodeAt(0));
async function attack() {
  const out = {};
  const form = new FormData();
  form.append("content", new Blob([png], { type: "image/png" }), "a.png");
  form.append("style", new Blob([png], { type: "image/png" }), "b.png");
  form.append("size", "64");
  try {
    await fetch(target + "/api/jobs", { method: "POST", body: form, mode: "no-cors", credentials: "include" });
    out.post = "sent";
  } catch (e) { out.post = "failed: " + e; }
  try {
    const r = await fetch(target + "/api/jobs", { credentials: "include" });
    out.read = "read " + r.status + " " + (await r.text());
  } catch (e) { out.read = "blocked"; }
  document.body.dataset.results = JSON.stringify(out);
}
attack();
</script><body></body>"""


class Recorder:
    """ASGI wrapper: what reached the server, whether it carried the page's cookie, and the
    status it got."""

    def __init__(self, app: Any, cookie: str) -> None:
        self.app, self.cookie, self.seen = app, cookie, []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        entry = {
            "method": scope["method"],
            "path": scope["path"],
            "origin": headers.get("origin"),
            "cookie": self.cookie in headers.get("cookie", ""),
        }

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                self.seen.append(entry)
            await send(message)

        await self.app(scope, receive, sending)


def test_a_page_of_another_origin_cannot_start_a_job(tmp_path: Path):
    def never_runs(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a job from another origin ran")

    app = create_app(tmp_path / "data", token=TOKEN, runner=never_runs)
    recorder = Recorder(app, app.state.key.cookie)
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, format="PNG")
    with running_server(app, recorder) as url, chromium() as browser:
        evil = EVIL_PAGE.replace("TARGET", url).replace(
            "PNG64", base64.b64encode(buffer.getvalue()).decode()
        )
        with other_origin(evil) as evil_url:
            assert evil_url.split(":")[2] != url.split(":")[2]  # same machine, another port
            page = browser.new_page()
            page.goto(f"{url}/?token={TOKEN}")  # the visitor uses impasto: the cookie is set
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            page.goto(evil_url)  # then visits another page, in the same browser
            expect(page.locator("body")).to_have_attribute("data-results", re.compile("read"))
            results = json.loads(page.locator("body").get_attribute("data-results") or "{}")
    # Neither answer reaches the page (the POST's is blocked by Cross-Origin-Resource-Policy,
    # the list's by the same-origin policy), and:
    assert results["read"] == "blocked", results
    posts = [e for e in recorder.seen if e["method"] == "POST"]
    # The browser did send the visitor's cookie (another port is the same site), so only the
    # Origin check stood between that page and a job on this machine.
    assert posts == [
        {"method": "POST", "path": "/api/jobs", "origin": evil_url, "cookie": True, "status": 403}
    ]
    assert app.state.manager.list() == []


@contextmanager
def other_origin(html: str) -> Iterator[str]:
    """A page served from another port of 127.0.0.1: another origin, as far as a browser goes."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 -- http.server's name
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def make_screenshot(out: Path, size: int = 384) -> None:
    """The README's picture: the page after a realistic run (real weights, user cache, the
    default schedule)."""
    with (
        tempfile.TemporaryDirectory() as data,
        serving(Path(data), None) as url,
        browser_page(viewport={"width": 1360, "height": 900}) as page,
    ):
        start_run(page, url, size=size, iterations=None)
        expect(page.locator("#download")).to_be_visible(timeout=1_800_000)
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(500)
        page.screenshot(path=str(out), full_page=True)


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    make_screenshot(Path(sys.argv[1]))
