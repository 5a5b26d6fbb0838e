"""Print size in tiles: peak memory against output size, the cost of a step in tiles, a print.

    python bench/tiling.py                 # all three parts (several hours on a 2-core CPU)
    python bench/tiling.py --only memory   # or speed, or print, or several: memory,speed
    python bench/tiling.py --smoke         # tiny sizes: proves the script runs, measures nothing

1. memory: for each of --sizes, a child process paints the astronaut (square) in Starry Night's
   style: one step at 256 px, then --steps steps at the size (enough to fill the L-BFGS history
   there), writing a checkpoint every 2 steps and the output at the end, so its peak holds what
   a real run holds. Tiled (--tile) at every size; in one piece (--tile 0) where impasto's own
   estimate fits the memory available. Peak resident memory is the child's own (wait4).
2. speed: seconds per step per megapixel at --speed-sizes, tiled against in one piece, the two
   alternating --repeats times in this one run (ratios only: the machine's load moves both).
3. print: mountains x Starry Night at --print-size with the default schedule (tiled as memory
   requires), and a figure: the whole print, a crop of it at 100%, and a 512 px run at 100%
   whose style image is as many pixels across as the print's (--style-scale
   --print-style-scale x print-size / 512), so the strokes should be the same size.

Writes bench/tiling.md and bench/tiling.json, and for the print bench/tiling_print.jpg (the
figure) and bench/tiling_print_full.jpg (the whole print).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(BENCH))

from measure import run_measured  # noqa: E402

MEMORY_PAIR = ("astronaut.jpg", "starry_night.jpg")  # square: a 4096 px run is 4096 x 4096
PRINT_PAIR = ("mountains.jpg", "starry_night.jpg")  # the largest photo among the examples


# -- the child: one run, its per-step times on stdout ----------------------------------------


def child(spec: dict) -> None:
    """One run as ``spec`` says; prints JSON: size, tiles, seconds of each step at the size."""
    import torch

    from impasto import StyleConfig, Stylizer
    from impasto.image import save_image

    config = StyleConfig(**spec["config"])
    seen: list[tuple[int, int, float, int]] = []
    engine = Stylizer(device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        out = engine.stylize(
            EXAMPLES / spec["content"],
            EXAMPLES / spec["style"],
            config,
            on_progress=lambda p: seen.append((p.scale, p.step, p.elapsed, p.tiles)),
            checkpoint=Path(tmp) / "run.ckpt" if spec.get("checkpoint") else None,
            checkpoint_every=2,
        )
        save_image(out, spec.get("output") or Path(tmp) / "out.png")
    last = [s for s in seen if s[0] == seen[-1][0]]
    # Step k's time is its elapsed less step k-1's; the first at a scale is left out (its
    # previous event is another scale's).
    steps = [b[2] - a[2] for a, b in zip(last, last[1:])]
    h, w = out.shape[-2:]
    print(
        json.dumps(
            {
                "height": h,
                "width": w,
                "tiles": last[-1][3],
                "steps": steps,
                "threads": torch.get_num_threads(),
            }
        )
    )


def run_child(spec: dict, log: Path) -> dict:
    measured = run_measured([sys.executable, __file__, "--child", json.dumps(spec)], log)
    result = json.loads(measured.stdout.strip().splitlines()[-1])
    return result | {"peak_rss_mb": measured.peak_rss_mb, "wall_s": measured.wall_s}


def fits_whole(size: int, content: str) -> bool:
    """Whether impasto's own estimate lets this size run in one piece here."""
    import torch

    from impasto import StyleConfig
    from impasto.budget import available_memory, memory_needed
    from impasto.image import load_image, long_side_size

    h, w = long_side_size(*load_image(EXAMPLES / content).shape[-2:], size)
    have = available_memory(torch.device("cpu"))
    return have is None or memory_needed(StyleConfig(size=size), h, w, h * w) <= have


# -- the three parts ---------------------------------------------------------------------------


