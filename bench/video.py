"""impasto video against independent per-frame runs, on one clip, in one process.

    python bench/video.py            # 512 px, 72 frames (writes bench/video_results.md/json,
                                     # docs/video_strip.jpg); hours on a 2-core CPU
    python bench/video.py --smoke    # the bench itself in minutes: tiny frames, numbers meaningless

The clip is made from examples/mountains.jpg: a slow pan across the photo with a slow zoom in,
encoded to H.264 as a camera would deliver it. One engine paints it twice in the style of The
Starry Night with the default settings:

  video        ``impasto video``'s method (VideoRun): the first frame coarse to fine, each later
               one from the last warped along the flow, with the temporal loss
  independent  every frame its own default coarse-to-fine run, as ``impasto stylize`` would

and both are judged with ``impasto score --video``'s figures: the temporal error (flicker,
along the INPUT's flow) and the mean per-frame style and content distances (VGG-16). Also the
seconds per frame: the video's first frame against its later ones (the same size, one run).
``--variants`` adds runs with other later-frame step counts and long-term consistency, to
measure those choices. Every figure is a ratio within this one run, on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

EXAMPLES = ROOT / "examples"
PHOTO, PAINTING = EXAMPLES / "mountains.jpg", EXAMPLES / "starry_night.jpg"
FPS = 24
# Targets of the issue, as ratios of one run.
TEMPORAL_RATIO, FIGURE_MARGIN, LATER_TIME_RATIO = 1 / 3, 0.05, 0.40


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_clip(path: Path, size: int, frames: int) -> Path:
    """A slow pan and zoom across the photo, 16:9, long side ``size``, H.264."""
    import torch
    import torch.nn.functional as F

    from impasto.image import load_image
    from impasto.video.encode import encode, even_size

    photo = load_image(PHOTO)
    _, _, ph, pw = photo.shape
    h, w = even_size(round(size * 9 / 16), size)

    def frame(i: int) -> torch.Tensor:
        t = i / max(frames - 1, 1)
        zoom = 1.0 + 0.15 * t  # 15% closer by the end
        cw = 0.78 * pw / zoom
        ch = cw * h / w
        cx = 0.40 * pw + 0.15 * pw * t  # the window's centre pans right and a little up
        cy = 0.52 * ph - 0.04 * ph * t
        theta = torch.tensor(
            [[[cw / pw, 0, 2 * cx / pw - 1], [0, ch / ph, 2 * cy / ph - 1]]], dtype=torch.float32
        )
        # Antialias by sampling at twice the size, then averaging.
        big = F.affine_grid(theta, (1, 3, 2 * h, 2 * w), align_corners=False)
        out = F.grid_sample(photo, big, mode="bicubic", align_corners=False)
        return F.avg_pool2d(out, 2).clamp(0, 1)

    encode((frame(i) for i in range(frames)), path, Fraction(FPS))
    return path


def paint_video(engine, clip_path: Path, config, options, folder: Path) -> dict:
    """impasto video's method; frames in ``folder``; seconds of each frame."""
    from impasto.video.clip import Clip
    from impasto.video.runner import FrameStore, VideoRun, frame_size

    clip = Clip(clip_path, options)
    size = frame_size(clip, config, even=True)
    store = FrameStore(folder / "video.mp4")
    store.folder.mkdir(parents=True, exist_ok=True)
    painter = VideoRun(engine, clip, [PAINTING], config, options, size)
    seconds = painter.run(store)
    frames = [store.path(i) for i in range(clip.info.frames)]
    return {"seconds": seconds, "frames": [str(p) for p in frames]}


