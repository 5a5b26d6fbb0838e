"""impasto against a peer (pastiche 1.6.0), on the same machine, judged by networks neither optimises.

    python bench/run.py                  # every pair of bench/pairs.py, all measurements
    python bench/run.py --quick          # one pair, no 2048 px memory run
    python bench/run.py --smoke          # the bench itself in a minute: numbers meaningless

For each content x style pair (bench/pairs.py: half tuned on, half held out), at pastiche's
default output size (about 500 x 500 px):
  1. pastiche's default run (1000 L-BFGS steps), from its committed reference in bench/reference/
     (final image and every 50th step judged; bench/reference.py makes them, 30-70 min a pair);
  2. impasto's default run, timed, snapshots along the way;
  3. a short pastiche run (50 steps) right after it, so that the per-step time of the peer is
     always measured next to impasto's, on this machine, now.
Every snapshot and output is scored with ``impasto.score`` (VGG-16 Gram style distance and
LPIPS-VGG content distance; impasto optimises VGG-19, so neither side is graded by its own loss).

Then seconds per step of both at 512 x 512, impasto's achieved GFLOP/s, and the peak memory of
an impasto run at 2048 px. Writes bench/results.md, bench/results.json, bench/quality_vs_time.png
and bench/outputs.jpg. Runs never overlap: on a 2-core machine two at once distort both.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import peer  # noqa: E402
from measure import Measured, machine, measured_before, run_measured  # noqa: E402
from pairs import PAIRS, Pair, select  # noqa: E402
from reference import reference_of  # noqa: E402

EXAMPLES = ROOT / "examples"
SHORT_STEPS = 50
SPEED_STEPS = 20
WITHIN = 0.02  # "as good as": each figure within 2%


@dataclass
class Timed:
    wall_s: float
    peak_rss_mb: float
    snapshots: list[tuple[int, float, Path]]  # (step, seconds since the process started, image)
    output: Path | None  # None: a reference that kept its figures but not its image


def rel(path: Path | str) -> str:
    """A path as the results show it: relative to the repository, never this machine's."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return Path(path).name


def log(message: str) -> None:
    print(message, flush=True)


REUSE = False  # --reuse: take impasto's runs from the last bench run when their record is there


def impasto_run(content: Path, style: Path, folder: Path, settings: dict, every: int) -> Timed:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "out.png"
    argv = [
        sys.executable,
        str(BENCH / "impasto_run.py"),
        str(content),
        str(style),
        str(out),
        str(folder / "snapshots"),
        json.dumps(settings),
        str(every),
    ]
    record_path = folder / "snapshots" / "run.json"
    measured = None
    if REUSE and record_path.exists() and (folder / "out.png").exists():
        from impasto import StyleConfig

        record = json.loads(record_path.read_text())
        if record["settings"] == json.loads(json.dumps(StyleConfig(**settings).to_dict())):
            measured = measured_before(folder / "log.txt")
            if measured is None:  # made before the bench kept its measurements: the run's own clock
                measured = Measured(record["done_s"] + record["snapshot_writing_s"], math.nan, "")
    if measured is None:
        measured = run_measured(argv, log_path=folder / "log.txt")
    record = json.loads(record_path.read_text())
    wall = measured.wall_s - record["snapshot_writing_s"]
    snaps = [(step, t, folder / "snapshots" / name) for step, t, name in record["snapshots"]]
    return Timed(wall, measured.peak_rss_mb, snaps, out)


def reference_timed(pair: Pair) -> Timed:
    """pastiche's committed run of ``pair``: its snapshots are already judged (see rows_of)."""
    ref = reference_of(pair)
    if ref is None:
        raise SystemExit(
            f"no pastiche reference for {pair.name} in bench/reference/: run python bench/reference.py "
            "(30-70 minutes a pair)"
        )
    snaps = [(r["step"], r["seconds"], r) for r in ref["snapshots"]]
    if ref["final"]["image"] is None:
        log(
            f"  the pastiche reference of {pair.name} holds figures only: its picture stays blank "
            f"(bench/reference.py --force --pairs {pair.content.stem} remakes it, 30-70 minutes)"
        )
        return Timed(ref["wall_s"], ref["peak_rss_mb"], snaps, None)
    image = BENCH / "reference" / ref["final"]["image"]
    return Timed(ref["wall_s"], ref["peak_rss_mb"], snaps, image)


