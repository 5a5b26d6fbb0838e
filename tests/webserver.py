"""A real impasto serve for tests that need real sockets (a browser, a body sent in pieces):
the app under uvicorn on a free port of 127.0.0.1, in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from impasto.web.server import Server, bind, url_of


@contextmanager
def running_server(app: Any, asgi: Any = None, log_level: str = "warning") -> Iterator[str]:
    """Serve ``app`` (or ``asgi``, a wrapper around it) until the block ends; yields its URL."""
    import uvicorn

    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(asgi or app, log_level=log_level, access_log=False)
    server = Server(config, app.state.manager)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield url_of(sock, "127.0.0.1").rstrip("/")
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
