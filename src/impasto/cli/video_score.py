"""``impasto score --video``: the flicker of a stylized video, and its per-frame figures."""

from __future__ import annotations

import argparse

from impasto.cli.video import number_type
from impasto.errors import UsageError


def add_score_options(parser: argparse.ArgumentParser) -> None:
    """``impasto score --video``: the flicker figure and the per-frame figures of a video."""
    group = parser.add_argument_group("video (impasto score --video OUT --content CLIP --style S)")
    group.add_argument(
        "--video",
        metavar="OUT",
        help="judge a stylized video (or image sequence) against the clip given as --content: "
        "its temporal error (flicker) and the mean per-frame style and content distances",
    )
    group.add_argument(
        "--frames",
        metavar="A:B",
        help="the frames of --content that the video was made from (as given to impasto video)",
    )
    group.add_argument(
        "--every", type=number_type(int, "--every"), metavar="N", help="as given to impasto video"
    )
    group.add_argument(
        "--fps",
        type=number_type(float, "--fps"),
        metavar="FPS",
        help="frame rate of image sequences (does not change the figures)",
    )
    group.add_argument(
        "--temporal-only",
        action="store_true",
        help="only the temporal error: no per-frame figures (which need VGG-16 and time)",
    )


def score_video(args: argparse.Namespace) -> int:
    import json
    import math

    from impasto.video.clip import Clip
    from impasto.video.metrics import score_video as measure
    from impasto.video.options import VideoOptions, parse_frames

    if args.video and args.output:
        raise UsageError(f"give either an image (OUT) or --video, not both ({args.output})")
    if not args.video:
        raise UsageError("give the image to judge (impasto score OUT ...) or --video OUT")
    start, stop = parse_frames(args.frames) if args.frames else (0, None)
    chosen = VideoOptions(start=start, stop=stop, every=args.every or 1, fps=args.fps)
    stylized = Clip(args.video, VideoOptions(fps=args.fps), what="video")
    content = Clip(args.content, chosen, what="content clip")
    if stylized.info.frames != content.info.frames:
        raise UsageError(
            f"video '{args.video}' has {stylized.info.frames} frames and the chosen frames of "
            f"'{args.content}' {content.info.frames}: give the --frames and --every it was "
            "made with"
        )
    if not args.temporal_only:
        from impasto.image import load_image

        load_image(args.style, what="style image")  # a wrong path fails before the frames
    result = measure(
        stylized.frames(),
        content.frames(),
        args.style,
        cache=args.cache_dir,
        frames=not args.temporal_only,
    )
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(
        f"temporal error   {result.temporal:.3f}  (RMS change from the last frame along the "
        f"input's flow, 8-bit levels; the input clip itself: {result.input_temporal:.3f})"
    )
    if not math.isnan(result.style):
        n = result.frames
        print(f"style distance   {result.style:.4f}  (VGG-16 Gram, mean of {n} frames)")
        print(f"content distance {result.content:.4f}  (LPIPS-VGG, mean of {n} frames)")
    return 0