def peer_timed(result: peer.PeerRun) -> Timed:
    folder = peer.folder_of(result)
    overhead = result.wall_s - result.snapshots[-1][1]  # interpreter start-up and the final save
    snaps = [(step, t + overhead, folder / name) for step, t, name in result.snapshots]
    return Timed(result.wall_s, result.peak_rss_mb, snaps, folder / result.output)


def score_all(timed: Timed, content: Path, style: Path) -> list[dict]:
    from impasto.score import score

    rows = []
    for step, t, path in timed.snapshots:
        if isinstance(path, dict):  # a reference's snapshot, judged when it was made
            rows.append({"step": step, "t": t, "style": path["style"], "content": path["content"]})
            continue
        s = score(path, content, style)
        rows.append({"step": step, "t": t, "style": s.style, "content": s.content})
    return rows


def matched(impasto_final: dict, peer_rows: list[dict]) -> dict | None:
    """The latest peer snapshot that impasto's result matches or beats on both figures (2%)."""
    ok = [
        r
        for r in peer_rows
        if impasto_final["style"] <= r["style"] * (1 + WITHIN)
        and impasto_final["content"] <= r["content"] * (1 + WITHIN)
    ]
    return max(ok, key=lambda r: r["step"]) if ok else None


def flops_per_step(size: int) -> float:
    """FLOPs of one impasto step (network forward, gradient to the image, losses) at size x size,
    counted by torch's FlopCounterMode as the difference between a 2-step and a 1-step run."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from impasto import StyleConfig, stylize

    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    counts = []
    for steps in (1, 2):
        with FlopCounterMode(display=False) as counter:
            stylize(
                image,
                image.flip(-1),
                StyleConfig(size=size, scales=1, iterations=steps, tolerance=0),
            )
        counts.append(counter.get_total_flops())
    return float(counts[1] - counts[0])


def seconds_per_step_impasto(content: Path, style: Path, folder: Path, size: int) -> float:
    settings = {"size": size, "scales": 1, "iterations": SPEED_STEPS, "tolerance": 0}
    impasto_run(content, style, folder, settings, every=0)
    steps = json.loads((folder / "snapshots" / "run.json").read_text())["steps"]
    # Step 1 pays for one-time allocations; time the rest.
    return (steps[-1][2] - steps[0][2]) / (len(steps) - 1)


def plot(pairs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(
        2, len(pairs), figsize=(4.2 * len(pairs), 6.4), squeeze=False, sharex=True
    )
    for col, pair in enumerate(pairs):
        for row, figure in enumerate(("style", "content")):
            ax = axes[row][col]
            for who, rows, colour in (
                ("pastiche", pair["peer_rows"], "tab:grey"),
                ("impasto", pair["impasto_rows"], "tab:red"),
            ):
                ax.plot(
                    [r["t"] for r in rows],
                    [r[figure] for r in rows],
                    "o-",
                    ms=3,
                    color=colour,
                    label=who,
                )
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.grid(True, alpha=0.3)
            if row == 0:
                ax.set_title(pair["name"], fontsize=10)
            if col == 0:
                ax.set_ylabel(f"{figure} distance (lower is better)")
            if row == 1:
                ax.set_xlabel("seconds since start (log)")
    axes[0][0].legend()
    fig.suptitle("Quality against time: every snapshot of each run, scored on VGG-16 / LPIPS")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sheet(pairs: list[dict], path: Path) -> None:
    from impasto.image import load_image
    from impasto.report import contact_sheet

    cells = [
        [
            load_image(ROOT / p[k]) if p[k] else None
            for k in ("content", "style", "impasto_out", "peer_out")
        ]
        for p in pairs
    ]
    contact_sheet(
        path,
        cells,
        row_labels=[p["name"] for p in pairs],
        col_labels=["photo", "painting", "impasto (default)", "pastiche (default, 1000 steps)"],
        title="impasto and pastiche at their defaults, same size, same machine",
    )


def fmt_s(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 60:.1f} min"


def write_markdown(results: dict, path: Path) -> None:
    m = results["machine"]
    lines = [
        "# impasto against pastiche",
        "",
        f"Measured by `python bench/run.py` on {results['date']}: {m['cpu']}, {m['cores']} cores "
        f"({', '.join(m['isa']) or 'no AVX-512'}), {m['memory_gb']:.0f} GB, torch {m['torch']} "
        f"({m['threads']} threads), Python {m['python']}"
        + (f", {m['cuda']}" if m["cuda"] else ", no GPU")
        + ".",
        f"Peer: pastiche {peer.PEER_VERSION} at its defaults (L-BFGS, 1000 steps, about 500 x 500 px, init from the "
        "photo), in its own environment. impasto at its defaults at the same output size.",
        "Quality is judged on VGG-16, which neither program optimises: style distance (Gram matrices, 0 = the "
        "painting's statistics) and content distance (LPIPS-VGG, 0 = the photo). Lower is better for both.",
        "",
        "## Per pair",
        "",
        "| pair | half | size | impasto time | impasto style / content | pastiche time (1000 steps) | pastiche style / content "
        "| both within 2% | speedup, whole runs | pastiche steps in impasto's time | pastiche snapshot impasto matches |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in results["pairs"]:
        i, f = p["impasto_final"], p["peer_final"]
        match = p["match"]
        match_txt = (
            f"step {match['step']} ({match['style']:.3f} / {match['content']:.3f})"
            if match
            else "none"
        )
        half = "tuned" if p["tuned"] else "held out"
        lines.append(
            f"| {p['name']} | {half} | {p['size']} | {fmt_s(p['impasto_wall_s'])} | {i['style']:.3f} / {i['content']:.3f} "
            f"| {fmt_s(p['peer_wall_est_s'])} | {f['style']:.3f} / {f['content']:.3f} | {'yes' if p['as_good'] else 'no'} "
            f"| {p['speedup_total']:.1f}x | {p['peer_steps_in_impasto_time']:.0f} | {match_txt} |"
        )
    if results.get("skipped"):
        lines += [
            "",
            "Not measured in this run (`--pairs`): " + ", ".join(results["skipped"]) + ".",
        ]
    s = results["summary"]
    lines += [
        "",
        "Pastiche's times are its start-up plus 1000 steps at the per-step time measured right after impasto's run "
        f"({SHORT_STEPS} steps), on this machine; its quality figures come from its committed reference runs "
        "(bench/reference/). impasto's time is its whole process (start-up, weights, all scales, writing the "
        "result), without the time spent writing the bench's snapshots.",
        "",
        "## Summary (medians over the pairs)",
        "",
        "| figure | measured | target |",
        "|---|---|---|",
        f"| speedup at equal quality | {s['speedup_equal_quality']} | reported per pair |",
        f"| speedup of the whole default run | {s['speedup_total']:.1f}x | at least 25x |",
        f"| most pastiche steps in impasto's time, any pair | {s['most_peer_steps']:.0f} | at most 40 |",
        f"| both figures within 2% of pastiche's final (or better), tuned pairs | {s['as_good_tuned']} of {s['n_tuned']} | every pair |",
        f"| the same, held-out pairs | {s['as_good_held_out']} of {s['n_held_out']} | every pair |",
        f"| seconds per step at 512 x 512: impasto / pastiche | {s['impasto_s_per_step_512']:.2f} / {s['peer_s_per_step_512']:.2f} "
        f"({s['throughput_ratio']:.2f}x) | 1.8x |",
        f"| impasto's achieved compute at 512 px | {s['gflops']:.0f} GFLOP/s ({s['gflop_per_step']:.0f} GFLOP per step) | |",
        f"| impasto default run at 512 px (astronaut) | {fmt_s(s['default_512_s'])} | under 90 s |",
    ]
    if s.get("peak_2048_mb"):
        gib, gb = s["peak_2048_mb"] / 1024, s["peak_2048_mb"] * 2**20 / 1e9
        lines.append(
            f"| peak memory of a 2048 px run | {gib:.2f} GiB = {gb:.2f} GB ({s['big_schedule']}) | under 8 GB |"
        )
    else:
        lines.append("| peak memory of a 2048 px run | not measured in this run | under 8 GB |")
    lines += [
        "",
        "![quality against time](quality_vs_time.png)",
        "",
        "![outputs](outputs.jpg)",
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one pair, no 2048 px run")
    parser.add_argument("--no-big", action="store_true", help="skip the 2048 px memory run")
    parser.add_argument(
        "--pairs",
        default="",
        metavar="NAMES",
        help="comma-separated pair or photo names (default: all; --quick: the first)",
    )
    parser.add_argument(
        "--out", type=Path, default=BENCH, help="where results go (default: bench/)"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="check the bench itself in a minute: tiny images, a few steps, numbers meaningless",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="take impasto's runs and the short pastiche runs from the last bench run where they exist",
    )
    args = parser.parse_args(argv)
    used = select(args.pairs)[:1] if args.quick else select(args.pairs)
    global SHORT_STEPS, SPEED_STEPS, REUSE
    REUSE = args.reuse
    tiny: dict = {}
    if args.smoke:
        SHORT_STEPS, SPEED_STEPS, args.no_big = 3, 3, True
        tiny = {"num_steps": 6, "size": 64}

    work = peer.CACHE / "impasto-runs"
    python = peer.environment()
    results: dict = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "pairs": []}
    log(f"machine: {results['machine']}")
    from PIL import Image

    for pair in used:
        content, style, name = pair.content, pair.style, pair.name
        w, h = peer.output_size(*Image.open(content).size)
        if args.smoke:
            w, h = (64, round(64 * h / w)) if w >= h else (round(64 * w / h), 64)
        log(f"{name}: {w}x{h} px")
        peer_full = (
            reference_timed(pair)
            if not args.smoke
            else peer_timed(peer.run(content, style, python=python, log=log, **tiny))
        )
        log("  impasto default run ...")
        settings = {"size": max(w, h)} | ({"iterations": 3} if args.smoke else {})
        mine = impasto_run(content, style, work / content.stem, settings, every=10)
        log(f"  impasto: {mine.wall_s:.1f} s, peak {mine.peak_rss_mb:.0f} MB")
        short = peer.run(
            content,
            style,
            python=python,
            fresh=not args.reuse,
            log=log,
            **(tiny | {"num_steps": SHORT_STEPS}),
        )
        per_step = short.seconds_per_step
        startup = short.wall_s - SHORT_STEPS * per_step
        log(f"  pastiche: {per_step:.2f} s per step, start-up {startup:.1f} s")
        if peer_full.output is not None:  # the two judged at the same size
            final_size = Image.open(mine.output).size
            assert final_size == Image.open(peer_full.output).size, (
                final_size,
                Image.open(peer_full.output).size,
            )

        peer_rows = score_all(peer_full, content, style)
        for r in peer_rows:
            r["t_cached"], r["t"] = r["t"], startup + r["step"] * per_step
        impasto_rows = score_all(mine, content, style)
        # The results as written (what a user gets), at the whole process's time.
        last = score_all(
            Timed(0, 0, [(impasto_rows[-1]["step"], mine.wall_s, mine.output)], mine.output),
            content,
            style,
        )
        impasto_final = last[0]
        impasto_rows.append(impasto_final)
        peer_final = peer_rows[-1]
        match = matched(impasto_final, peer_rows)
        peer_wall = startup + peer_full.snapshots[-1][0] * per_step
        record = {
            "name": name,
            "tuned": pair.tuned,
            "content": rel(content),
            "style": rel(style),
            "size": f"{w}x{h}",
            "impasto_wall_s": mine.wall_s,
            "impasto_peak_mb": mine.peak_rss_mb,
            "impasto_final": impasto_final,
            "peer_wall_est_s": peer_wall,
            "peer_cached_wall_s": peer_full.wall_s,
            "peer_peak_mb": peer_full.peak_rss_mb,
            "peer_s_per_step": per_step,
            "peer_startup_s": startup,
            "peer_final": peer_final,
            "speedup_total": peer_wall / mine.wall_s,
            "peer_steps_in_impasto_time": mine.wall_s / per_step,
            "match": match,
            "speedup_equal_quality": (match["t"] / mine.wall_s) if match else None,
            "as_good": impasto_final["style"] <= peer_final["style"] * (1 + WITHIN)
            and impasto_final["content"] <= peer_final["content"] * (1 + WITHIN),
            "impasto_rows": impasto_rows,
            "peer_rows": peer_rows,
            "impasto_out": rel(mine.output),
            "peer_out": rel(peer_full.output) if peer_full.output else None,
        }
        log(
            f"  impasto {impasto_final['style']:.4f} / {impasto_final['content']:.4f}, pastiche "
            f"{peer_final['style']:.4f} / {peer_final['content']:.4f}; whole-run speedup {record['speedup_total']:.1f}x, "
            + (
                f"at equal quality {record['speedup_equal_quality']:.1f}x (pastiche step {match['step']})"
                if match
                else "no pastiche snapshot matched on both figures"
            )
        )
        results["pairs"].append(record)

    # Speed at 512 x 512 on the first pair, the two programs alternately.
    content, style = PAIRS[0].content, PAIRS[0].style
    side = 64 if args.smoke else 512
    log(f"seconds per step at {side} px ...")
    mine_512, peer_512 = [], []
    for _ in range(1 if args.quick or args.smoke else 2):
        mine_512.append(seconds_per_step_impasto(content, style, work / "speed512", side))
        peer_512.append(
            peer.run(
                content,
                style,
                python=python,
                fresh=not args.reuse,
                log=log,
                num_steps=SPEED_STEPS,
                size=side,
            ).seconds_per_step
        )
    log(f"FLOPs per step at {side} px ...")
    flops = flops_per_step(side)
    log(f"impasto default run at {side} px ...")
    default_512 = impasto_run(
        content,
        style,
        work / "default512",
        {"size": side} | ({"iterations": 3} if args.smoke else {}),
        every=0,
    )
    summary = {
        "impasto_s_per_step_512": statistics.median(mine_512),
        "peer_s_per_step_512": statistics.median(peer_512),
        "gflop_per_step": flops / 1e9,
        "default_512_s": default_512.wall_s,
        "speedup_total": statistics.median(p["speedup_total"] for p in results["pairs"]),
        "as_good": sum(p["as_good"] for p in results["pairs"]),
        "as_good_tuned": sum(p["as_good"] for p in results["pairs"] if p["tuned"]),
        "as_good_held_out": sum(p["as_good"] for p in results["pairs"] if not p["tuned"]),
        "n_tuned": sum(p["tuned"] for p in results["pairs"]),
        "n_held_out": sum(not p["tuned"] for p in results["pairs"]),
        "most_peer_steps": max(p["peer_steps_in_impasto_time"] for p in results["pairs"]),
    }
    summary["throughput_ratio"] = summary["peer_s_per_step_512"] / summary["impasto_s_per_step_512"]
    summary["gflops"] = summary["gflop_per_step"] / summary["impasto_s_per_step_512"]
    eq = [p["speedup_equal_quality"] for p in results["pairs"] if p["speedup_equal_quality"]]
    summary["speedup_equal_quality"] = (
        f"{statistics.median(eq):.1f}x"
        + (
            f" ({len(eq)} of {len(results['pairs'])} pairs match a snapshot)"
            if len(eq) < len(results["pairs"])
            else ""
        )
        if eq
        else "no pastiche snapshot matched"
    )
    if not (args.quick or args.no_big):
        from impasto import StyleConfig

        # 6 steps at 2048 px fill the 5-pair L-BFGS history: later steps hold no more memory.
        big = {"size": 2048, "iterations": [1, 1, 1, 6], "tolerance": 0}
        log("impasto at 2048 px (peak memory) ...")
        run_big = impasto_run(content, style, work / "big2048", big, every=0)
        summary["peak_2048_mb"] = run_big.peak_rss_mb
        summary["big_schedule"] = ", ".join(
            f"{n} step{'s' if n != 1 else ''} at {s} px" for s, n in StyleConfig(**big).schedule()
        )
        log(f"  2048 px: peak {run_big.peak_rss_mb:.0f} MB in {run_big.wall_s:.0f} s")
    results["summary"] = summary
    results["skipped"] = [p.name for p in PAIRS if p not in used]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    plot(results["pairs"], args.out / "quality_vs_time.png")
    sheet(results["pairs"], args.out / "outputs.jpg")
    write_markdown(results, args.out / "results.md")
    log(f"wrote {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
