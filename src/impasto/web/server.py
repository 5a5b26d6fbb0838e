"""Starting the web app under uvicorn: bind, say where to point the browser, stop cleanly."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Any

import uvicorn

from impasto.errors import UsageError
from impasto.web.app import create_app
from impasto.web.jobs import JobManager
from impasto.web.limits import Limits
from impasto.web.security import server_key

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("impasto")) / "serve"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), or a UsageError saying why not."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, not {port}")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as e:
        raise UsageError(
            f"--host '{host}' is not an address this computer knows: {e.strerror}"
        ) from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        hint = "; another program uses it: pick another --port, or --port 0 for any free one"
        raise UsageError(
            f"cannot listen on {host}:{port}: {e.strerror}{hint if port else ''}"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = host
    try:
        address = ipaddress.ip_address(host)
        if address.is_unspecified:  # 0.0.0.0 or ::: this machine is reached as localhost
            shown = "127.0.0.1" if address.version == 4 else "::1"
        address = ipaddress.ip_address(shown)
        if address.version == 6:
            shown = f"[{shown}]"
    except ValueError:
        pass  # a host name
    return f"http://{shown}:{port}/"


class Server(uvicorn.Server):
    """uvicorn's server, which also ends the page's event streams as soon as it is asked to stop
    (uvicorn waits for open connections before it shuts the app down)."""

    def __init__(self, config: uvicorn.Config, manager: JobManager) -> None:
        super().__init__(config)
        self.manager = manager

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.manager.closing.set()
        super().handle_exit(sig, frame)


def make_server(app: Any, *, log_level: str = "info") -> Server:
    config = uvicorn.Config(app, log_level=log_level, access_log=False, timeout_graceful_shutdown=5)
    return Server(config, app.state.manager)


def limits_from_args(args: argparse.Namespace) -> Limits:
    """The --max-* options of `impasto serve`, in the units the server counts in."""
    return Limits.from_options(
        upload_mb=args.max_upload_mb,
        megapixels=args.max_pixels,
        size=args.max_size,
        styles=args.max_styles,
        steps=args.max_steps,
        minutes=args.max_minutes,
        queue=args.max_queue,
        data_mb=args.max_data_mb,
    )


def serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, not {args.workers}")
    limits = limits_from_args(args)
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot use --data-dir '{data_dir}': {e.strerror}") from None
    token = server_key(data_dir, renew=args.new_token)
    sock = bind(args.host, args.port)
    url = f"{url_of(sock, args.host)}?token={token}"
    if args.host not in LOCAL_HOSTS:
        print(
            f"warning: --host {args.host} lets other machines reach this page. Anyone who has its "
            "address (it carries the key) can run jobs on this computer and see every result, "
            "and plain HTTP lets others on the network read it.",
            file=sys.stderr,
        )
    logger = logging.getLogger("impasto.web")
    if not logger.handlers:  # job started/done/failed lines, beside uvicorn's own
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    app = create_app(
        data_dir,
        cache=args.cache_dir,
        limits=limits,
        workers=args.workers,
        token=token,
        host=args.host,
        allow_hosts=args.allow_host,
    )
    server = make_server(app)
    print(f"impasto serve: open {url} in a web browser (Ctrl-C stops the server)", flush=True)
    print(
        f"  results and the page's key are kept in {data_dir} (--new-token makes a new key)",
        flush=True,
    )
    if args.open:
        threading.Timer(1.0, webbrowser.open, [url]).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
