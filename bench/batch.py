"""Many photos in one style: what one engine saves, and what Ray costs.

    python bench/batch.py            # 8 photos x 1 style at 512 px, the default schedule
    python bench/batch.py --smoke    # 3 photos at 64 px, 3 steps: proves the script works

Four ways to run the same batch, each timed as a whole command from a cold start (the process,
the weights, Ray): separate ``impasto stylize`` processes, one after the other, as every peer
runs; one ``impasto batch`` (one engine for all); and ``impasto batch --backend ray`` with 1 and
with 2 workers on a Ray it starts itself. Then, in this process, Ray's own costs: starting Ray,
a worker ready with its engine, and the time Ray adds to each item (the same tiny job run on a
Ray worker and in-process, alternately, at the same thread count).

On a 2-core machine two workers share the cores one engine would use, so the Ray rows cannot
show scaling; what decides it on a real cluster is the per-item overhead against an item's
time. The full run writes bench/batch_results.md and .json; --smoke writes them under
bench/cache/ instead, so a smoke run never stands in for a measurement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
PHOTOS = ("astronaut", "mountains", "coffee", "dog", "pagoda", "city_night")
STYLE = ROOT / "examples" / "starry_night.jpg"
OVERHEAD_JOBS = 20  # tiny jobs each way for Ray's per-item overhead


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does the script work")
    parser.add_argument("--photos", type=int, default=8, help="photos in the batch (default 8)")
    args = parser.parse_args()
    from run import machine

    n = 3 if args.smoke else args.photos
    # The default run at 512 px (60 + 40 steps); the smoke run one scale of 3 steps at 64 px.
    options = ["--size", "64", "--scales", "1", "--iterations", "3"] if args.smoke else []
    out_dir = BENCH / "cache" if args.smoke else BENCH
    out_dir.mkdir(exist_ok=True)
    _impasto("weights", "fetch", "vgg19", quiet=False)  # decoded once, before any timing
    with tempfile.TemporaryDirectory() as tmp:
        folder = _photos(Path(tmp) / "photos", n)
        rows = {}
        commands = {
            "separate `impasto stylize` processes": None,
            "`impasto batch` (one engine)": [],
            "`impasto batch --backend ray --workers 1`": ["--backend", "ray", "--workers", "1"],
            "`impasto batch --backend ray --workers 2`": ["--backend", "ray", "--workers", "2"],
        }
        for i, (name, extra) in enumerate(commands.items()):
            out = Path(tmp) / f"out{i}"
            start = time.perf_counter()
            if extra is None:
                out.mkdir()
                for photo in sorted(folder.iterdir()):
                    _impasto("stylize", photo, STYLE, "-o", out / f"{photo.stem}.png", *options)
            else:
                _impasto("batch", folder, "--style", STYLE, "-o", out, *options, *extra)
            seconds = time.perf_counter() - start
            rows[name] = seconds
            print(f"{name}: {seconds:.1f} s, {n / seconds * 3600:.0f} items/hour", flush=True)
        ray_costs = _ray_costs(32 if args.smoke else 512, 3 if args.smoke else OVERHEAD_JOBS)
    m = machine()
    report = _report(m, n, rows, ray_costs, args.smoke)
    (out_dir / "batch_results.md").write_text(report)
    (out_dir / "batch_results.json").write_text(
        json.dumps(
            {"machine": m, "photos": n, "smoke": args.smoke, "seconds": rows, "ray": ray_costs},
            indent=2,
        )
        + "\n"
    )
    print(report)
    print(f"wrote {out_dir.relative_to(ROOT)}/batch_results.md and .json")


def _photos(folder: Path, n: int) -> Path:
    """``n`` photos: the examples, then their mirror images (other pixels, the same cost)."""
    folder.mkdir(parents=True)
    for i in range(n):
        name = PHOTOS[i % len(PHOTOS)]
        image = Image.open(ROOT / "examples" / f"{name}.jpg").convert("RGB")
        if i >= len(PHOTOS):
            image, name = ImageOps.mirror(image), f"{name}_mirrored"
        image.save(folder / f"{name}.jpg", quality=95)
    return folder


def _impasto(*argv: object, quiet: bool = True) -> None:
    command = [sys.executable, "-m", "impasto", *map(str, argv), *(["-q"] if quiet else [])]
    subprocess.run(command, check=True)


def _ray_costs(size: int, jobs: int) -> dict[str, float]:
    """Seconds to start Ray, to have one worker ready with its engine, and that Ray adds to an
    item: a job's round trip (the photo's bytes there, the pixels back) less the time it took
    on the worker, for a 1-step job whose output is ``size`` px (what travels, not the work,
    is what Ray adds to)."""
    import ray

    from impasto.batching.plan import sha256_of
    from impasto.batching.ray_backend import _actor_class
    from impasto.batching.work import Job
    from impasto.config import StyleConfig

    config = StyleConfig(size=size, scales=1, iterations=1)
    start = time.perf_counter()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    started = time.perf_counter() - start
    try:
        start = time.perf_counter()
        worker = _actor_class(ray).options(num_cpus=1).remote("cpu", None, None, config, 1)
        assert ray.get(worker.ready.remote()) == ""
        ready = time.perf_counter() - start
        photo = (ROOT / "examples" / "mountains.jpg").read_bytes()
        style = STYLE.read_bytes()
        style_ref = ray.put(style)
        job = Job(0, "mountains.jpg", photo, STYLE.name, sha256_of(style), config)
        ray.get(worker.run.remote(job, style_ref))  # the first job also measures the style
        added, inside = [], []
        for _ in range(jobs):
            t = time.perf_counter()
            outcome = ray.get(worker.run.remote(job, style_ref))
            added.append(time.perf_counter() - t - outcome.seconds)
            inside.append(outcome.seconds)
    finally:
        ray.shutdown()
    return {
        "start_s": started,
        "worker_ready_s": ready,
        "item_s": statistics.median(inside),
        "per_item_overhead_s": statistics.median(added),
        "jobs": jobs,
        "photo_bytes": len(photo),
        "result_bytes": outcome.image.nbytes,
    }


def _report(
    m: dict, n: int, rows: dict[str, float], ray_costs: dict[str, float], smoke: bool
) -> str:
    base = next(iter(rows.values()))
    size = (
        "64 px, one scale of 3 steps (smoke run: not a measurement)"
        if smoke
        else "512 px, the default schedule (60 + 40 steps)"
    )
    lines = [
        f"{n} photos x 1 style, {size}; {m['cpu']}, {m['cores']} cores "
        f"({', '.join(m['isa'])}), torch {m['torch']}.",
        "",
        "| how | wall time | items per hour | vs separate processes |",
        "|---|---|---|---|",
    ]
    for name, seconds in rows.items():
        lines.append(
            f"| {name} | {seconds:.1f} s | {n / seconds * 3600:.0f} | {base / seconds:.2f}x |"
        )
    r = ray_costs
    lines += [
        "",
        f"Ray's own costs: starting a local Ray {r['start_s']:.1f} s; a worker ready with its "
        f"engine {r['worker_ready_s']:.1f} s; {r['per_item_overhead_s'] * 1000:.0f} ms added to "
        f"each item (median of {r['jobs']} 1-step jobs: "
        f"the round trip less the {r['item_s']:.2f} s spent on the worker, with a "
        f"{r['photo_bytes'] / 1e3:.0f} kB photo out and {r['result_bytes'] / 1e6:.1f} MB of "
        "pixels back).",
        "",
        f"On {m['cores']} cores the Ray rows cannot show scaling: two workers share the cores "
        "that one engine uses alone.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
