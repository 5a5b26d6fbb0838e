"""The web app: the page, its static files, and the HTTP API that the page and other programs use.

    POST   /api/jobs               multipart: content, style (one or more), options -> job (201)
    GET    /api/jobs               every job, newest first
    GET    /api/jobs/{id}          one job's state
    GET    /api/jobs/{id}/events   its progress as server-sent events, until it finishes
    GET    /api/jobs/{id}/preview  the image as it forms (JPEG)
    GET    /api/jobs/{id}/result   the finished image (PNG, with the run's settings embedded)
    DELETE /api/jobs/{id}          cancel it
    GET    /api/options            the options (from StyleConfig), limits and bundled examples

Job ids are UUIDs made by the server and checked as such before any path is built, and uploaded
files are stored under names the server chooses, so nothing a client sends names a file.

This module is longer than 400 lines because every route carries the documentation that the
``/docs`` page shows.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from impasto import __version__
from impasto.config import StyleConfig
from impasto.errors import ImpastoError, UsageError
from impasto.web import options as form_options
from impasto.web.jobs import FINISHED, Job, JobManager, Runner, valid_id
from impasto.web.uploads import Limits, NotAnImage, UploadTooLarge, remove_tree, store_upload

STATIC = Path(__file__).parent / "static"
JobId = Annotated[str, PathParam(description="the job's id, as POST /api/jobs answered it")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no job with this id"}}
EVENT_POLL = 0.1  # seconds between looks at a job's events (an in-memory check)
KEEPALIVE = 15.0  # seconds between SSE comments on a quiet stream, so proxies keep it open

EXAMPLES = [
    {
        "role": "content",
        "name": "astronaut.jpg",
        "url": "/static/example-astronaut.jpg",
        "title": "Astronaut Eileen Collins",
        "credit": "NASA, public domain",
    },
    {
        "role": "style",
        "name": "starry_night.jpg",
        "url": "/static/example-starry-night.jpg",
        "title": "The Starry Night",
        "credit": "Vincent van Gogh, 1889, public domain",
    },
]

DESCRIPTION = """\
Neural style transfer (Gatys et al.) over HTTP: upload a content photo and one or more style
images, follow the run as server-sent events, download the result.

```sh
curl -F content=@photo.jpg -F style=@painting.jpg -F size=256 http://127.0.0.1:8000/api/jobs
curl -N http://127.0.0.1:8000/api/jobs/ID/events
curl -o result.png http://127.0.0.1:8000/api/jobs/ID/result
```