def paint_independent(engine, clip_path: Path, config, options, folder: Path) -> dict:
    """Every frame on its own, with the first frame's settings."""
    from impasto.image import resize_to, save_image
    from impasto.video.clip import Clip
    from impasto.video.runner import frame_size

    clip = Clip(clip_path, options)
    h, w = frame_size(clip, config, even=True)
    folder.mkdir(parents=True, exist_ok=True)
    seconds, frames = [], []
    for i, raw in enumerate(clip.frames()):
        start = time.perf_counter()
        out = engine.stylize(resize_to(raw, h, w), PAINTING, config.replace(size=max(h, w)))
        seconds.append(time.perf_counter() - start)
        frames.append(str(save_image(out, folder / f"{i + 1:06d}.png")))
    return {"seconds": seconds, "frames": frames}


def judge(run: dict, clip_path: Path, options, per_frame: bool) -> dict:
    from impasto.image import load_image
    from impasto.video.clip import Clip
    from impasto.video.metrics import score_video

    frames = (load_image(p) for p in run["frames"])
    s = score_video(frames, Clip(clip_path, options).frames(), PAINTING, frames=per_frame)
    return s.to_dict()


def strip(rows: list[tuple[str, list[str]]], path: Path, picks: int = 4) -> None:
    """One row per run, ``picks`` frames spread over the clip, labelled."""
    from PIL import Image, ImageDraw

    n = len(rows[0][1])
    chosen = sorted({round(i * (n - 1) / max(picks - 1, 1)) for i in range(picks)})
    tiles = [[Image.open(row[1][i]).convert("RGB") for i in chosen] for row in rows]
    w, h = tiles[0][0].size
    label, gap = 120, 4
    sheet = Image.new("RGB", (label + len(chosen) * (w + gap), len(rows) * (h + gap) + 20), "white")
    draw = ImageDraw.Draw(sheet)
    for c, i in enumerate(chosen):
        draw.text((label + c * (w + gap) + 4, 4), f"frame {i}", fill="black")
    for r, (name, _) in enumerate(rows):
        y = 20 + r * (h + gap)
        draw.text((4, y + h // 2 - 6), name, fill="black")
        for c, tile in enumerate(tiles[r]):
            sheet.paste(tile, (label + c * (w + gap), y))
    with open(path, "wb") as f:
        sheet.save(f, format="JPEG", quality=88)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512, help="long side of the frames")
    parser.add_argument("--frames", type=int, default=72, help="frames in the clip")
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also later frames with 10 and 40 steps, and long-term consistency (1,2,4)",
    )
    parser.add_argument("--smoke", action="store_true", help="64 px, 6 frames, few steps")
    parser.add_argument("--out", type=Path, default=None, help="where results go")
    args = parser.parse_args(argv)

    from run import machine

    from impasto import StyleConfig, Stylizer
    from impasto.video.options import VideoOptions

    config = StyleConfig(size=args.size)
    options = VideoOptions()
    if args.smoke:
        args.size, args.frames = 64, 6
        config = StyleConfig(size=64, min_size=32, iterations=(4, 3))
        options = VideoOptions(later_iterations=3)
    out = args.out or (BENCH / "cache" / "video-smoke" if args.smoke else BENCH)
    work = (BENCH / "cache" / "video-smoke") if args.smoke else (BENCH / "cache" / "video")
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "size": args.size,
        "frames": args.frames,
        "config": config.changed(),
        "video": options.to_dict(),
        "runs": {},
    }
    log(f"machine: {results['machine']}")
    clip = make_clip(work / f"clip-{args.size}-{args.frames}.mp4", args.size, args.frames)
    log(f"clip: {clip}")
    engine = Stylizer()
    runs = {
        "video": (paint_video, options),
        "independent": (paint_independent, options),
    }
    if args.variants:
        for steps in (10, 40):
            runs[f"video, {steps} later steps"] = (
                paint_video,
                options.replace(later_iterations=steps),
            )
        runs["video, long-term 1,2,4"] = (paint_video, options.replace(temporal_frames=(1, 2, 4)))
    for name, (paint, opts) in runs.items():
        log(f"{name} ...")
        folder = work / name.replace(" ", "_").replace(",", "")
        shutil.rmtree(folder, ignore_errors=True)  # frames of an earlier bench would be kept
        run = paint(engine, clip, config, opts, folder)
        run |= {k: v for k, v in judge(run, clip, opts, per_frame=True).items() if k != "frames"}
        results["runs"][name] = run
        log(
            f"  {name}: temporal {run['temporal']:.3f}, style {run['style']:.4f}, content "
            f"{run['content']:.4f}, first {run['seconds'][0]:.1f} s, later median "
            f"{statistics.median(run['seconds'][1:]):.1f} s"
        )
    video, alone = results["runs"]["video"], results["runs"]["independent"]
    later = statistics.median(video["seconds"][1:])
    results["ratios"] = {
        "temporal": video["temporal"] / alone["temporal"],
        "style": video["style"] / alone["style"],
        "content": video["content"] / alone["content"],
        "later_over_first": later / video["seconds"][0],
    }
    rows = [
        ("input", [str(p) for p in _input_frames(clip, options, work / "input")]),
        ("impasto video", video["frames"]),
        ("independent", alone["frames"]),
    ]
    strip_path = (
        out / "video_strip.jpg" if args.smoke or args.out else ROOT / "docs" / "video_strip.jpg"
    )
    strip(rows, strip_path)
    (out / "video_results.json").write_text(json.dumps(results, indent=1))
    (out / "video_results.md").write_text(markdown(results, os.path.relpath(strip_path, out)))
    log(f"wrote {out / 'video_results.md'}, {out / 'video_results.json'}, {strip_path}")
    return 0


