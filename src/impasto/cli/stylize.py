"""``impasto stylize``: one photo, one or more paintings, one picture, resumable."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from impasto.cli.options import (
    add_config_options,
    add_style_images,
    config_from_args,
    given_options,
)
from impasto.errors import UsageError

CACHE_HELP = "where decoded weights are cached (default: $IMPASTO_HOME or the user cache dir)"


def add_parsers(sub: Any) -> None:
    st = sub.add_parser(
        "stylize",
        help="paint a content photo in the style of one or more paintings",
        description="Paint CONTENT in the style of STYLE (several styles are blended) and write "
        "the result to --output.",
    )
    st.add_argument("content", nargs="?", help="the photo whose layout to keep")
    add_style_images(
        st,
        content_mask_help="grey image, white where a style goes: one per style (with two "
        "styles, one mask: white = the first, black = the second)",
    )
    st.add_argument(
        "-o", "--output", help="where to write the result (.png, .jpg, .webp, .tif, .bmp)"
    )
    st.add_argument(
        "--like",
        metavar="IMAGE",
        help="rerun the settings stored in an image impasto "
        "made; inputs and options given here override them",
    )
    st.add_argument(
        "--resume",
        metavar="OUTPUT",
        help="continue an interrupted run that was "
        "writing OUTPUT, from its checkpoint (OUTPUT.ckpt)",
    )
    st.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="N",
        help="write a checkpoint (OUTPUT.ckpt) every N steps for --resume; 0 = only on "
        "Ctrl-C (default: 25)",
    )
    st.add_argument(
        "--bit-depth",
        type=int,
        choices=(8, 16),
        default=None,
        help="bits per channel of the output; 16 for .png and .tif (default: 8)",
    )
    st.add_argument(
        "--report",
        metavar="PNG",
        help="also write a picture of the run: inputs, "
        "result and loss curves (needs the 'report' extra)",
    )
    st.add_argument(
        "--save-every",
        type=int,
        default=0,
        metavar="N",
        help="also write a numbered snapshot next to the output every N steps",
    )
    st.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    st.add_argument("--cache-dir", help=CACHE_HELP)
    add_config_options(st)
    st.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from impasto.checkpoint import CHECKPOINT_EVERY, checkpoint_path, load_checkpoint
    from impasto.engine import Stylizer
    from impasto.files import check_not_an_input, probe_writable, same_file
    from impasto.image import check_output_path, save_image
    from impasto.record import RunRecord

    every = CHECKPOINT_EVERY if args.checkpoint_every is None else args.checkpoint_every
    if args.save_every < 0:
        raise UsageError(
            f"--save-every must be 0 (off) or a number of steps, not {args.save_every}"
        )
    if every < 0:
        raise UsageError(
            f"--checkpoint-every must be 0 (only on Ctrl-C) or a number of steps, not {every}"
        )

    if args.resume:
        output = check_output_path(args.resume)
        _refuse_beside_resume(args)
        payload = load_checkpoint(checkpoint_path(output))
        extra = payload.get("extra") or {}
        record = RunRecord.from_metadata(
            extra.get("record", {}), where=f"checkpoint {checkpoint_path(output)}"
        )
        bit_depth = args.bit_depth or extra.get("bit_depth", 8)
    else:
        record = _new_record(args)
        output = check_output_path(args.output)
        bit_depth = args.bit_depth or 8
    check_output_path(output, bit_depth=bit_depth)
    inputs = [record.content, *record.styles, *record.content_masks, *record.style_masks]
    check_not_an_input(
        output, inputs + ([record.config.init] if Path(record.config.init).exists() else [])
    )
    probe_writable(output)  # a folder that refuses the file fails now, not after the run
    if args.report:
        from impasto.report import require_matplotlib

        check_output_path(args.report)
        check_not_an_input(args.report, inputs)
        if same_file(args.report, output):
            raise UsageError(
                f"--report and -o name the same file ('{args.report}'): the report would replace "
                "the result; give the report another name"
            )
        require_matplotlib("the run report (--report)")

    from impasto.cli.progress import ProgressBar, RunRecorder, fanout

    auto = record.config.style_weight if record.config.auto_balance else None
    bar, recorder = ProgressBar(args.quiet, auto_from=auto), RunRecorder(output, args.save_every)
    ckpt = checkpoint_path(output)
    engine = Stylizer(record.config.network, record.config.device, cache=args.cache_dir)
    start = time.perf_counter()
    try:
        if args.resume:
            result = engine.resume(
                payload, on_progress=fanout(bar, recorder), save_to=ckpt, checkpoint_every=every
            )
        else:
            result = engine.stylize(
                record.content,
                list(record.styles),
                record.config,
                content_masks=list(record.content_masks),
                style_masks=list(record.style_masks),
                on_progress=fanout(bar, recorder),
                checkpoint=ckpt,
                checkpoint_every=every,
                checkpoint_extra={"record": record.to_metadata(), "bit_depth": bit_depth},
            )
    except KeyboardInterrupt:
        bar.close()
        return _interrupted(output, recorder, ckpt)
    finally:
        bar.close()
    record = replace(
        record,
        steps=recorder.step,
        seconds=recorder.elapsed,
        style_weight_used=recorder.style_weight,
    )
    save_image(result, output, bit_depth=bit_depth, metadata=record.to_metadata())
    ckpt.unlink(missing_ok=True)
    if args.report:
        _write_report(args.report, record, result, recorder)
    if not args.quiet:
        h, w = result.shape[-2:]
        took = time.perf_counter() - start
        print(f"wrote {output} ({w}x{h} px, {recorder.step} steps, {took:.0f} s)", file=sys.stderr)
        if args.report:
            print(f"wrote {args.report}", file=sys.stderr)
    return 0


def _refuse_beside_resume(args: argparse.Namespace) -> None:
    """--resume takes everything from the checkpoint: refuse what would pretend to change it."""
    inputs = [args.content, *args.style, *args.more_styles, *args.content_mask, *args.style_mask]
    clash = [f"--{k.replace('_', '-')}" for k in given_options(args)]
    clash += ["--like"] * bool(args.like) + ["--preset"] * bool(args.preset)
    extra = [a for a in inputs if a]
    if extra or clash:
        raise UsageError(
            f"--resume continues a run with its own images and options; drop {', '.join(clash + extra)}"
        )
    if args.output and Path(args.output) != Path(args.resume):
        raise UsageError(
            f"--resume writes the output it was writing ({args.resume}); drop -o {args.output}"
        )


def _new_record(args: argparse.Namespace) -> Any:
    """What this run is: the inputs and options typed, over those of --like's image."""
    from impasto.record import RunRecord, read_record

    base = None
    if args.like:
        base = read_record(args.like)
        if base is None:
            raise UsageError(
                f"{args.like} holds no impasto settings (was it written by impasto, as .png, .tif, "
                ".jpg or .webp?)"
            )
        base = base.located(Path(args.like).parent)
    content = args.content or (base.content if base else None)
    styles = [*args.style, *args.more_styles] or (list(base.styles) if base else [])
    if not content or not styles:
        raise UsageError(
            "give a content image and at least one style image (impasto stylize CONTENT STYLE -o OUT)"
        )
    if not args.output:
        raise UsageError("give the output file with -o OUT (e.g. -o result.png)")
    new_inputs = bool(args.content or args.style or args.more_styles)
    inherited = base is not None and not new_inputs
    return RunRecord(
        content=content,
        styles=tuple(styles),
        config=config_from_args(args, base.config if base else None),
        content_masks=tuple(args.content_mask or (base.content_masks if inherited else ())),
        style_masks=tuple(args.style_mask or (base.style_masks if inherited else ())),
    )


