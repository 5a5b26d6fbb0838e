"""impasto serve end to end, in a real headless browser: Playwright drives the system's Chromium
(no browser is downloaded) against a real server, as a user would: two example images chosen
through the file inputs, a small fast run, the picture forming, the result downloaded.

Missing Chromium is a failure, not a skip: CI installs it. Run as a script to remake the
README's screenshot of the page after a realistic run:

    python tests/test_web_browser.py docs/serve.png
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

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
def browser_page(**context: object) -> Iterator[Page]:
    assert Path(CHROMIUM).exists(), (
        f"Chromium is needed for this test and was not found at {CHROMIUM} "
        "(on Debian: apt-get install chromium)"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(accept_downloads=True, **context)
            yield page
        finally:
            browser.close()


def start_run(page: Page, url: str, *, size: int, iterations: int) -> None:
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.set_input_files("#content-input", EXAMPLES / "astronaut.jpg")
    page.set_input_files("#style-input", EXAMPLES / "starry_night.jpg")
    expect(page.locator("#content-thumbs img")).to_have_count(1)
    expect(page.locator("#style-thumbs img")).to_have_count(1)
    page.fill("#opt-size", str(size))
    page.fill("#opt-iterations", str(iterations))
    page.click("#start")


def test_the_page_stylizes_a_photo_and_downloads_it(tmp_path: Path, weights_home: Path):
    with serving(tmp_path / "data", weights_home) as url, browser_page() as page:
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


def make_screenshot(out: Path, size: int = 256) -> None:
    """The README's picture: the page after a realistic run (real weights, user cache)."""
    with (
        tempfile.TemporaryDirectory() as data,
        serving(Path(data), None) as url,
        browser_page(viewport={"width": 1360, "height": 900}) as page,
    ):
        start_run(page, url, size=size, iterations=200)
        expect(page.locator("#download")).to_be_visible(timeout=1_800_000)
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(500)
        page.screenshot(path=str(out), full_page=True)


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    make_screenshot(Path(sys.argv[1]))
