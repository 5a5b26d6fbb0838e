"""What an engine saves: the fixed cost of a run, first call against later calls.

    python bench/engine.py            # prints a table; paste it into docs/benchmarks.md

In one process, one ``Stylizer``: the first 1-step run pays for reading and verifying the
weights, building the network and measuring the painting; later runs on the same engine (a
new photo, the same painting) pay only for their own step and the photo's targets. Beside it,
the same 1-step run as a separate ``impasto stylize`` process each time, as every peer runs.
Medians of REPEATS, on whatever machine this is (named in the output).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
REPEATS = 5


def main() -> None:
    from measure import machine

    from impasto import StyleConfig, Stylizer

    examples = ROOT / "examples"
    photos = [
        examples / n
        for n in ("astronaut.jpg", "mountains.jpg", "coffee.jpg", "dog.jpg", "pagoda.jpg")
    ]
    painting = examples / "starry_night.jpg"
    config = StyleConfig(size=512, scales=1, iterations=1)
    engine = Stylizer()
    start = time.perf_counter()
    engine.stylize(photos[0], painting, config)
    first = time.perf_counter() - start
    later = []
    for photo in photos[1:] * ((REPEATS + 3) // 4):
        start = time.perf_counter()
        engine.stylize(photo, painting, config)
        later.append(time.perf_counter() - start)
    steps = []
    for _ in range(REPEATS):  # the step alone: the same run with 2 steps, minus the 1-step run
        start = time.perf_counter()
        engine.stylize(photos[1], painting, config.replace(iterations=2))
        steps.append(time.perf_counter() - start - statistics.median(later))
    process = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(REPEATS):
            argv = [
                sys.executable,
                "-m",
                "impasto",
                "stylize",
                str(photos[1]),
                str(painting),
                "-o",
                f"{tmp}/out.png",
                "--size",
                "512",
                "--single-scale",
                "--iterations",
                "1",
                "-q",
            ]
            start = time.perf_counter()
            subprocess.run(argv, check=True)
            process.append(time.perf_counter() - start)
    m = machine()
    step = statistics.median(steps)
    print(
        f"Machine: {m['cpu']}, {m['cores']} cores ({', '.join(m['isa'])}), torch {m['torch']}, "
        f"{m['threads']} threads"
    )
    print("| 1 step at 512 px | seconds | fixed cost (minus one step) |")
    print("|---|---|---|")
    for name, value in [
        ("a new process (`impasto stylize`), median", statistics.median(process)),
        ("first run on a new engine", first),
        (
            "a later run on the same engine, new photo, same painting, median",
            statistics.median(later),
        ),
    ]:
        print(f"| {name} | {value:.2f} | {value - step:.2f} |")
    print(f"| one step alone, median | {step:.2f} | |")


if __name__ == "__main__":
    main()