Options are the fields of `impasto.StyleConfig`, sent as form fields of the same name (lists as
comma-separated text). Errors answer with a JSON `detail` saying what was wrong.
"""


def create_app(
    data_dir: str | os.PathLike[str],
    *,
    cache: str | os.PathLike[str] | None = None,
    limits: Limits | None = None,
    workers: int = 1,
    runner: Runner | None = None,
) -> FastAPI:
    """The ASGI app, its jobs kept under ``data_dir`` (created when the app starts)."""
    limits = limits or Limits()
    manager = JobManager(data_dir, cache=cache, workers=workers, runner=runner)
    max_styles = limits.max_styles

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        manager.start()
        try:
            yield
        finally:
            await run_in_threadpool(manager.stop)

    app = FastAPI(
        title="impasto",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # the default page loads Swagger UI from a CDN; ours works offline
        redoc_url=None,
    )
    app.state.manager = manager
    app.state.limits = limits
    # Room for the largest allowed files plus the form's text fields.
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes * (max_styles + 1) + 2**20)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def find(job_id: str) -> Job:
        job = manager.get(job_id) if valid_id(job_id) else None
        if job is None:
            raise HTTPException(404, detail="no job with this id")
        return job

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse((STATIC / "docs.html").read_text(encoding="utf-8"))

    @app.get("/api/options", summary="The options a job takes, the server's limits, examples")
    def get_options() -> dict[str, Any]:
        """Every field of `StyleConfig` (name, kind, default, choices, help), what the server
        accepts (bytes and pixels per image, the largest size, how many style images), and the
        example images bundled with the page."""
        return {
            "version": __version__,
            "fields": form_options.describe(),
            "limits": {**asdict(limits), "max_styles": max_styles},
            "examples": EXAMPLES,
        }

    @app.post(
        "/api/jobs",
        status_code=201,
        summary="Start a job: a content photo, one or more style images, options",
        openapi_extra=_job_form_schema(max_styles),
        responses={
            201: {"description": "the job, queued"},
            413: {"description": "an image is larger than the server accepts (bytes)"},
            415: {"description": "a file is not an image of an accepted format"},
            422: {"description": "missing image, too many pixels, or a bad option value"},
        },
    )
    async def create_job(request: Request) -> JSONResponse:
        """Queue a run. Answers at once with the job (`id`, `state`, `position` in the queue and
        the URLs to follow it); the run itself happens in a worker, one job at a time."""
        async with request.form(max_files=max_styles + 10, max_fields=200) as form:
            content = form.get("content")
            styles = [s for s in form.getlist("style") if isinstance(s, UploadFile)]
            if not isinstance(content, UploadFile):
                raise HTTPException(422, detail="choose a content photo (form field 'content')")
            if not styles:
                raise HTTPException(422, detail="choose a style image (form field 'style')")
            if len(styles) > max_styles:
                raise HTTPException(
                    422,
                    detail=f"{len(styles)} style images were sent; this server takes at most {max_styles}",
                )
            given: dict[str, str] = {}
            for key, value in form.multi_items():
                if key in ("content", "style"):
                    continue
                if not isinstance(value, str):
                    raise HTTPException(422, detail=f"option '{key}' must be text, not a file")
                given[key] = value
            try:
                config = form_options.make_config(given)
            except UsageError as e:
                raise HTTPException(422, detail=str(e)) from None
            if config.size > limits.max_size:
                raise HTTPException(
                    422,
                    detail=f"--size {config.size} is larger than this server allows ({limits.max_size} px); "
                    f"start impasto serve with a larger --max-size to allow it",
                )
            options = {k: v for k, v in given.items() if v.strip()}
            job = await run_in_threadpool(
                _store_and_submit, manager, limits, content, styles, config, options
            )
        return JSONResponse(
            manager.snapshot(job), status_code=201, headers={"Location": f"/api/jobs/{job.id}"}
        )

    @app.get("/api/jobs", summary="Every job, newest first")
    def list_jobs() -> list[dict[str, Any]]:
        return [manager.snapshot(j) for j in manager.list()]

    @app.get("/api/jobs/{job_id}", summary="A job's state", responses=NOT_FOUND)
    def get_job(job_id: JobId) -> dict[str, Any]:
        """`state` is queued, running, done, failed or cancelled; `position` is the place in the
        queue (1 = next); `step`/`total_steps`, `elapsed` and `eta` (seconds), `losses` by term;
        `error` says why a job failed; `preview_url` and `result_url` where there is an image."""
        return manager.snapshot(find(job_id))

    @app.delete("/api/jobs/{job_id}", summary="Cancel a job", responses=NOT_FOUND)
    def cancel_job(job_id: JobId) -> dict[str, Any]:
        """A queued job is cancelled at once; a running one stops after its current step (its
        state becomes `cancelled` shortly after). A finished job is left as it is."""
        job = manager.cancel(find(job_id).id)
        assert job is not None
        return manager.snapshot(job)

    @app.get(
        "/api/jobs/{job_id}/events",
        summary="A job's progress, as server-sent events",
        responses={200: {"content": {"text/event-stream": {}}}, **NOT_FOUND},
    )
    async def job_events(job_id: JobId) -> StreamingResponse:
        """A `text/event-stream`. The first event, `state`, is the job as it is now; then
        `queued` (its place changed), `started`, `progress` (after every step), `cancelling`,
        and one final event, `done`, `failed` or `cancelled`, after which the stream ends. Every
        event's data is the job as `GET /api/jobs/{id}` shows it."""
        job = find(job_id)
        return StreamingResponse(
            _event_stream(manager, job),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get(
        "/api/jobs/{job_id}/preview",
        summary="The image as it forms (JPEG)",
        responses={
            200: {"content": {"image/jpeg": {}}},
            404: {"description": "no such job, or no preview yet"},
        },
    )
    def job_preview(job_id: JobId) -> Response:
        job = find(job_id)
        try:
            # Read whole (it is small): the worker replaces the file while the run goes on.
            data = job.preview_path.read_bytes() if job.preview_step else None
        except FileNotFoundError:
            data = None
        if data is None:
            raise HTTPException(404, detail="no preview yet")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-cache"})

    @app.get(
        "/api/jobs/{job_id}/result",
        summary="The finished image (PNG)",
        responses={
            200: {"content": {"image/png": {}}},
            409: {"description": "the job has no result (not done)"},
            **NOT_FOUND,
        },
    )
    def job_result(job_id: JobId) -> FileResponse:
        """The result as a PNG file, with the run's settings stored in it (where the installed
        impasto can write metadata)."""
        job = find(job_id)
        if job.state != "done" or not job.result_path.is_file():
            raise HTTPException(409, detail=f"the job is {job.state}; it has no result")
        return FileResponse(job.result_path, media_type="image/png", filename=download_name(job))

    return app


def _store_and_submit(
    manager: JobManager,
    limits: Limits,
    content: UploadFile,
    styles: list[UploadFile],
    config: StyleConfig,
    options: dict[str, str],
) -> Job:
    """Save and check the uploads (in a worker thread: decoding a large image takes a moment)."""
    job_id, staged = manager.staging_folder()
    try:
        stored_content = store_upload(
            content.file,
            staged,
            "content",
            name=_client_name(content),
            what="content photo",
            limits=limits,
        )
        stored_styles = [
            store_upload(
                s.file,
                staged,
                f"style-{i}",
                name=_client_name(s),
                what="style image",
                limits=limits,
            )
            for i, s in enumerate(styles, 1)
        ]
        return manager.submit(
            job_id,
            staged,
            content=stored_content.path,
            styles=[s.path for s in stored_styles],
            content_name=stored_content.name,
            style_names=[s.name for s in stored_styles],
            config=config,
            options=options,
        )
    except UploadTooLarge as e:
        raise HTTPException(413, detail=str(e)) from None
    except NotAnImage as e:
        raise HTTPException(415, detail=str(e)) from None
    except UsageError as e:
        raise HTTPException(422, detail=str(e)) from None
    except ImpastoError as e:
        raise HTTPException(503, detail=str(e)) from None
    finally:
        remove_tree(staged)  # gone already once submitted (moved into jobs/)


def _client_name(upload: UploadFile) -> str:
    """The client's file name, for messages and the gallery only: its last part, printable."""
    name = re.split(r"[\\/]", upload.filename or "")[-1]
    return "".join(c for c in name if c.isprintable())[:120]


def download_name(job: Job) -> str:
    def slug(name: str) -> str:
        stem = name.rsplit(".", 1)[0]
        return re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-")[:40] or "image"

    parts = [slug(job.content_name), *(slug(s) for s in job.style_names)]
    return f"impasto-{'-'.join(parts)}.png"


async def _event_stream(manager: JobManager, job: Job) -> AsyncIterator[str]:
    seq, snapshot = manager.subscribe(job)
    if snapshot["state"] in FINISHED:
        yield _sse(snapshot["state"], snapshot, seq)
        return
    yield "retry: 2000\n\n" + _sse("state", snapshot, seq)
    quiet = 0.0
    while not manager.closing.is_set():
        events, finished = manager.events(job, seq)
        for seq, name, data in events:
            yield _sse(name, data, seq)
        if finished and not manager.events(job, seq)[0]:
            return
        if events:
            quiet = 0.0
        elif quiet >= KEEPALIVE:
            yield ": keep-alive\n\n"
            quiet = 0.0
        await asyncio.sleep(EVENT_POLL)
        quiet += EVENT_POLL


def _sse(event: str, data: dict[str, Any], seq: int | None = None) -> str:
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _job_form_schema(max_styles: int) -> dict[str, Any]:
    """The multipart body of POST /api/jobs for the OpenAPI document, built from StyleConfig."""
    types = {"int": "integer", "float": "number", "bool": "boolean"}
    properties: dict[str, Any] = {
        "content": {
            "type": "string",
            "format": "binary",
            "description": "the photo whose layout to keep",
        },
        "style": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "maxItems": max_styles,
            "description": "the painting(s) whose brushwork and palette to take (repeat the field for several)",
        },
    }
    for entry in form_options.describe():
        prop: dict[str, Any] = {
            "type": types.get(entry["kind"], "string"),
            "description": entry["help"],
        }
        if entry["default"] != "":
            prop["default"] = entry["default"]
        if entry["choices"]:
            prop["enum"] = entry["choices"]
        if entry["kind"] in ("text", "numbers"):
            prop["description"] += " (comma-separated)"
        properties[entry["name"]] = prop
    schema = {"type": "object", "required": ["content", "style"], "properties": properties}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


class BodyLimit:
    """Refuse a request body larger than ``max_bytes`` before it is parsed (HTTP 413)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"the upload is larger than this server accepts ({self.max_bytes / 2**20:.0f} MB in all)"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, detail=detail)
            return message

        await self.app(scope, counted, send)
