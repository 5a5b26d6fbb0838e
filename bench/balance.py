"""How the content/style balance suits each bench pair: a sweep of style weights, judged.

    python bench/balance.py                       # every pair, the default weights sweep
    python bench/balance.py --weights 5,10,auto --pairs "dog x scream"
    python bench/balance.py --calibrate           # impasto.balance.REFERENCE, from the tuned pairs
    python bench/balance.py --report              # bench/balance.md and docs/balance_sheet.jpg

For each pair at pastiche's output size, impasto's default run at each style weight (one engine,
so the painting is measured once; "auto": --balance auto, the pair's own weight), judged on
VGG-16 (impasto score). Also, per pair, what could
predict the right balance before the run: how far the photo's Gram statistics start from the
painting's, per layer, and the sizes of the features. Writes bench/balance.json, one record per
run, kept across calls (a run already there is not redone).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from pairs import PAIRS, pastiche_size, select  # noqa: E402

OUT = BENCH / "balance.json"
IMAGES = BENCH / "cache" / "balance"  # each run's picture, for the contact sheet


def image_path(pair_name: str, settings: dict) -> Path:
    tag = "auto" if settings.get("balance") == "auto" else f"w{settings['style_weight']:g}"
    return IMAGES / f"{pair_name.replace(' x ', '-')}-{tag}.png"


def features(engine, content, style, size: int) -> dict:
    """What is known of the pair before any step, at the run's smallest scale and at its size."""
    import torch

    from impasto import StyleConfig
    from impasto.image import load_image, resize_long_side
    from impasto.losses import gram_matrix

    config = StyleConfig(size=size)
    net = engine.network(config)
    out = {}
    for where, side in (("coarse", config.scale_sizes()[0]), ("full", size)):
        c = resize_long_side(load_image(content), side)
        s = resize_long_side(load_image(style), side)
        with torch.no_grad():
            fc, fs = net(c), net(s)
        rel, gs, gc = {}, {}, {}
        for layer in config.style_layers:
            a, b = gram_matrix(fc[layer])[0], gram_matrix(fs[layer])[0]
            rel[layer] = float((a - b).norm() / b.norm())
            gs[layer], gc[layer] = float(b.norm()), float(a.norm())
        energy = {layer: float(fc[layer].square().mean()) for layer in config.content_layers}
        out[where] = {
            "gram_distance": rel,
            "style_gram_norm": gs,
            "content_gram_norm": gc,
            "content_energy": energy,
        }
    return out


def calibrate(engine) -> dict[str, float]:
    """The photo's style distance that --style-weight means as given, per network and statistic:
    its geometric mean over the tuned pairs (impasto.balance.REFERENCE)."""
    import math

    from impasto import StyleConfig
    from impasto.balance import photo_distance
    from impasto.inputs import prepare_inputs

    out = {}
    for network in ("vgg19", "vgg16"):
        for kind in ("gram", "meancov", "histogram"):
            logs = []
            for pair in (p for p in PAIRS if p.tuned):
                config = StyleConfig(size=pastiche_size(pair), network=network, style_loss=kind)
                inputs = prepare_inputs(
                    config, pair.content, pair.style, (), (), device=engine.device
                )
                d = photo_distance(engine.network(config), config, inputs, device=engine.device)
                print(f"{network} {kind:9} {pair.name:28} {d:.4f}", flush=True)
                logs.append(math.log(d))
            out[f"{network} {kind}"] = round(math.exp(sum(logs) / len(logs)), 4)
    return out


def distances(engine) -> dict[str, float]:
    """Each pair's photo style distance, and the factor --balance auto gives it (default losses)."""
    from impasto import StyleConfig
    from impasto.balance import factor, photo_distance
    from impasto.inputs import prepare_inputs

    out = {}
    for pair in PAIRS:
        config = StyleConfig(size=pastiche_size(pair))
        inputs = prepare_inputs(config, pair.content, pair.style, (), (), device=engine.device)
        d = photo_distance(engine.network(config), config, inputs, device=engine.device)
        out[pair.name] = {"distance": d, "factor": factor(config, d), "tuned": pair.tuned}
    return out


WITHIN = 0.02  # the bar: each figure within 2% of pastiche's 1000-step figure, or better


def report(records: list[dict]) -> str:
    """A table per half: each pair's fixed default (10), --balance auto, and pastiche's 1000 steps."""
    from reference import reference_of

    def run(pair, **settings):
        for r in records:
            s = r["settings"]
            if r["pair"] == pair.name and all(s.get(k) == v for k, v in settings.items()):
                return r
        return None

    def figures(r):
        return "-" if r is None else f"{r['style']:.3f} / {r['content']:.3f}"

    def verdict(r, ref):
        if r is None or ref is None:
            return "-"
        ok = [r[k] <= ref[k] * (1 + WITHIN) for k in ("style", "content")]
        if all(ok):
            return "yes"
        gaps = [
            f"{k} +{(r[k] / ref[k] - 1) * 100:.0f}%"
            for k, good in zip(("style", "content"), ok)
            if not good
        ]
        return "no (" + ", ".join(gaps) + ")"

    lines = []
    for tuned, title in ((True, "Tuned half"), (False, "Held-out half")):
        lines += [
            f"### {title}",
            "",
            "| pair | auto weight | fixed 10: style / content | auto: style / content | pastiche 1000 steps | "
            "auto within 2% of pastiche | fixed 10 within 2% |",
            "|---|---|---|---|---|---|---|",
        ]
        for pair in (p for p in PAIRS if p.tuned == tuned):
            fixed, auto = run(pair, style_weight=10.0, balance="fixed"), run(pair, balance="auto")
            ref = reference_of(pair)
            peer = None if ref is None else ref["final"]
            weight = "-" if auto is None else f"{auto['style_weight_used']:.3g}"
            lines.append(
                f"| {pair.name} | {weight} | {figures(fixed)} | {figures(auto)} | "
                f"{figures(peer) if peer else 'not run yet'} | {verdict(auto, peer)} | {verdict(fixed, peer)} |"
            )
        lines.append("")
    return "\n".join(lines)


