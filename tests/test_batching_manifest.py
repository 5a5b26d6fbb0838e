"""impasto.batching.manifest: one line per item, readable after any stop, and what counts as done."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from impasto.batching.manifest import MANIFEST, Manifest, entry_for, is_done, read_manifest
from impasto.batching.plan import Item, sha256_of
from impasto.config import StyleConfig
from impasto.errors import ImpastoError, InputError


def _item(name: str = "p__s.png", **config: object) -> Item:
    return Item(Path("p.jpg"), Path("s.jpg"), StyleConfig(**config), name)


def _done(item: Item, folder: Path, pixels: bytes = b"png bytes") -> dict:
    (folder / item.name).write_bytes(pixels)
    return entry_for(
        item,
        "done",
        content_sha256="c" * 64,
        style_sha256="s" * 64,
        output_sha256=sha256_of(pixels),
        steps=3,
        seconds=1.5,
        worker="host:1",
    )


def test_lines_are_on_disk_as_soon_as_recorded_and_the_last_one_wins(tmp_path):
    a, b = _item("a.png"), _item("b.png")
    with Manifest(tmp_path) as manifest:
        manifest.record(entry_for(a, "failed", content_sha256="", style_sha256="", reason="x"))
        manifest.record(_done(b, tmp_path))
        # Read by another reader while the batch still runs: both lines are there.
        assert list(read_manifest(tmp_path)) == ["a.png", "b.png"]
        manifest.record(_done(a, tmp_path))
    entries = read_manifest(tmp_path)
    assert entries["a.png"]["state"] == "done" and entries["b.png"]["steps"] == 3
    # Closing rewrote it with one line per output, the latest.
    assert len((tmp_path / MANIFEST).read_text().splitlines()) == 2


def test_a_line_torn_by_a_kill_is_ignored_and_dropped(tmp_path):
    item = _item()
    line = json.dumps(_done(item, tmp_path))
    (tmp_path / MANIFEST).write_text(line + "\n" + line[: len(line) // 2])
    assert list(read_manifest(tmp_path)) == [item.name]
    with Manifest(tmp_path) as manifest:
        # Opening rewrote the file without the torn tail, so this line starts a line of its own.
        manifest.record(entry_for(_item("b.png"), "failed", content_sha256="", style_sha256=""))
    assert list(read_manifest(tmp_path)) == [item.name, "b.png"]


def test_a_damaged_line_before_the_last_is_named(tmp_path):
    line = json.dumps(_done(_item(), tmp_path))
    (tmp_path / MANIFEST).write_text(line + "\n{not json\n" + line + "\n")
    with pytest.raises(InputError, match=r"manifest '.*manifest.jsonl' line 2 is not an entry"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text('["a list"]\n')
    with pytest.raises(InputError, match="line 1"):
        read_manifest(tmp_path)


def test_one_batch_at_a_time_per_folder(tmp_path):
    with Manifest(tmp_path):
        with pytest.raises(ImpastoError, match="another impasto batch is writing to"):
            with Manifest(tmp_path):
                pass
    with Manifest(tmp_path):  # released at the end
        pass


def test_done_means_the_same_inputs_settings_and_output(tmp_path):
    item = _item()
    entry = _done(item, tmp_path)
    c, s = "c" * 64, "s" * 64
    assert is_done(entry, item, tmp_path, c, s)
    assert not is_done(None, item, tmp_path, c, s)
    assert not is_done(entry, item, tmp_path, "d" * 64, s)  # the photo changed
    assert not is_done(entry, item, tmp_path, c, "t" * 64)  # the style changed
    other = Item(item.content, item.style, StyleConfig(style_weight=20), item.name)
    assert not is_done(entry, other, tmp_path, c, s)  # other settings
    deeper = Item(item.content, item.style, item.config, item.name, bit_depth=16)
    assert not is_done(entry, deeper, tmp_path, c, s)
    assert not is_done({**entry, "state": "failed"}, item, tmp_path, c, s)
    (tmp_path / item.name).write_bytes(b"edited by hand")
    assert not is_done(entry, item, tmp_path, c, s)  # the output is not what was written
    (tmp_path / item.name).unlink()
    assert not is_done(entry, item, tmp_path, c, s)


def test_settings_compare_as_stored(tmp_path):
    # Tuples become JSON lists in the file; the comparison must not see a change in that.
    item = _item(style_scale=(0.5,), iterations=(3, 2), size=64, min_size=32)
    entry = json.loads(json.dumps(_done(item, tmp_path)))
    assert is_done(entry, item, tmp_path, "c" * 64, "s" * 64)
