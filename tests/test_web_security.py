"""Who impasto serve obeys (impasto/web/security.py): its own address only (DNS rebinding), its
own page only for anything that changes state (cross-origin requests), holders of its key only
for the API, strict headers on every answer, and uploads cut off the moment they pass a limit.

No run happens here: a job that got through would show in the job list, which is what the tests
look at. The browser's side of it (a page on another origin, in Chromium) is in
tests/test_web_browser.py."""

from __future__ import annotations

import io
import re
import select
import socket
import stat
import warnings
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from impasto.errors import UsageError
from impasto.web.app import STATIC, create_app
from impasto.web.limits import Limits
from impasto.web.security import Hosts, Key, server_key
from tests.webserver import running_server

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOKEN = "test-key-0123456789abcdef"
HOME = "http://127.0.0.1:8000"


def never_runs(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a job ran that should have been refused")


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(*, key: bool = True, base: str = HOME, **kwargs: Any) -> TestClient:
        kwargs.setdefault("runner", never_runs)
        app = create_app(tmp_path / "data", token=TOKEN, **kwargs)
        headers = {"Authorization": f"Bearer {TOKEN}"} if key else {}
        client = TestClient(app, base_url=base, headers=headers, follow_redirects=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def job_form() -> dict[str, Any]:
    photo = (EXAMPLES / "astronaut.jpg").read_bytes()
    return {
        "files": [
            ("content", ("a.jpg", photo, "image/jpeg")),
            ("style", ("s.jpg", photo, "image/jpeg")),
        ],
        "data": {"size": "64", "iterations": "2"},
    }


def jobs_of(client: TestClient) -> list[dict[str, Any]]:
    response = client.get("/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    return response.json()


# ---- Host: DNS rebinding ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/api/jobs", "/api/options", "/static/app.js"])
def test_a_foreign_host_name_is_refused_everywhere(make_client: Callable[..., TestClient], path):
    client = make_client()
    # A DNS-rebinding page reaches 127.0.0.1 under its own name; the browser sends that name.
    response = client.get(path, headers={"Host": "evil.example:8000"})
    assert response.status_code == 400
    assert "'evil.example:8000'" in response.json()["detail"]
    assert "--allow-host evil.example" in response.json()["detail"]


def test_a_foreign_host_cannot_start_a_job_even_with_the_key(
    make_client: Callable[..., TestClient],
):
    client = make_client()
    response = client.post("/api/jobs", headers={"Host": "evil.example"}, **job_form())
    assert response.status_code == 400
    assert jobs_of(client) == []


@pytest.mark.parametrize(
    ("listen", "allowed", "host", "ok"),
    [
        ("127.0.0.1", (), "127.0.0.1:8000", True),
        ("127.0.0.1", (), "localhost:8000", True),
        ("127.0.0.1", (), "LOCALHOST", True),
        ("127.0.0.1", (), "[::1]:8000", True),
        ("127.0.0.1", (), "127.0.0.2", True),  # all of 127/8 is this machine
        ("127.0.0.1", (), "192.168.1.20:8000", False),  # not an address a loopback socket has
        ("127.0.0.1", (), "evil.example", False),
        ("127.0.0.1", (), "localhost.evil.example", False),
        ("127.0.0.1", (), "", False),
        ("127.0.0.1", (), "[nonsense", False),
        ("127.0.0.1", ("studio.lan",), "studio.lan:8000", True),
        ("127.0.0.1", ("studio.lan",), "studio.lan.evil.example", False),
        ("0.0.0.0", (), "192.168.1.20:8000", True),  # reached by its LAN address
        ("0.0.0.0", (), "studio.lan:8000", False),  # a name must be declared
        ("::", (), "[fe80::1]:8000", True),
        ("localhost", (), "localhost:8000", True),
        ("localhost", (), "10.0.0.5", False),
    ],
)
def test_hosts_allowed(listen: str, allowed: tuple[str, ...], host: str, ok: bool):
    assert Hosts(listen, allowed).allows(host) is ok


# ---- Origin: other pages -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},  # a sandboxed frame or a file: page
        {"Origin": "http://127.0.0.1:9999"},  # another port of this machine is another origin
        {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
    ids=["foreign", "null", "other-port", "same-site", "fetch-metadata"],
)
def test_a_job_from_another_page_is_refused_even_with_the_key(
    make_client: Callable[..., TestClient], headers: dict[str, str]
):
    client = make_client()
    response = client.post("/api/jobs", headers=headers, **job_form())
    assert response.status_code == 403, response.text
    assert "impasto serve obeys its own page only" in response.json()["detail"]
    assert jobs_of(client) == []


def test_the_servers_own_origin_passes(make_client: Callable[..., TestClient]):
    client = make_client()
    headers = {"Origin": HOME, "Sec-Fetch-Site": "same-origin"}
    # Past the checks, the form is read: a job with a bad option is refused on its merits.
    form = job_form() | {"data": {"size": "-1"}}
    response = client.post("/api/jobs", headers=headers, **form)
    assert response.status_code == 422 and "--size" in response.json()["detail"]


def test_other_pages_cannot_read_the_api_either(make_client: Callable[..., TestClient]):
    client = make_client()
    for site in ("cross-site", "same-site"):
        response = client.get("/api/jobs", headers={"Sec-Fetch-Site": site})
        assert response.status_code == 403
    # A link followed from elsewhere still opens the page (which then asks for its key).
    page = client.get("/", headers={"Sec-Fetch-Site": "cross-site"})
    assert page.status_code == 200


# ---- the key -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/jobs"),
        ("GET", "/api/options"),
        ("POST", "/api/jobs"),
        ("GET", "/api/jobs/6f1f5d4e-2c1b-4c4e-9a4c-7d8e9f0a1b2c/result"),
        ("DELETE", "/api/jobs/6f1f5d4e-2c1b-4c4e-9a4c-7d8e9f0a1b2c"),
    ],
)
def test_the_api_needs_the_key(make_client: Callable[..., TestClient], method: str, path: str):
    client = make_client(key=False)
    for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789"}, {"Cookie": "x=y"}):
        response = client.request(method, path, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert "needs its key" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"


def test_the_key_may_come_as_a_bearer_token_a_query_or_the_pages_cookie(
    make_client: Callable[..., TestClient],
):
    client = make_client(key=False)
    assert client.get("/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).json() == []
    assert client.get(f"/api/jobs?token={TOKEN}").json() == []
    # The address impasto serve prints: the key is remembered and taken out of the address.
    opened = client.get(f"/?token={TOKEN}")
    assert opened.status_code == 303 and opened.headers["location"] == "/"
    cookie = opened.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN in cookie
    name = cookie.split("=", 1)[0]
    assert name == Key(TOKEN).cookie
    assert client.get("/api/jobs", headers={"Cookie": f"{name}={TOKEN}"}).json() == []
    page = client.get("/", headers={"Cookie": f"{name}={TOKEN}"})
    assert page.status_code == 200 and "/static/app.js" in page.text
    # Another server's cookie (another key) is not this one's.
    other = Key("another-key-0123456789abcd")
    assert other.cookie != name
    assert client.get("/api/jobs", headers={"Cookie": f"{other.cookie}={TOKEN}"}).status_code == 401


def test_without_the_key_the_page_asks_for_it(make_client: Callable[..., TestClient]):
    client = make_client(key=False)
    for path in ("/", "/?token=not-the-key-0123456789"):
        page = client.get(path)
        assert page.status_code == 401
        assert "?token=" in page.text and 'name="token"' in page.text
        assert "/static/app.js" not in page.text and TOKEN not in page.text
        assert "set-cookie" not in page.headers
    # The API's description is public: it holds no job and no key.
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_the_key_is_kept_in_the_data_folder_for_its_owner_only(tmp_path: Path):
    data = tmp_path / "data"
    key = server_key(data)
    assert len(key) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", key)
    assert server_key(data) == key  # bookmarks survive a restart
    mode = stat.S_IMODE((data / "token").stat().st_mode)
    assert mode & 0o077 == 0, oct(mode)
    renewed = server_key(data, renew=True)
    assert renewed != key and server_key(data) == renewed
    (data / "token").write_text("short\n")  # damaged: replaced, never used
    assert server_key(data) not in ("short", renewed)
    with pytest.raises(UsageError, match="16 to 128"):
        Key("short")


# ---- headers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key", "status"),
    [
        ("/", True, 200),
        ("/", False, 401),
        ("/docs", False, 200),
        ("/static/app.js", False, 200),
        ("/api/options", True, 200),
        ("/api/options", False, 401),
        ("/api/jobs/not-a-job", True, 404),
    ],
)
def test_every_answer_carries_the_strict_headers(
    make_client: Callable[..., TestClient], path: str, key: bool, status: int
):
    response = make_client(key=key).get(path)
    assert response.status_code == status
    assert response.headers["x-content-type-options"] == "nosniff"
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["referrer-policy"] == "no-referrer"  # the key stays here
    assert response.headers["x-frame-options"] == "DENY"


class _InlineCode(HTMLParser):
    """Anything in a page that a strict Content-Security-Policy would block."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "style":
            self.found.append("<style>")
        if tag == "script" and "src" not in names:
            self._in_script = True
        self.found += [f"{tag} {n}=" for n in names if n == "style" or n.startswith("on")]

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append("inline <script>")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"


@pytest.mark.parametrize("page", ["index.html", "docs.html", "login.html"])
def test_the_pages_work_under_their_content_security_policy(page: str):
    parser = _InlineCode()
    parser.feed((STATIC / page).read_text(encoding="utf-8"))
    assert parser.found == []
    # Scripts build elements and set styles through the DOM, never as markup.
    for script in STATIC.glob("*.js"):
        text = script.read_text(encoding="utf-8")
        assert "innerHTML" not in text and "eval(" not in text, script.name
        assert 'setAttribute("style"' not in text and '"style":' not in text, script.name


# ---- sizes: cut off as soon as a limit is passed ------------------------------------------------


def multipart(*parts: tuple[str, str | None, bytes], boundary: str = "b0undary") -> bytes:
    out = []
    for field, filename, data in parts:
        name = f'; filename="{filename}"' if filename is not None else ""
        out.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"{name}\r\n\r\n'.encode()
        )
        out += [data, b"\r\n"]
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


FORM = "multipart/form-data; boundary=b0undary"


def test_an_image_over_its_limit_is_refused_by_name(make_client: Callable[..., TestClient]):
    client = make_client(limits=Limits(max_upload_bytes=256 * 1024))
    photo = (EXAMPLES / "astronaut.jpg").read_bytes()
    body = multipart(("content", "big.jpg", photo + bytes(2**20)), ("style", "s.jpg", photo))
    response = client.post("/api/jobs", content=body, headers={"Content-Type": FORM})
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "content photo 'big.jpg' is larger than 256 KB, the most this server accepts per image"
    )
    assert jobs_of(client) == []


class Counting:
    """An ASGI wrapper that counts the request bytes the app has asked for."""

    def __init__(self, app: Any) -> None:
        self.app, self.received = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counted() -> Any:
            message = await receive()
            self.received += len(message.get("body", b""))
            return message

        await self.app(scope, counted if scope["type"] == "http" else receive, send)


def send_slowly(url: str, head: str, body: bytes, chunk: int = 64 * 1024) -> tuple[int, int]:
    """POST ``body`` to /api/jobs over a raw socket, chunked, a piece at a time, until the server
    answers; returns its status and how many body bytes were sent by then."""
    host, port = url.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())
        answer = b""
        for i in range(0, len(body), chunk):
            if select.select([sock], [], [], 0.002)[0]:
                break  # the server has answered: stop sending, as a browser does
            piece = body[i : i + chunk]
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        sock.settimeout(30)
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    return int(answer.split(b" ", 2)[1]), sent


def test_uploads_are_cut_off_as_they_arrive(tmp_path: Path):
    """Over real sockets: the server stops reading within about a read of the limit, however
    much the client meant to send (30 MB here)."""
    limit = 1 * 2**20
    app = create_app(
        tmp_path / "data", token=TOKEN, runner=never_runs, limits=Limits(max_upload_bytes=limit)
    )
    counting = Counting(app)
    photo = (EXAMPLES / "astronaut.jpg").read_bytes()
    big = multipart(("content", "big.jpg", photo + bytes(30 * 2**20)), ("style", "s.jpg", photo))
    head = (
        f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: {FORM}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    with running_server(app, counting) as url:
        status, _ = send_slowly(url, head, big)
        assert status == 413
        # One image over its limit: cut off within a read or two of it.
        assert counting.received <= limit + 2**20, counting.received

        counting.received = 0
        declared = head.replace("Transfer-Encoding: chunked", "Content-Length: 1000000000")
        with socket.create_connection(url.removeprefix("http://").split(":"), timeout=30) as s:
            s.sendall(declared.encode())
            assert s.recv(64).split(b" ", 2)[1] == b"413"  # answered before any body
        assert counting.received == 0

        # Fields only, no file: the request as a whole is counted as it arrives.
        counting.received = 0
        fields = multipart(*[("size", None, b"6" * 60_000)] * 400)
        status, _ = send_slowly(url, head, fields)
        assert status == 413
        assert counting.received <= app.state.limits.max_request_bytes + 2**20
    assert jobs_of_app(app) == []


def jobs_of_app(app: Any) -> list[Any]:
    return app.state.manager.list()


def test_a_body_that_is_not_a_form_is_refused_plainly(make_client: Callable[..., TestClient]):
    client = make_client()
    response = client.post("/api/jobs", json={"content": "photo.jpg"})
    assert response.status_code == 400 and "multipart/form-data" in response.json()["detail"]
    broken = client.post(
        "/api/jobs",
        content=io.BytesIO(b"--x\r\nnot a part"),
        headers={"Content-Type": "multipart/form-data"},  # no boundary
    )
    assert broken.status_code == 400 and "could not be read" in broken.json()["detail"]
