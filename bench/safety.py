"""What the safety limits cost and save, as measurements on this machine.

    python bench/safety.py            # prints three tables; paste them into docs/benchmarks.md
    python bench/safety.py --smoke    # small sizes: proves the script works, figures meaningless

1. Huge inputs: reading a photo to use it at 512 px, whole (every pixel to float32, then
   resized, as impasto did before) against decoded reduced (``load_image(fit=512)``): wall time
   (of the read and resize alone) and peak resident memory of a child process each
   (``bench/measure.py``; the peak includes the interpreter and torch), for the issue's
   13000 x 13000 grey PNG and a 12000 x 9000 JPEG. Medians of REPEATS alternating runs.
2. An oversized upload: a 30 MB photo sent to ``impasto serve`` (limit 25 MB per image), in
   pieces over a real socket: how much the server read before it answered 413, and how long
   the answer took.
3. The checks on every request (Host, Origin, key, headers): the time a request to a trivial
   ASGI app takes behind the Guard and without it, driven directly (no sockets, no client), so
   that the checks are all that differs. A step of a run takes about a second; this is to
   show the checks cost nothing next to it.

The test files are made in a temporary folder; nothing is written elsewhere.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))
REPEATS = 3

READ = """
import sys, time
from impasto.image import load_image, resize_long_side
start = time.perf_counter()
fit = None if sys.argv[2] == "whole" else int(sys.argv[3])
image = load_image(sys.argv[1], fit=fit)
resize_long_side(image, int(sys.argv[3]))
print(time.perf_counter() - start)
"""


def huge_inputs(folder: Path, smoke: bool) -> tuple[int, list[tuple[str, str, float, float]]]:
    from measure import run_measured
    from PIL import Image

    from tests.image_helpers import grey_png

    side, (jw, jh), fit = (3000, (2400, 1800), 256) if smoke else (13000, (12000, 9000), 512)
    png = grey_png(folder / "grey.png", side, side, level=128)
    jpeg = folder / "photo.jpg"
    photo = Image.open(ROOT / "examples" / "mountains.jpg").convert("RGB")
    photo.resize((jw, jh), Image.Resampling.BICUBIC).save(jpeg, quality=90)
    rows = []
    for label, path in ((f"{side} x {side} grey PNG", png), (f"{jw} x {jh} JPEG", jpeg)):
        times: dict[str, list[float]] = {"whole": [], "reduced": []}
        peaks: dict[str, list[float]] = {"whole": [], "reduced": []}
        for _ in range(1 if smoke else REPEATS):
            for how in ("whole", "reduced"):
                argv = [sys.executable, "-c", READ, str(path), how, str(fit)]
                measured = run_measured(argv, folder / f"{how}.log")
                times[how].append(float(measured.stdout.split()[-1]))  # without start-up
                peaks[how].append(measured.peak_rss_mb)
        for how in ("whole", "reduced"):
            rows.append((label, how, statistics.median(times[how]), statistics.median(peaks[how])))
    return fit, rows


def oversized_upload(folder: Path, smoke: bool) -> tuple[int, int, int, float]:
    from impasto.web.app import create_app
    from impasto.web.limits import Limits
    from tests.webserver import running_server

    limit = (2 if smoke else 25) * 2**20
    size = (6 if smoke else 30) * 2**20
    app = create_app(
        folder / "data", token="bench-key-0123456789abcdef", limits=Limits(max_upload_bytes=limit)
    )
    received = 0

    async def counting(scope, receive, send):  # type: ignore[no-untyped-def]
        async def counted():  # type: ignore[no-untyped-def]
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            return message

        await app(scope, counted if scope["type"] == "http" else receive, send)

    photo = (ROOT / "examples" / "astronaut.jpg").read_bytes()
    head = (
        "POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Authorization: Bearer bench-key-0123456789abcdef\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    part = b'--b\r\nContent-Disposition: form-data; name="content"; filename="big.jpg"\r\n\r\n'
    body = part + photo + bytes(size - len(photo)) + b"\r\n--b--\r\n"
    with running_server(app, counting, log_level="critical") as url:
        host, port = url.removeprefix("http://").split(":")
        start = time.perf_counter()
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(head.encode())
            sent = 0
            sock.setblocking(False)
            answer = b""
            while not answer:
                try:
                    answer = sock.recv(64)
                    break
                except BlockingIOError:
                    pass
                if sent < len(body):
                    piece = body[sent : sent + 65536]
                    try:
                        sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                        sent += len(piece)
                    except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                        time.sleep(0.001)
            took = time.perf_counter() - start
    status = int(answer.split(b" ", 2)[1])
    assert status == 413, answer
    return size, limit, received, took


def guard_cost(smoke: bool) -> tuple[float, float]:
    """Microseconds per request of a trivial ASGI app, bare and behind the Guard, driven
    directly (no sockets, no client), so that the checks are all that differs."""
    import asyncio

    from impasto.web.security import Guard, Hosts, Key

    async def inner(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"[]"})

    token = "bench-key-0123456789abcdef"
    guarded = Guard(inner, key=Key(token), hosts=Hosts("127.0.0.1"))
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/jobs",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"sec-fetch-site", b"same-origin"),
            (b"cookie", b"theme=dark; other=1"),
        ],
    }

    async def receive():  # type: ignore[no-untyped-def]
        return {"type": "http.request", "body": b""}

    async def send(message):  # type: ignore[no-untyped-def]
        pass

    async def rate(app, n: int) -> float:  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        for _ in range(n):
            await app(scope, receive, send)
        return (time.perf_counter() - start) / n * 1e6

    n = 2000 if smoke else 50000
    costs: dict[str, list[float]] = {"bare": [], "guarded": []}
    for _ in range(1 if smoke else REPEATS):
        costs["bare"].append(asyncio.run(rate(inner, n)))
        costs["guarded"].append(asyncio.run(rate(guarded, n)))
    return statistics.median(costs["bare"]), statistics.median(costs["guarded"])


def main() -> None:
    import logging

    # After its 413 the server closes the connection while the client is still sending, as
    # intended; asyncio logs that as an error.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, one repeat")
    args = parser.parse_args()
    from run import machine

    m = machine()
    print(
        f"Machine: {m['cpu']}, {m['cores']} cores ({', '.join(m['isa'])}), torch {m['torch']}"
        + (" -- SMOKE RUN, figures meaningless" if args.smoke else "")
    )
    with tempfile.TemporaryDirectory(prefix="impasto-bench-") as tmp:
        folder = Path(tmp)
        fit, rows = huge_inputs(folder, args.smoke)
        print(f"\n| input, used at {fit} px | read | seconds (read + resize) | peak memory |")
        print("|---|---|---|---|")
        for label, how, wall, peak in rows:
            print(f"| {label} | {how} | {wall:.2f} | {peak / 1024:.2f} GB |")
        size, limit, received, took = oversized_upload(folder, args.smoke)
        print("\n| upload | limit per image | read by the server before its 413 | answer after |")
        print("|---|---|---|---|")
        print(
            f"| {size / 2**20:.0f} MB photo | {limit / 2**20:.0f} MB | "
            f"{received / 2**20:.1f} MB | {took:.2f} s |"
        )
        bare, guarded = guard_cost(args.smoke)
        print("\n| a request to a trivial app | microseconds |")
        print("|---|---|")
        print(f"| bare | {bare:.1f} |")
        print(f"| behind the Guard (Host, Origin, key, headers) | {guarded:.1f} |")


if __name__ == "__main__":
    main()
