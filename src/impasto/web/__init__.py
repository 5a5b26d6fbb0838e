"""``impasto serve``: a local web page to stylize photos and watch the image form.

A thin front over the Python API: ``app`` (the HTTP API and the page), ``security`` (who the
server obeys, and how much a request may carry), ``jobs`` and ``job`` (the queue, its worker
threads, one job), ``limits`` (what one job may cost), ``storage`` (the data folder and its
quota), ``options`` (the form, generated from ``StyleConfig``), ``uploads`` (checking uploaded
images), ``apidoc`` (the API's documentation) and ``server`` (starting uvicorn). The web
framework is the ``web`` extra and is imported only when a server starts: this module is
imported by every ``impasto`` command and must stay light.
"""

from __future__ import annotations

import argparse
import importlib.util

from impasto.errors import UsageError
from impasto.web.limits import MB, Limits

DEFAULTS = Limits()

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
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="jobs run at the same time; the others wait in a queue (default: 1)",
    )
    limits = parser.add_argument_group(
        "what one job may cost (a refusal names the option that allows more)"
    )
    limits.add_argument(
        "--max-size",
        type=int,
        default=DEFAULTS.max_size,
        metavar="PX",
        help="the largest image a job makes: the output's long side, and each style image's "
        f"at its --style-scale (default: {DEFAULTS.max_size})",
    )
    limits.add_argument(
        "--max-steps",
        type=int,
        default=DEFAULTS.max_steps,
        metavar="N",
        help=f"the most steps a job takes, all its scales together (default: {DEFAULTS.max_steps})",
    )
    limits.add_argument(
        "--max-minutes",
        type=float,
        default=DEFAULTS.max_seconds / 60,
        metavar="MIN",
        help="a job running longer stops after its current step and keeps its picture so far "
        f"(default: {DEFAULTS.max_seconds / 60:g}; 0 = no limit)",
    )
    limits.add_argument(
        "--max-styles",
        type=int,
        default=DEFAULTS.max_styles,
        metavar="N",
        help=f"the most style images a job blends (default: {DEFAULTS.max_styles})",
    )
    limits.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULTS.max_upload_bytes / MB,
        metavar="MB",
        help="largest image file accepted, in megabytes; an upload is cut off as soon as it "
        f"passes it (default: {DEFAULTS.max_upload_bytes / MB:g})",
    )
    limits.add_argument(
        "--max-pixels",
        type=float,
        default=DEFAULTS.max_pixels / 1e6,
        metavar="MP",
        help=f"largest image accepted, in megapixels (default: {DEFAULTS.max_pixels / 1e6:g})",
    )
    limits.add_argument(
        "--max-queue",
        type=int,
        default=DEFAULTS.max_queue,
        metavar="N",
        help=f"the most jobs waiting for a worker; more are refused (default: {DEFAULTS.max_queue})",
    )
    limits.add_argument(
        "--max-data-mb",
        type=float,
        default=DEFAULTS.max_data_bytes / MB,
        metavar="MB",
        help="the most the jobs in --data-dir may hold; past it the oldest finished jobs are "
        f"removed, failed and cancelled ones first (default: {DEFAULTS.max_data_bytes / MB:g}; "
        "0 = no limit)",
    )
    access = parser.add_argument_group("who may use it")
    access.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another name this computer is reached by (a LAN name, a reverse proxy's); "
        "requests naming any other host are refused (repeatable)",
    )
    access.add_argument(
        "--new-token",
        action="store_true",
        help="make a new key for the page's address: addresses printed before stop working",
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
