"""``impasto video``: a clip painted frame by frame without flicker, resumable."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from impasto.cli.options import (
    add_config_options,
    add_style_images,
    config_from_args,
    given_options,
)
from impasto.cli.stylize import CACHE_HELP
from impasto.errors import UsageError


def number_type(kind: type, option: str) -> Any:
    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{option} expects {what}, not '{text}'") from None

    parse.__name__ = option
    return parse


def _frames_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--temporal-frames expects whole numbers, e.g. 1,2,4, not '{text}'"
        ) from None


def add_video_options(parser: argparse.ArgumentParser) -> None:
    """The options of VideoOptions, with their help from its fields."""
    from impasto.video.options import help_of

    group = parser.add_argument_group("video options")
    group.add_argument(
        "--frames",
        metavar="A:B",
        default=argparse.SUPPRESS,
        help="paint frames A to B-1 only, counted from 0 (either may be left out: 30:, :60)",
    )
    for name, kind, metavar in (
        ("every", number_type(int, "--every"), "N"),
        ("temporal_weight", number_type(float, "--temporal-weight"), "W"),
        ("later_iterations", number_type(int, "--later-iterations"), "N"),
        ("temporal_frames", _frames_list, "K[,K...]"),
        ("fps", number_type(float, "--fps"), "FPS"),
    ):
        group.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"video_{name}",
            type=kind,
            metavar=metavar,
            default=argparse.SUPPRESS,
            help=help_of(name),
        )
    group.add_argument(
        "--flow",
        dest="video_flow",
        choices=("dis",),
        default=argparse.SUPPRESS,
        help=help_of("flow"),
    )


def add_parsers(sub: Any) -> None:
    vi = sub.add_parser(
        "video",
        help="paint a video in the style of one or more paintings, without flicker",
        description="Paint every frame of CLIP (a video file, or an image sequence such as "
        "frames/%05d.png) in the style of STYLE, each frame held to the last one along the "
        "optical flow (Ruder et al. 2016), and write the video to --output. Finished frames are "
        "kept beside the output until the video is written, so an interrupted run goes on with "
        "--resume. Needs the 'video' extra.",
    )
    vi.add_argument("content", nargs="?", metavar="CLIP", help="the video to paint")
    add_style_images(
        vi,
        content_mask_help="grey image, white where a style goes, the same for every frame: "
        "one per style",
    )
    vi.add_argument(
        "-o",
        "--output",
        help="the video to write (.mp4, .m4v, .mov, .mkv, .webm, .avi) or an image sequence "
        "(frames/%%05d.png)",
    )
    vi.add_argument(
        "--resume",
        action="store_true",
        help="finish an interrupted run of this output from its last finished frame (the "
        "inputs and options may be left out: the run's own are used)",
    )
    vi.add_argument(
        "--keep-frames",
        action="store_true",
        help="keep the painted frames (OUTPUT.frames/) after the video is written",
    )
    vi.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    vi.add_argument("--cache-dir", help=CACHE_HELP)
    add_video_options(vi)
    add_config_options(vi)
    vi.set_defaults(run=run)


def video_options_from_args(args: argparse.Namespace, base: Any = None) -> Any:
    """The video options typed, over a stored run's (``base``), over the defaults."""
    from impasto.video.options import VideoOptions, parse_frames

    given = {k[len("video_") :]: v for k, v in vars(args).items() if k.startswith("video_")}
    if hasattr(args, "frames"):
        given["start"], given["stop"] = parse_frames(args.frames)
    stored = base.to_dict() if base is not None else {}
    return VideoOptions(**{**stored, **given})


def run(args: argparse.Namespace) -> int:
    from impasto.video.job import VideoJob

    if not args.output:
        raise UsageError("give the output with -o OUT (e.g. -o clip_painted.mp4)")
    job = VideoJob(_spec(args), args.output, resume=args.resume, cache=args.cache_dir)
    if not args.quiet:
        print(job.describe(), file=sys.stderr)
    bar = VideoBar(args.quiet, job.clip.info.frames, job.done)
    try:
        result = job.run(on_progress=bar, keep_frames=args.keep_frames)
    except KeyboardInterrupt:
        bar.close()
        n, done = job.clip.info.frames, job.store.finished(job.clip.info.frames)
        print(
            f"impasto: interrupted with {done} of {n} frames painted (in {job.store.folder}); "
            f"to continue: impasto video --resume -o {args.output}",
            file=sys.stderr,
        )
        return 130
    finally:
        bar.close()
    if result.warning:
        print(f"impasto: warning: {result.warning}", file=sys.stderr)
    if not args.quiet:
        print(f"wrote {result.describe()}", file=sys.stderr)
    return 0


def _spec(args: argparse.Namespace) -> Any:
    """What to paint: as typed, or with --resume and nothing typed, the interrupted run's."""
    from impasto.video.job import VideoSpec

    styles = [*args.style, *args.more_styles]
    typed = (
        args.content
        or styles
        or args.content_mask
        or args.style_mask
        or given_options(args)
        or getattr(args, "preset", None)
        or any(k.startswith("video_") or k == "frames" for k in vars(args))
    )
    if args.resume and not typed:
        return VideoSpec.stored(args.output)
    if not args.content or not styles:
        raise UsageError(
            "give a clip and at least one style image (impasto video CLIP STYLE -o OUT.mp4)"
        )
    return VideoSpec(
        content=args.content,
        styles=tuple(styles),
        config=config_from_args(args),
        options=video_options_from_args(args),
        content_masks=tuple(args.content_mask),
        style_masks=tuple(args.style_mask),
    )


class VideoBar:
    """A tqdm bar of frames fed by VideoProgress events: the frames done, the current frame's
    step and the time left (from the later frames, not the slow first one)."""

    def __init__(self, quiet: bool, frames: int, done: int) -> None:
        self.quiet, self.frames, self.done = quiet, frames, done
        self.bar: Any = None

    def __call__(self, p: Any) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.frames,
                initial=self.done,
                unit="frame",
                file=sys.stderr,
                dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} frames [{elapsed}{postfix}]",
            )
        shown = {}
        if p.step is not None:
            shown["frame"] = f"{p.frame} step {p.step.step}/{p.step.total_steps}"
        if p.eta is not None:
            shown["left"] = _duration(p.eta)
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(p.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
