"""What one job may cost on impasto serve (impasto/web/limits.py): every option that costs time
or memory is bounded, by StyleConfig for every front and by the operator's caps on the server,
and the cases a hostile probe tried are refused with one line, before anything runs."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from impasto.cli import build_parser
from impasto.config import StyleConfig
from impasto.errors import UsageError
from impasto.web.app import create_app
from impasto.web.limits import MB, Limits

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOKEN = "test-key-0123456789abcdef"


def never_runs(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a job ran that should have been refused")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(tmp_path / "data", token=TOKEN, runner=never_runs)
    with TestClient(
        app, base_url="http://127.0.0.1:8000", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        yield client


def test_the_default_schedules_fit_the_default_caps():
    limits = Limits()
    for size in (64, 512, 1024, limits.max_size):
        limits.check(StyleConfig(size=size), 1)
    for size in (512, limits.max_size):
        limits.check(StyleConfig.from_preset("painterly", size=size), 1)
    limits.check(StyleConfig.from_preset("tutorial", size=512), 1)  # 1000 steps: exactly the cap
    limits.check(StyleConfig(size=1024, style_scale=2), 1)  # a 2048 px style image: allowed


@pytest.mark.parametrize(
    ("config", "styles", "message"),
    [
        (
            dict(iterations=1001, scales=1),
            1,
            "this job would take 1,001 steps (1001 at 512 px); this server runs at most 1,000 a "
            "job (impasto serve --max-steps)",
        ),
        (dict(iterations=(600, 500)), 1, "1,100 steps (600 at 256 px + 500 at 512 px)"),
        (
            dict(size=1024, style_scale=4),
            1,
            "--style-scale 4 at --size 1024 makes a 4096 px style image; this server makes "
            "images up to 2048 px (--max-size)",
        ),
        (dict(size=1024, style_scale=(1, 2.5)), 2, "--style-scale 2.5 at --size 1024"),
        (dict(size=4096), 1, "--size 4096 is larger than this server allows (2048 px)"),
        (dict(), 9, "9 style images were sent; this server takes at most 8"),
    ],
)
def test_jobs_over_a_cap_are_refused_naming_the_option(config, styles, message):
    with pytest.raises(UsageError) as e:
        Limits().check(StyleConfig(**config), styles)
    assert message in str(e.value)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--max-steps", "0", "--max-steps must be positive, not 0"),
        ("--max-size", "-5", "--max-size must be positive, not -5"),
        ("--max-upload-mb", "nan", "--max-upload-mb must be positive, not nan"),
        ("--max-minutes", "-1", "--max-minutes must be 0 (no limit) or positive, not -1"),
        ("--max-data-mb", "inf", "--max-data-mb must be 0 (no limit) or positive, not inf"),
        ("--max-queue", "0", "--max-queue must be positive"),
    ],
)
def test_serve_refuses_caps_that_cannot_work(option: str, value: str, message: str):
    from impasto.web.server import serve

    args = build_parser().parse_args(["serve", option, value])
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        serve(args)


def test_serve_options_become_limits_in_their_units():
    args = build_parser().parse_args(
        ["serve", "--max-steps", "300", "--max-minutes", "1.5", "--max-data-mb", "10"]
    )
    from impasto.web.server import limits_from_args

    limits = limits_from_args(args)
    assert limits == Limits(max_steps=300, max_seconds=90.0, max_data_bytes=10 * MB)


# The probe of the issue, as a hostile or careless client tried it: every case is a one-line 422
# before anything is stored or run.
PROBE = {
    "a billion steps": ({"iterations": "1000000000"}, "--iterations must be a whole number"),
    "steps over the server's cap": ({"iterations": "5000", "scales": "1"}, "--max-steps"),
    "style scale 1000": ({"style_scale": "1000"}, "--style-scale must be a finite number"),
    "style scale 8 at 512 px": ({"style_scale": "8"}, "4096 px style image"),
    "seed 2**64": ({"seed": str(2**64), "init": "noise"}, "--seed must be a whole number"),
    "lr 1e308 with adam": ({"lr": "1e308", "optimizer": "adam"}, "--lr must be a finite number"),
    "lr inf": ({"lr": "inf"}, "--lr expects a finite number"),
    "size 4096": ({"size": "4096"}, "--max-size"),
    "a dozen scales of 1 step": ({"scales": "13"}, "--scales must be a whole number"),
    "weights 1e300": ({"style_weight": "1e300"}, "--style-weight must be a finite number"),
    "init a server path": ({"init": "/etc/passwd"}, "--init must be one of content, noise"),
    "a negative blend weight": ({"style_blend": "-1"}, "--style-blend must be a finite number"),
    "a blend for two styles, one sent": (
        {"style_blend": "1,2"},
        "--style-blend has 2 weights for 1 style image",
    ),
    "a style scale per style, too many": (
        {"style_scale": "1,0.5"},
        "--style-scale has 2 values for 1 style images",
    ),
}


@pytest.mark.parametrize("case", list(PROBE))
def test_the_probe_gets_one_line_for_every_case(client: TestClient, case: str):
    options, message = PROBE[case]
    photo = (EXAMPLES / "astronaut.jpg").read_bytes()
    files = [("content", ("a.jpg", photo, "image/jpeg")), ("style", ("s.jpg", photo, "image/jpeg"))]
    response = client.post("/api/jobs", files=files, data=options)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert message in detail and "\n" not in detail and "internal error" not in detail
    assert client.get("/api/jobs").json() == []


def test_the_page_is_told_the_caps(client: TestClient):
    limits = client.get("/api/options").json()["limits"]
    assert limits["max_steps"] == Limits().max_steps
    assert limits["max_seconds"] == Limits().max_seconds
    assert limits["max_request_bytes"] == Limits().max_request_bytes
