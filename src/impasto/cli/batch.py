"""``impasto batch``: many photos in one or more styles, resumable, on this machine or on Ray."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from impasto.cli.options import add_config_options, config_from_args
from impasto.cli.stylize import CACHE_HELP

# Exit codes besides 0, 1, 2 and 130: 100 + the number of items that failed, up to 125.
FAILED_BASE = 100
FAILED_MAX = 25
EXIT_CODES = (
    "exit codes: 0 every item done; 101-124 that many items failed (1-24), 125 25 or more "
    "(the others were written; the manifest says why each failed); 2 bad arguments, nothing "
    "run or written; 1 a failure of the whole batch (weights, Ray); 130 stopped with Ctrl-C "
    "(run the same command to go on)"
)


def add_parsers(sub: Any) -> None:
    ba = sub.add_parser(
        "batch",
        help="paint many photos in one or more styles, resumable, here or on a Ray cluster",
        description="Paint every PHOTO in every --style (or the rows of --pairs), each result "
        "written to the output folder as PHOTO__STYLE.png with its settings inside, and "
        "manifest.jsonl recording every item. Run again, it does only what is missing.",
        epilog=EXIT_CODES,
    )
    ba.add_argument(
        "inputs",
        nargs="*",
        metavar="PHOTO",
        help="photo files, folders (the images in them) or quoted patterns ('trip/*.jpg', "
        "'photos/**/*.png')",
    )
    ba.add_argument(
        "--style",
        dest="styles",
        action="append",
        default=[],
        metavar="STYLE",
        help="a style image, folder or pattern (repeatable: every photo in every style)",
    )
    ba.add_argument(
        "--pairs",
        metavar="CSV",
        help="a CSV of content,style rows instead; under a header row, also the columns "
        "output (a file name) and any style option (style_weight, size, ...) for that row",
    )
    ba.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="the folder for the results and manifest.jsonl (made if missing)",
    )
    ba.add_argument("--force", action="store_true", help="redo the items already done too")
    ba.add_argument(
        "--format",
        choices=("png", "jpg", "webp", "tif"),
        default="png",
        help="file format of the results (default: png)",
    )
    ba.add_argument(
        "--bit-depth",
        type=int,
        choices=(8, 16),
        default=8,
        help="bits per channel of the results; 16 with png or tif (default: 8)",
    )
    ba.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: this process, one engine (default); ray: Ray workers (pip install "
        "'impasto[ray]')",
    )
    ba.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="the Ray cluster to use (default: $RAY_ADDRESS, else a Ray started for this batch "
        "on this machine)",
    )
    ba.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="Ray workers (default: one per GPU, else one per machine with all its cores)",
    )
    ba.add_argument(
        "--dry-run", action="store_true", help="list what would run and what is done; run nothing"
    )
    ba.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    ba.add_argument("--cache-dir", help=CACHE_HELP)
    add_config_options(ba)
    ba.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from impasto.batching.run import batch

    bar = BatchBar(args.quiet)
    job = batch(
        args.inputs,
        args.styles,
        config_from_args(args),
        pairs=args.pairs,
        output=args.output,
        backend=args.backend,
        address=args.address,
        workers=args.workers,
        force=args.force,
        image_format=args.format,
        bit_depth=args.bit_depth,
        on_progress=bar.step,
        cache=args.cache_dir,
    )
    if args.dry_run:
        return _dry_run(job, args.output)
    if not job.todo:
        _say(
            args.quiet,
            f"nothing to do: all {len(job.items)} items are done in {args.output} "
            "(--force redoes them)",
        )
        return 0
    bar.start(len(job.todo), f"{len(job.todo)} to run, {len(job.done)} done already")
    written = failed = 0
    start = time.perf_counter()
    interrupted = False
    with job, _stop_on_ctrl_c(job, bar):
        try:
            for result in job:
                bar.finished(result)
                if result.ok:
                    written += 1
                else:
                    failed += 1
                    bar.write(f"impasto: failed: {result.item.label}: {result.reason}")
        except KeyboardInterrupt:
            interrupted = True
        finally:
            bar.close()  # an error of the whole batch then prints on a line of its own
    stopped = interrupted or job.stopped
    left = len(job.todo) - written - failed
    took = _duration(time.perf_counter() - start)
    summary = f"{written} written, {failed} failed" + (f", {left} not run" if left else "")
    _say(args.quiet, f"{summary} in {took}; manifest: {job.folder}/manifest.jsonl")
    if stopped:
        print("impasto: stopped; run the same command to go on", file=sys.stderr)
        return 130
    return FAILED_BASE + min(failed, FAILED_MAX) if failed else 0


class BatchBar:
    """One tqdm bar for the batch (items, with the running items' steps as fractions, so the
    estimate of the time left moves from the first step), drawn once work starts."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.total = 0
        self.heading = ""
        self.done = 0
        self.running: dict[str, tuple[int, int]] = {}  # output name -> (step, total)

    def start(self, total: int, heading: str) -> None:
        self.total, self.heading = total, heading

    def _draw(self) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            print(f"impasto batch: {self.heading}", file=sys.stderr)
            self.bar = tqdm(
                total=self.total,
                unit="item",
                file=sys.stderr,
                dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.1f}/{total} items [{elapsed}<{remaining}{postfix}]",
            )
        fractions = sum(step / max(total, 1) for step, total in self.running.values())
        self.bar.n = min(self.total, self.done + fractions)
        shown = [f"{name} {s}/{t}" for name, (s, t) in list(self.running.items())[:2]]
        more = len(self.running) - len(shown)
        self.bar.set_postfix_str(
            ", ".join(shown) + (f" +{more}" if more > 0 else ""), refresh=False
        )
        self.bar.refresh()

    def step(self, p: Any) -> None:
        """An ItemProgress: how far one running item is."""
        self.running[p.item.name] = (p.step, p.total_steps)
        self._draw()

    def finished(self, result: Any) -> None:
        self.running.pop(result.item.name, None)
        self.done += 1
        self._draw()

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@contextmanager
def _stop_on_ctrl_c(job: Any, bar: BatchBar) -> Iterator[None]:
    """The first Ctrl-C lets the running items finish and starts no other; the second stops
    at once (nothing is half-written either way: outputs and manifest lines are whole)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if job.stopped:
            raise KeyboardInterrupt
        job.stop()
        bar.write("impasto: stopping after the running items; Ctrl-C again to stop now")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _dry_run(job: Any, output: str) -> int:
    done = set(job.done)
    for item in job.items:
        state = "done" if item in done else "run "
        print(f"{state} {item.content} x {item.style} -> {output}/{item.name}")
    print(f"{len(job.todo)} to run, {len(job.done)} done already", file=sys.stderr)
    return 0


def _say(quiet: bool, line: str) -> None:
    if not quiet:
        print(f"impasto batch: {line}", file=sys.stderr)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
