"""Who the server obeys: its own page, at its own address, holding its key; and how much a
request may carry.

``impasto serve`` runs jobs on the user's machine and shows their photos, so a page from
elsewhere must not be able to do either. Three checks, in :class:`Guard`, before any route:

- **Host.** Every request must name the server by an address it really has (its listening
  address, ``localhost``, another IP literal when it listens on more than loopback, or a name
  given with ``--allow-host``). A DNS-rebinding page reaches 127.0.0.1 under its own name, and
  is refused here, so it can neither read the job list nor fetch results.
- **Origin.** A request that changes anything (POST, DELETE...) from a browser must come from
  the server's own origin: a foreign or ``null`` ``Origin`` is refused, as is any API request
  whose ``Sec-Fetch-Site`` says another page sent it. This is what stops a page served from
  another port of 127.0.0.1, which counts as the same *site* and so carries the cookie below.
- **The key.** Every ``/api/`` request must hold the server's key: the cookie that the page's
  address (``/?token=KEY``, printed by ``impasto serve``, as Jupyter does) sets, an
  ``Authorization: Bearer KEY`` header, or ``?token=KEY``. The key is made once per data
  folder and kept in it, readable by its owner only, so bookmarks survive a restart;
  ``--new-token`` replaces it.

Every answer also carries headers that keep the browser strict: ``nosniff``, a
Content-Security-Policy that allows the page's own files only, no framing, no referrer (the
key never leaks into another site's logs).

:class:`BodyLimit` refuses a request as a whole past its size, from its Content-Length before
anything is read and by counting as it arrives; :func:`read_form` parses the job's form with
Starlette's multipart parser and cuts an image off the moment it passes its own limit, so no
upload is stored in full before it is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from fastapi import HTTPException, Request
from starlette.datastructures import FormData, Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from impasto.errors import UsageError
from impasto.files import atomic_write
from impasto.web.uploads import UploadTooLarge, label_of

KEY_FILE = "token"
LOCAL_NAMES = ("localhost",)
# The page's own files and nothing else; blob: for the thumbnails of the images chosen.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"content-security-policy": CSP.encode(),
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
    b"cross-origin-resource-policy": b"same-origin",
    b"cross-origin-opener-policy": b"same-origin",
}
CHANGES_STATE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
COOKIE_AGE = 30 * 24 * 3600  # seconds: a month, as the key itself outlives restarts
_KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,128}")


# -- the key -----------------------------------------------------------------------------------


def server_key(data_dir: Path, *, renew: bool = False) -> str:
    """The key kept in ``data_dir`` (made on first use, or anew with ``renew``)."""
    path = Path(data_dir) / KEY_FILE
    if not renew:
        try:
            kept = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            kept = ""
        except OSError as e:
            raise UsageError(f"cannot read the server's key in '{path}': {e.strerror}") from None
        if _KEY_SHAPE.fullmatch(kept):
            return kept
    key = secrets.token_urlsafe(24)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot use the data folder '{path.parent}': {e.strerror}") from None
    # Only its owner may read it (atomic_write's temporary file is created 0600).
    with atomic_write(path, "w", permissions_like_target=False) as f:
        f.write(key + "\n")
    return key


class Key:
    """The server's key and the ways a request may present it."""

    def __init__(self, token: str) -> None:
        if not _KEY_SHAPE.fullmatch(token):
            raise UsageError("the server's key must be 16 to 128 letters, digits, '-' or '_'")
        self.token = token
        # Named after the key, so that two servers on one host (cookies ignore the port) keep
        # their own cookies.
        self.cookie = "impasto-" + hashlib.sha256(token.encode()).hexdigest()[:12]

    def matches(self, text: str | None) -> bool:
        return text is not None and hmac.compare_digest(text.encode(), self.token.encode())

    def presented(self, headers: Headers, query: str) -> bool:
        """Whether the request holds the key: cookie, bearer token or ``?token=``."""
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and self.matches(auth[7:].strip()):
            return True
        if self.matches(_cookie(headers, self.cookie)):
            return True
        return any(self.matches(t) for t in parse_qs(query).get("token", ()))

    def set_cookie(self, response: Response) -> None:
        """Remember the key in the browser: never sent by another site's requests (Strict),
        never readable by scripts (HttpOnly)."""
        response.set_cookie(
            self.cookie, self.token, max_age=COOKIE_AGE, httponly=True, samesite="strict"
        )


def _cookie(headers: Headers, name: str) -> str | None:
    for header in headers.getlist("cookie"):
        for part in header.split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
    return None


# -- the address -------------------------------------------------------------------------------


