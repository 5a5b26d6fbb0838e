"""``impasto serve``: a local web page to stylize photos and watch the image form.

A thin front over the Python API: ``app`` (the HTTP API and the page), ``jobs`` (the queue and
its worker threads), ``options`` (the form, generated from ``StyleConfig``), ``uploads``
(checking uploaded images) and ``server`` (starting uvicorn). The web framework is the ``web``
extra and is imported only when a server starts: this module is imported by every ``impasto``
command and must stay light.
"""

from __future__ import annotations

import argparse
import importlib.util

from impasto.errors import UsageError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MISSING_EXTRA = "impasto serve needs the web extra: pip install 'impasto[web]'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``impasto serve``."""
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default: {DEFAULT_HOST}, this computer only; "
        "anything else lets other machines in, with a warning)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on (default: {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where jobs and results are kept across restarts "
        "(default: a 'serve' folder in the user data directory)",
    )
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where decoded weights are cached (default: $IMPASTO_HOME or the user cache dir)",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=25.0,
        metavar="MB",
        help="largest image file accepted, in megabytes (default: 25)",
    )
    parser.add_argument(
        "--max-pixels",
        type=float,
        default=50.0,
        metavar="MP",
        help="largest image accepted, in megapixels (default: 50)",
    )
    parser.add_argument(
        "--max-size",
        type=int,
        default=2048,
        metavar="PX",
        help="largest --size a job may ask for (default: 2048)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="jobs run at the same time; the others wait in a queue (default: 1)",
    )
    parser.add_argument("--open", action="store_true", help="open the page in a web browser")


def run(args: argparse.Namespace) -> int:
    """Start the server and serve until Ctrl-C; returns the exit code."""
    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing or not (
        importlib.util.find_spec("python_multipart") or importlib.util.find_spec("multipart")
    ):
        raise UsageError(MISSING_EXTRA)
    from impasto.web.server import serve

    return serve(args)