def _input_frames(clip: Path, options, folder: Path) -> list[Path]:
    from impasto.image import save_image
    from impasto.video.clip import Clip

    folder.mkdir(parents=True, exist_ok=True)
    return [
        save_image(f, folder / f"{i + 1:06d}.png")
        for i, f in enumerate(Clip(clip, options).frames())
    ]


def markdown(results: dict, strip_path: str) -> str:
    m = results["machine"]
    r = results["ratios"]
    ok = {
        "temporal": r["temporal"] <= TEMPORAL_RATIO,
        "style": abs(r["style"] - 1) <= FIGURE_MARGIN,
        "content": abs(r["content"] - 1) <= FIGURE_MARGIN,
        "time": r["later_over_first"] <= LATER_TIME_RATIO,
    }
    lines = [
        "# impasto video against independent per-frame runs",
        "",
        f"{results['date']}, {m['cpu']} ({m['cores']} cores, {', '.join(m['isa'])}), torch "
        f"{m.get('torch', '?')}. Clip: {results['frames']} frames of examples/mountains.jpg "
        f"panned and zoomed, long side {results['size']} px, {FPS} fps; style: The Starry Night; "
        "default settings. Generated by `python bench/video.py`.",
        "",
        "| run | temporal error (levels) | style distance | content distance | first frame | later frames (median) |",
        "|---|---|---|---|---|---|",
    ]
    for name, run in results["runs"].items():
        later = statistics.median(run["seconds"][1:]) if len(run["seconds"]) > 1 else 0
        lines.append(
            f"| {name} | {run['temporal']:.3f} | {run['style']:.4f} | {run['content']:.4f} | "
            f"{run['seconds'][0]:.1f} s | {later:.1f} s |"
        )
    first = next(iter(results["runs"].values()))
    lines += [
        "",
        f"The input clip's own temporal error (flow errors, changes of light, compression): "
        f"{first['input_temporal']:.3f} levels.",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        f"| temporal error at most 1/3 of independent runs' | {r['temporal']:.3f}x | {ok['temporal']} |",
        f"| style distance within 5% of independent runs' | {r['style']:.3f}x | {ok['style']} |",
        f"| content distance within 5% of independent runs' | {r['content']:.3f}x | {ok['content']} |",
        f"| later frames at most 40% of the first frame's time | {r['later_over_first']:.3f}x | {ok['time']} |",
        "",
        f"![frames of the input, impasto video and independent runs]({strip_path})",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
