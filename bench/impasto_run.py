"""One impasto run in its own process, for bench/run.py: writes the result, snapshots along the
way, and a JSON record of when each was reached (seconds since this process started, time spent
writing snapshots left out, so they are comparable with the process's wall time).

    python bench/impasto_run.py CONTENT STYLE OUT.png FOLDER '{"size": 500}' [SNAPSHOT_EVERY]
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # before torch is imported: the process's whole life counts

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


def main(argv: list[str]) -> int:
    from impasto import StyleConfig, save_image, stylize
    from impasto.optimize import Progress

    content, style, out, folder, settings = argv[:5]
    every = int(argv[5]) if len(argv) > 5 else 0
    folder_path = Path(folder)
    folder_path.mkdir(parents=True, exist_ok=True)
    config = StyleConfig(**json.loads(settings))
    ends = set()
    for done in range(1, len(config.schedule()) + 1):
        ends.add(sum(n for _, n in config.schedule()[:done]))
    record: dict = {
        "settings": config.to_dict(),
        "schedule": config.schedule(),
        "snapshots": [],
        "steps": [],
    }
    saving = 0.0
    last = {"scale": 1}

    def on_progress(p: Progress) -> None:
        nonlocal saving
        now = time.perf_counter() - STARTED - saving
        record["steps"].append((p.step, p.scale, round(p.elapsed, 4), round(now, 4)))
        # A snapshot every few steps and at the end of each scale (a scale may stop early).
        scale_ended = p.scale != last["scale"]
        if every and (p.step % every == 0 or p.step in ends) or scale_ended:
            t = time.perf_counter()
            name = f"{p.step:04d}.png"
            assert p.image is not None
            save_image(p.image, folder_path / name)
            record["snapshots"].append((p.step, now, name))
            saving += time.perf_counter() - t
        last["scale"] = p.scale

    image = stylize(content, style, config, on_progress=on_progress)
    save_image(image, out)
    record["done_s"] = time.perf_counter() - STARTED - saving
    record["snapshot_writing_s"] = saving
    (folder_path / "run.json").write_text(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