def memory(args: argparse.Namespace, logs: Path) -> list[dict]:
    rows = []
    for size in args.sizes:
        for tile in (args.tile, 0):
            if tile == 0 and not fits_whole(size, MEMORY_PAIR[0]):
                rows.append({"size": size, "tile": 0, "skipped": "estimate exceeds memory"})
                continue
            spec = {
                "content": MEMORY_PAIR[0],
                "style": MEMORY_PAIR[1],
                "checkpoint": True,
                "config": {
                    "size": size,
                    "tile": tile,
                    "scales": 2,
                    "min_size": min(256, size // 2),
                    "iterations": [1, args.steps],
                },
            }
            r = run_child(spec, logs / f"memory_{size}_{tile}.log")
            rows.append({"size": size, "tile": tile} | r)
            print(f"memory {size} px, tile {tile}: {r['peak_rss_mb'] / 1024:.2f} GiB", flush=True)
    return rows


def speed(args: argparse.Namespace, logs: Path) -> list[dict]:
    rows = []
    for size in args.speed_sizes:
        per: dict[int, list[float]] = {args.tile: [], 0: []}
        tiles = 0
        for repeat in range(args.repeats):
            for tile in (0, args.tile):  # alternating, so that a change of load hits both
                spec = {
                    "content": MEMORY_PAIR[0],
                    "style": MEMORY_PAIR[1],
                    "config": {"size": size, "tile": tile, "scales": 1, "iterations": [args.steps]},
                }
                r = run_child(spec, logs / f"speed_{size}_{tile}_{repeat}.log")
                mpx = r["height"] * r["width"] / 1e6
                per[tile] += [s / mpx for s in r["steps"]]
                tiles = max(tiles, r["tiles"])
        whole, tiled = statistics.median(per[0]), statistics.median(per[args.tile])
        rows.append(
            {
                "size": size,
                "tile": args.tile,
                "tiles": tiles,
                "whole_s_per_mpx": whole,
                "tiled_s_per_mpx": tiled,
                "ratio": tiled / whole,
            }
        )
        print(f"speed {size} px: {tiled / whole:.2f}x in {tiles} tiles of {args.tile}", flush=True)
    return rows


def print_run(args: argparse.Namespace, logs: Path, out: Path) -> dict:
    from PIL import Image

    from impasto.image import load_image, to_pil

    big = out / "tiling_print_full.jpg"
    small = Path(logs) / "print_512.png"
    reference_scale = args.print_style_scale * args.print_size / 512
    spec = {
        "content": PRINT_PAIR[0],
        "style": PRINT_PAIR[1],
        "checkpoint": True,
        "output": str(big),
        "config": {"size": args.print_size, "style_scale": args.print_style_scale}
        | ({"iterations": [args.steps]} if args.smoke else {}),
    }
    r = run_child(spec, logs / "print.log")
    ref = {
        "content": PRINT_PAIR[0],
        "style": PRINT_PAIR[1],
        "output": str(small),
        "config": {"size": 512, "style_scale": reference_scale}
        | ({"iterations": [args.steps]} if args.smoke else {}),
    }
    run_child(ref, logs / "print_512.log")
    whole, at_512 = load_image(big), load_image(small)
    h, w = whole.shape[-2:]
    side = min(512, h, w) if not args.smoke else min(h, w) // 2
    # The crop: the middle of the print, at 100%; the 512 px run beside it at 100%.
    top, left = (h - side) // 2, (w - side) // 2
    crop = to_pil(whole[..., top : top + side, left : left + side])
    overview = to_pil(whole).resize((w * side * 2 // h, side * 2))
    ref_img = to_pil(at_512)
    sheet = Image.new("RGB", (overview.width + side + ref_img.width + 32, side * 2), "white")
    sheet.paste(overview, (0, 0))
    sheet.paste(crop, (overview.width + 16, 0))
    sheet.paste(ref_img, (overview.width + side + 32, 0))
    figure = out / "tiling_print.jpg"
    sheet.save(figure, quality=90)
    return r | {
        "size": args.print_size,
        "style_scale": args.print_style_scale,
        "reference_style_scale": reference_scale,
        "figure": figure.name,
        "full": big.name,
    }


# -- the report --------------------------------------------------------------------------------


def report(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# Tiles: memory, speed and a print",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({', '.join(m['isa'])}), torch {m['torch']}, "
        f"{m['threads']} threads.",
        "",
    ]
    if results.get("memory"):
        lines += ["| size | tile | tiles | peak resident memory | wall |", "|---|---|---|---|---|"]
        for r in results["memory"]:
            if "skipped" in r:
                lines.append(f"| {r['size']} | in one piece | | {r['skipped']} | |")
                continue
            tile = "in one piece" if not r["tile"] else f"{r['tile']} px"
            lines.append(
                f"| {r['width']} x {r['height']} | {tile} | {r['tiles'] or 1} | "
                f"{r['peak_rss_mb'] / 1024:.2f} GiB ({r['peak_rss_mb'] * 2**20 / 1e9:.2f} GB) | "
                f"{r['wall_s']:.0f} s |"
            )
        lines.append("")
    if results.get("speed"):
        lines += [
            "| size | tiles | s / step / Mpx, in one piece | in tiles | tiled / whole |",
            "|---|---|---|---|---|",
        ]
        for r in results["speed"]:
            lines.append(
                f"| {r['size']} | {r['tiles']} of {r['tile']} px | {r['whole_s_per_mpx']:.2f} | "
                f"{r['tiled_s_per_mpx']:.2f} | {r['ratio']:.2f}x |"
            )
        lines.append("")
    if results.get("print"):
        p = results["print"]
        lines += [
            f"Print: {p['width']} x {p['height']} px, --style-scale {p['style_scale']:g}, "
            f"{p['tiles']} tiles at the last scale, {p['wall_s'] / 60:.0f} min, peak "
            f"{p['peak_rss_mb'] / 1024:.2f} GiB. Left: the whole print; middle: its centre at "
            f"100%; right: a 512 px run at 100% with --style-scale {p['reference_style_scale']:g} "
            "(the style image as many pixels across).",
            "",
            f"![print]({p['figure']})",
            "",
        ]
    return "\n".join(lines)


PARTS = ("memory", "speed", "print")


def parts(text: str) -> tuple[str, ...]:
    chosen = tuple(t.strip() for t in text.split(","))
    unknown = [t for t in chosen if t not in PARTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown)}: not one of {', '.join(PARTS)}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument(
        "--only", type=parts, default=PARTS, help="parts to run, comma-separated (all three)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few steps")
    parser.add_argument(
        "--sizes", type=lambda t: [int(v) for v in t.split(",")], default=[1024, 2048, 4096]
    )
    parser.add_argument(
        "--speed-sizes", type=lambda t: [int(v) for v in t.split(",")], default=[1024, 1536, 2048]
    )
    parser.add_argument("--tile", type=int, default=512, help="tile side of the tiled runs")
    parser.add_argument("--steps", type=int, default=4, help="steps at the size measured")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--print-size", type=int, default=4096)
    parser.add_argument("--print-style-scale", type=float, default=0.25)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    if args.smoke:
        args.sizes, args.speed_sizes, args.tile, args.steps, args.repeats = [192], [192], 64, 3, 1
        args.print_size = 256
    from run import machine

    results: dict = {"machine": machine(), "smoke": args.smoke}
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        out = logs if args.smoke else BENCH  # a smoke run leaves nothing behind
        started = time.perf_counter()
        if "memory" in args.only:
            results["memory"] = memory(args, logs)
        if "speed" in args.only:
            results["speed"] = speed(args, logs)
        if "print" in args.only:
            results["print"] = print_run(args, logs, out)
        results["seconds"] = time.perf_counter() - started
        text = report(results)
        if args.smoke:
            print(text)
            print(f"smoke run: {results['seconds']:.0f} s; nothing written")
            return
    (BENCH / "tiling.json").write_text(json.dumps(results, indent=1))
    (BENCH / "tiling.md").write_text(text)
    figures = (
        ", bench/tiling_print.jpg, bench/tiling_print_full.jpg" if "print" in args.only else ""
    )
    print(f"wrote bench/tiling.md, bench/tiling.json{figures}")


if __name__ == "__main__":
    main()