def _write_report(path: str, record: Any, result: Any, recorder: Any) -> None:
    from impasto.image import load_image
    from impasto.report import make_report

    styles = list(record.styles)
    make_report(
        path,
        content=load_image(record.content, what="content image", fit=record.config.size),
        styles=[load_image(s, what="style image", fit=record.config.size) for s in styles],
        result=result,
        history=recorder.history,
        elapsed=recorder.elapsed,
        style_labels=[Path(s).name for s in styles],
        blend=list(record.config.style_weights_for(len(styles))) if len(styles) > 1 else None,
        title=summary(record.config, record.options()),
    )


def summary(config: Any, options: list[str]) -> str:
    """One line naming the network, the size and the options that differ from the defaults."""
    shown = [o for o in options if not o.startswith(("--network ", "--size "))]
    return f"{config.network}, {config.size} px" + (", " + " ".join(shown) if shown else "")


def _interrupted(output: Path, recorder: Any, ckpt: Path) -> int:
    from impasto.image import save_image, snapshot_path

    if recorder.image is None:
        print("impasto: interrupted before the first step; nothing was written", file=sys.stderr)
        return 130
    path = snapshot_path(output, recorder.step)
    if recorder.snapshot != path:
        save_image(recorder.image, path)
    print(
        f"impasto: interrupted at step {recorder.step}; the image so far is in {path}",
        file=sys.stderr,
    )
    if ckpt.exists():
        print(f"impasto: to continue: impasto stylize --resume {output}", file=sys.stderr)
    return 130
