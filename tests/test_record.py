"""impasto.record: one record of how an image was made, written and read back by every front."""

import pytest

from impasto.config import StyleConfig
from impasto.errors import InputError
from impasto.record import RunRecord


def _record(**changes):
    base = dict(
        content="photo.jpg",
        styles=("a.jpg", "b.jpg"),
        config=StyleConfig(style_blend=(3, 1), size=256),
    )
    return RunRecord(**{**base, **changes})


def test_a_record_survives_the_trip_through_json():
    import json

    record = _record(steps=100, seconds=81.24, content_masks=("sky.png",))
    back = RunRecord.from_metadata(json.loads(json.dumps(record.to_metadata())))
    assert back.config == record.config and back.styles == record.styles
    assert back.content_masks == ("sky.png",) and back.steps == 100 and back.seconds == 81.2


def test_the_weight_the_balance_chose_is_kept_only_where_the_balance_chose_it():
    import json

    auto = _record(style_weight_used=23.456789)
    back = RunRecord.from_metadata(json.loads(json.dumps(auto.to_metadata())))
    assert back.style_weight_used == 23.4568 and back.config.balance == "auto"
    fixed = _record(config=StyleConfig(balance="fixed"), style_weight_used=10.0)
    assert "style_weight_used" not in fixed.to_metadata()  # the config's weight says it


def test_the_rerun_command_names_the_inputs_and_the_changed_options():
    cmd = _record(content="my photo.jpg").command()
    assert cmd.startswith("impasto stylize 'my photo.jpg' a.jpg b.jpg")
    assert "--size 256" in cmd and "--style-blend 3,1" in cmd and cmd.endswith("-o OUT.png")


def test_records_written_by_the_web_page_before_the_formats_were_one_are_read():
    old = {
        "software": "impasto 0.1.0",
        "content": "c.jpg",
        "style": ["s.jpg"],
        "config": {"size": 128},
    }
    record = RunRecord.from_metadata(old)
    assert record.styles == ("s.jpg",) and record.version == "0.1.0" and record.config.size == 128


@pytest.mark.parametrize(
    "change, message",
    [
        ({"config": "str"}, "'config' should be an object of settings, found 'str'"),
        ({"content": None}, "'content' should be the content image's name"),
        ({"styles": "s.jpg"}, "'styles' should be a list of style image names, found 's.jpg'"),
        ({"styles": []}, "'styles' should be a list"),
        ({"styles": [1, 2]}, "'styles' should be a list"),
        ({"content_masks": "m.png"}, "'content_masks' should be a list of mask file names"),
        ({"config": {"size": -3}}, "settings that are not valid: --size must be a whole number"),
        ({"config": {"size": "big"}}, "settings that are not valid"),
        ({"steps": "many"}, "'steps' should be a whole number"),
        ({"style_weight_used": -2}, "'style_weight_used' should be a positive number, found -2"),
        ({"style_weight_used": "9"}, "'style_weight_used' should be a positive number"),
    ],
)
def test_a_doctored_record_is_one_clear_error(change, message):
    data = {**_record().to_metadata(), **change}
    if change.get("content", 0) is None:
        del data["content"]
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        RunRecord.from_metadata(data, where="'x.png'")


def test_located_finds_inputs_beside_the_image(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    record = _record().located(tmp_path)
    assert record.styles == (str(tmp_path / "a.jpg"), "b.jpg")