def sheet(records: list[dict], path: Path) -> None:
    """Per pair: the photo, the painting, the fixed default's picture (style weight 10),
    --balance auto's, and pastiche's 1000 steps (where kept)."""
    from PIL import Image, ImageDraw
    from reference import REFERENCE, reference_of

    cell = 256
    rows = []
    for pair in PAIRS:
        ref = reference_of(pair)
        auto = next(
            (r for r in records if r["pair"] == pair.name and r["settings"]["balance"] == "auto"),
            None,
        )
        weight = f" (weight {auto['style_weight_used']:.3g})" if auto else ""
        peer = "not run yet" if ref is None else "image not kept"
        cells = [
            ("photo", pair.content, ""),
            ("painting", pair.style, ""),
            ("impasto, weight 10", image_path(pair.name, {"style_weight": 10.0}), "not run"),
            (
                f"impasto, balance auto{weight}",
                image_path(pair.name, {"balance": "auto"}),
                "not run",
            ),
            (
                "pastiche, 1000 steps",
                REFERENCE / ref["final"]["image"] if ref and ref["final"]["image"] else None,
                peer,
            ),
        ]
        rows.append((pair, cells))
    out = Image.new("RGB", (len(rows[0][1]) * cell, len(rows) * (cell + 20)), "white")
    draw = ImageDraw.Draw(out)
    for i, (pair, cells) in enumerate(rows):
        y = i * (cell + 20)
        for j, (label, file, missing) in enumerate(cells):
            x = j * cell
            if file is not None and Path(file).exists():
                with Image.open(file) as im:
                    im = im.convert("RGB")
                    im.thumbnail((cell - 4, cell - 4))
                    out.paste(im, (x + (cell - im.width) // 2, y + 20 + (cell - im.height) // 2))
            else:
                draw.text((x + 8, y + 120), missing, fill="grey")
            half = "tuned" if pair.tuned else "held out"
            text = f"{pair.name} ({half})" if j == 0 else label
            draw.text((x + 4, y + 4), text, fill="black")
    out.save(path, quality=88)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="3,5,10,15,20,30")
    parser.add_argument(
        "--pairs", default="", help="comma-separated pair or photo names (default: all)"
    )
    parser.add_argument("--extra", default="{}", help="other StyleConfig fields, as JSON")
    parser.add_argument("--calibrate", action="store_true", help="print impasto.balance.REFERENCE")
    parser.add_argument("--distances", action="store_true", help="each pair's distance and factor")
    parser.add_argument(
        "--report", action="store_true", help="write bench/balance.md and docs/balance_sheet.jpg"
    )
    args = parser.parse_args()

    from impasto import StyleConfig, Stylizer
    from impasto.score import score

    if args.calibrate or args.distances:
        engine = Stylizer()
        print(json.dumps(calibrate(engine) if args.calibrate else distances(engine), indent=1))
        return
    records = json.loads(OUT.read_text()) if OUT.exists() else []
    for r in records:  # runs made before --balance existed had the weight as given
        r["settings"].setdefault("balance", "fixed")
    if args.report:
        table = report(records)
        (BENCH / "balance.md").write_text(
            "# The balance on every bench pair\n\nWritten by `python bench/balance.py --report` "
            "from bench/balance.json and bench/reference/. Figures: style / content distance "
            "(`impasto score`, lower is better).\n\n" + table
        )
        sheet(records, ROOT / "docs" / "balance_sheet.jpg")
        print(table)
        return
    done = {(r["pair"], json.dumps(r["settings"], sort_keys=True)) for r in records}
    engine = Stylizer()
    wanted = select(args.pairs)
    for pair in wanted:
        size = pastiche_size(pair)
        known = next(
            (r["features"] for r in records if r["pair"] == pair.name and "features" in r), None
        )
        feats = known or features(engine, pair.content, pair.style, size)
        for w in args.weights.split(","):
            weight = (
                {"balance": "auto"}
                if w == "auto"
                else {"style_weight": float(w), "balance": "fixed"}
            )
            settings = {"size": size, **weight, **json.loads(args.extra)}
            key = (pair.name, json.dumps(settings, sort_keys=True))
            if key in done:
                continue
            start = time.perf_counter()
            used: list[float] = []
            image = engine.stylize(
                pair.content,
                pair.style,
                StyleConfig(**settings),
                on_progress=lambda p, used=used: used.append(p.style_weight),
            )
            seconds = time.perf_counter() - start
            from impasto.image import save_image

            IMAGES.mkdir(parents=True, exist_ok=True)
            save_image(image, image_path(pair.name, settings))
            s = score(image, pair.content, pair.style)
            records.append(
                {
                    "pair": pair.name,
                    "settings": settings,
                    "style": s.style,
                    "content": s.content,
                    "seconds": seconds,
                    "style_weight_used": used[-1],
                    "features": feats,
                }
            )
            print(
                f"{pair.name:28} {json.dumps(settings)}  style {s.style:.3f} content {s.content:.3f}  {seconds:.0f} s",
                flush=True,
            )
            tmp = OUT.with_suffix(".tmp")
            tmp.write_text(json.dumps(records, indent=1))
            tmp.replace(OUT)


if __name__ == "__main__":
    main()