class Hosts:
    """The names a request's ``Host`` may give: see the module's docstring."""

    def __init__(self, listen: str, allowed: Iterable[str] = ()) -> None:
        self.names = {n.lower().rstrip(".") for n in (*LOCAL_NAMES, *allowed) if n}
        try:
            address = ipaddress.ip_address(listen.strip("[]"))
            self.loopback_only = address.is_loopback
        except ValueError:  # a host name: it is one of the names, and only loopback IPs pass
            self.names.add(listen.lower().rstrip("."))
            self.loopback_only = listen.lower() in LOCAL_NAMES
        self.shown = ", ".join(dict.fromkeys([listen, *sorted(self.names)]))

    def allows(self, host: str) -> bool:
        try:
            name = (urlsplit("//" + host).hostname or "").rstrip(".")
        except ValueError:
            return False
        if not name:
            return False
        if name in self.names:
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False  # a name nobody declared: maybe a DNS-rebinding page
        return address.is_loopback or not self.loopback_only


# -- the middleware ----------------------------------------------------------------------------


class Guard:
    """Refuse what did not come from the server's own page or a holder of its key; add the
    strict headers to every answer."""

    def __init__(self, app: ASGIApp, *, key: Key, hosts: Hosts, protected: str = "/api/") -> None:
        self.app, self.key, self.hosts, self.protected = app, key, hosts, protected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_headers(send)
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self.hosts.allows(host):
            detail = (
                f"this server answers to its own addresses ({self.hosts.shown}), not to "
                f"'{host}'; if that name is this computer's, start impasto serve with "
                f"--allow-host {host.rsplit(':', 1)[0] or 'NAME'}"
            )
            await JSONResponse({"detail": detail}, status_code=400)(scope, receive, send)
            return
        api = scope["path"].startswith(self.protected)
        foreign = _foreign(headers, host, scope["method"] in CHANGES_STATE, api)
        if foreign:
            detail = (
                f"refused: this request came from {foreign}; impasto serve obeys its own page "
                "only (and programs that hold its key)"
            )
            await JSONResponse({"detail": detail}, status_code=403)(scope, receive, send)
            return
        if api and not self.key.presented(headers, scope.get("query_string", b"").decode()):
            detail = (
                "this server needs its key: open the address impasto serve printed (it ends "
                "in ?token=...), or send the key as 'Authorization: Bearer KEY'"
            )
            await JSONResponse(
                {"detail": detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _foreign(headers: Headers, host: str, changes_state: bool, api: bool) -> str | None:
    """Who sent a request from another page (for the message), or None if it came from the
    server's own page or from no page at all (a program)."""
    site = headers.get("sec-fetch-site")
    if api and site not in (None, "same-origin", "none"):
        return f"another web page ({site}: {headers.get('origin') or 'unknown origin'})"
    origin = headers.get("origin")
    if changes_state and origin is not None:
        try:
            netloc = urlsplit(origin).netloc.lower()
        except ValueError:
            netloc = ""
        if origin == "null" or netloc != host.lower():
            return f"another web page ({origin})"
    return None


def _with_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            extra = [(k, v) for k, v in HEADERS.items() if k not in present]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


# -- sizes -------------------------------------------------------------------------------------


class BodyLimit:
    """Refuse a request body larger than ``max_bytes`` (HTTP 413): at once from its
    Content-Length, or the moment the bytes received pass it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"the upload is larger than this server accepts ({self.max_bytes / 2**20:.0f} MB in all)"
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, detail=detail)
            return message

        await self.app(scope, counted, send)


class _LimitedParser(MultiPartParser):
    """Starlette's multipart parser, cutting off any file past ``max_file_bytes`` as it
    arrives (it would otherwise be spooled to disk whole before anyone looked at its size)."""

    def __init__(self, request: Request, *, max_file_bytes: int, max_files: int) -> None:
        super().__init__(request.headers, request.stream(), max_files=max_files, max_fields=200)
        self.max_file_bytes = max_file_bytes
        self._file_bytes = 0

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        self._file_bytes = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._current_part
        if part.file is not None:
            self._file_bytes += end - start
            if self._file_bytes > self.max_file_bytes:
                label = label_of(part.field_name, part.file.filename or "")
                raise UploadTooLarge(
                    f"{label} is larger than {_size(self.max_file_bytes)}, the most this server "
                    "accepts per image"
                )
        super().on_part_data(data, start, end)


async def read_form(request: Request, *, max_file_bytes: int, max_files: int) -> FormData:
    """The job's multipart form, each file cut off past ``max_file_bytes`` (HTTP 413);
    malformed or non-multipart bodies are HTTP 400."""
    kind = request.headers.get("content-type", "")
    if not kind.lower().startswith("multipart/form-data"):
        raise HTTPException(
            400, detail="send the images and options as multipart/form-data (curl -F)"
        )
    parser = _LimitedParser(request, max_file_bytes=max_file_bytes, max_files=max_files)
    try:
        return await parser.parse()
    except UploadTooLarge as e:
        raise HTTPException(413, detail=str(e)) from None
    except MultiPartException as e:
        raise HTTPException(400, detail=f"the form could not be read: {e.message}") from None


def _size(n: int) -> str:
    return f"{n / 2**20:.3g} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB"
