"""impasto.video.clip and encode: frames in and out, with frame count, rate, size and audio
kept, frame ranges, image sequences, and the refusals, before any work."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest
import torch

from impasto.errors import InputError, UsageError
from impasto.image import save_image
from impasto.video.clip import Clip
from impasto.video.encode import check_video_output, encode
from impasto.video.options import VideoOptions
from tests.video_helpers import pan, write_clip


@pytest.fixture(scope="module")
def frames() -> list[torch.Tensor]:
    return pan(10)


@pytest.fixture(scope="module")
def clip_with_audio(tmp_path_factory, frames):
    return write_clip(tmp_path_factory.mktemp("clip") / "pan.mp4", frames, fps=10, audio="aac")


def _streams(path):
    with av.open(str(path)) as c:
        video = c.streams.video[0]
        n = sum(1 for _ in c.decode(video))
        audio = c.streams.audio[0].codec_context.name if c.streams.audio else None
        return n, video.average_rate, (video.codec_context.width, video.codec_context.height), audio


def test_decode_gives_every_frame_as_displayed(clip_with_audio, frames):
    clip = Clip(clip_with_audio)
    info = clip.info
    assert (info.frames, info.total, info.fps, info.width, info.height) == (10, 10, 10, 96, 64)
    assert (info.codec, info.audio) == ("h264", "aac")
    got = list(clip.frames())
    assert len(got) == 10 and got[0].shape == (1, 3, 64, 96)
    for a, b in zip(got, frames):
        assert float((a - b).abs().mean()) < 4 / 255  # H.264 at quality 12: close, not exact


def test_frame_range_and_every(clip_with_audio, frames):
    clip = Clip(clip_with_audio, VideoOptions(start=2, stop=9, every=3))
    assert clip.info.indices == (2, 5, 8) and clip.info.frames == 3
    assert clip.info.fps == Fraction(10, 3)  # the duration stays
    got = list(clip.frames())
    errors = [[float((g - f).abs().mean()) for f in frames] for g in got]
    assert [e.index(min(e)) for e in errors] == [2, 5, 8]
    assert len(list(clip.frames(first=1))) == 2  # resuming skips what is done


def test_encode_keeps_count_rate_size_and_copies_audio(tmp_path, clip_with_audio):
    clip = Clip(clip_with_audio)
    out = tmp_path / "out.mp4"
    written = encode(
        clip.frames(), out, clip.info.fps, audio_from=clip_with_audio, metadata={"a": 1}
    )
    assert (written.codec, written.frames, written.audio, written.warning) == (
        "libx264" if "libx264" in av.codecs_available else written.codec,
        10,
        "aac",
        None,
    )
    n, rate, size, audio = _streams(out)
    assert (n, rate, size, audio) == (10, 10, (96, 64), "aac")


def test_a_frame_range_takes_its_part_of_the_audio(tmp_path, clip_with_audio):
    clip = Clip(clip_with_audio, VideoOptions(start=5))
    out = encode(
        clip.frames(),
        tmp_path / "half.mkv",
        clip.info.fps,
        audio_from=clip_with_audio,
        audio_window=(clip.info.start, clip.info.end),
    ).path
    with av.open(str(out)) as c:
        seconds = sum(
            float(p.duration * p.time_base) for p in c.demux(c.streams.audio[0]) if p.size
        )
    assert 0.35 < seconds < 0.65  # the second half of a 1 s tone


def test_audio_a_container_cannot_hold_is_left_out_with_a_warning(tmp_path, frames):
    source = write_clip(tmp_path / "pcm.mkv", frames, audio="pcm_s16le")
    written = encode(Clip(source).frames(), tmp_path / "out.webm", Fraction(12), audio_from=source)
    assert written.audio is None and "pcm_s16le" in written.warning
    assert _streams(written.path)[0] == 10 and _streams(written.path)[3] is None


def test_image_sequences_in(tmp_path, frames):
    (tmp_path / "seq").mkdir()
    for i, f in enumerate(frames[:5]):
        save_image(f, tmp_path / "seq" / f"{i + 1:04d}.png")
    clip = Clip(tmp_path / "seq" / "%04d.png", VideoOptions(fps=8))
    assert (clip.info.frames, clip.info.fps, clip.info.width) == (5, 8, 96)
    got = list(clip.frames())
    assert all(float((g - f).abs().max()) <= 0.5 / 255 + 1e-6 for g, f in zip(got, frames))


def test_rotated_video_is_turned_upright(tmp_path, frames):
    path = write_clip(tmp_path / "turned.mp4", frames[:2], rotation=90)
    clip = Clip(path)
    assert (clip.info.width, clip.info.height) == (64, 96)
    first = next(clip.frames())
    upright = torch.rot90(frames[0], 1, dims=(-2, -1))  # a quarter turn counterclockwise
    assert first.shape == upright.shape
    assert float((first - upright).abs().mean()) < 4 / 255


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.mp4", "does not exist"),
        (
            lambda d: (d / "notes.mp4").write_text("not a video") and d / "notes.mp4",
            "could not be read as a video",
        ),
        (lambda d: d, "is a folder"),
        (lambda d: d / "none" / "%05d.png", "does not exist"),
        (lambda d: d / "%05d.png", "matches no files"),
    ],
    ids=["missing", "text", "folder", "no-folder", "empty-sequence"],
)
def test_bad_clips_are_input_errors(tmp_path, make, message):
    with pytest.raises(InputError, match=message):
        Clip(make(tmp_path))


def test_a_video_without_frames(tmp_path):
    path = tmp_path / "empty.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=12)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        c.start_encoding()
    with pytest.raises(InputError, match="no video frames"):
        Clip(path)


def test_a_codec_ffmpeg_cannot_decode_is_named(tmp_path, frames, monkeypatch):
    import impasto.video.clip as clip_module

    path = write_clip(tmp_path / "pan.mp4", frames[:2])
    monkeypatch.setattr(clip_module, "_can_decode", lambda av, codec: False)
    with pytest.raises(InputError, match="coded in h264, which this build"):
        Clip(path)


def test_a_range_past_the_end(clip_with_audio):
    with pytest.raises(UsageError, match="starts at frame 12, but .* has 10 frames"):
        Clip(clip_with_audio, VideoOptions(start=12))


@pytest.mark.parametrize(
    "name, message",
    [
        ("out.gif", "not .gif"),
        ("out", "not no extension"),
        ("frames/%05d.gif", "frames .*, not '.gif'"),
    ],
)
def test_outputs_no_container_supports(name, message):
    with pytest.raises(UsageError, match=message):
        check_video_output(name)


def test_video_outputs_by_extension():
    assert check_video_output("a.webm")[0] == "webm"
    assert check_video_output("a.MKV")[0] == "matroska"
    assert check_video_output("frames/%05d.png") is None
    assert check_video_output("frames/f%d.jpg") is None
