"""The web app: the page, its static files, and the HTTP API that the page and other programs use.

    GET    /                       the page (with ?token=KEY: remember the key, then the page)
    POST   /api/jobs               multipart: content, style (one or more), options -> job (201)
    GET    /api/jobs               every job, newest first
    GET    /api/jobs/{id}          one job's state
    GET    /api/jobs/{id}/events   its progress as server-sent events, until it finishes
    GET    /api/jobs/{id}/preview  the image as it forms (JPEG)
    GET    /api/jobs/{id}/result   the finished image (PNG, with the run's settings embedded)
    GET    /api/jobs/{id}/photo    the content photo at the result's size (JPEG), to compare
    POST   /api/jobs/{id}/stop     stop it and keep the picture so far as its result
    POST   /api/jobs/{id}/cancel   cancel it (the picture is thrown away)
    DELETE /api/jobs/{id}          remove it and its files (cancelling it first)
    GET    /api/options            the options (from StyleConfig), presets, limits and examples

Every ``/api/`` route needs the server's key, and only the server's own page may change
anything (``impasto.web.security``). Job ids are UUIDs made by the server and checked as such
before any path is built, and uploaded files are stored under names the server chooses, so
nothing a client sends names a file.

This module is longer than 400 lines because every route carries the documentation that the
``/docs`` page shows.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Sequence
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
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from impasto import __version__
from impasto.config import StyleConfig
from impasto.errors import ImpastoError, UsageError
from impasto.web import options as form_options
from impasto.web.apidoc import DESCRIPTION, EXAMPLES, job_form_schema
from impasto.web.job import DONE, FINISHED, Job, NoRoom, QueueFull, Runner, valid_id
from impasto.web.jobs import JobManager
from impasto.web.limits import Limits
from impasto.web.security import BodyLimit, Guard, Hosts, Key, read_form, server_key
from impasto.web.storage import remove_tree
from impasto.web.uploads import NotAnImage, UploadTooLarge, client_name, store_upload

STATIC = Path(__file__).parent / "static"
JobId = Annotated[str, PathParam(description="the job's id, as POST /api/jobs answered it")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no job with this id"}}
EVENT_POLL = 0.1  # seconds between looks at a job's events (an in-memory check)
KEEPALIVE = 15.0  # seconds between SSE comments on a quiet stream, so proxies keep it open
RETRY_AFTER = "30"  # seconds, with a 429: about when a queued job may have finished


def create_app(
    data_dir: str | os.PathLike[str],
    *,
    cache: str | os.PathLike[str] | None = None,
    limits: Limits | None = None,
    workers: int = 1,
    runner: Runner | None = None,
    token: str | None = None,
    host: str = "127.0.0.1",
    allow_hosts: Sequence[str] = (),
) -> FastAPI:
    """The ASGI app, its jobs kept under ``data_dir`` (created when the app starts).

    ``token`` is the key the API asks for (default: the one kept in ``data_dir``); ``host`` is
    the address the server listens on and ``allow_hosts`` other names it may be reached by.
    """
    limits = limits or Limits()
    key = Key(token or server_key(Path(data_dir)))
    manager = JobManager(data_dir, cache=cache, workers=workers, runner=runner, limits=limits)

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
    app.state.key = key
    # The last added runs first: who may ask is settled before any byte of a body is read.
    app.add_middleware(BodyLimit, max_bytes=limits.max_request_bytes)
    app.add_middleware(Guard, key=key, hosts=Hosts(host, allow_hosts))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def find(job_id: str) -> Job:
        job = manager.get(job_id) if valid_id(job_id) else None
        if job is None:
            raise HTTPException(404, detail="no job with this id")
        return job

    def page(name: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse((STATIC / name).read_text(encoding="utf-8"), status_code=status)

    @app.get("/", include_in_schema=False)
    def index(request: Request, token: str | None = None) -> Response:
        if token is not None:
            if not key.matches(token):
                return page("login.html", 401)
            # Remember the key, and take it out of the address bar (and of the history).
            response = RedirectResponse("/", status_code=303)
            key.set_cookie(response)
            return response
        if not key.presented(request.headers, ""):
            return page("login.html", 401)
        return page("index.html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return page("docs.html")

    @app.get("/api/options", summary="The options a job takes, presets, the server's limits")
    def get_options() -> dict[str, Any]:
        """Every field of `StyleConfig` (name, kind, default, choices, help), the presets (the
        values each sets), what the server accepts (bytes and pixels per image, the largest
        image a job makes, its steps and time, how many style images), and the example images
        bundled with the page."""
        return {
            "version": __version__,
            "fields": form_options.describe(),
            "presets": form_options.presets(),
            "limits": {**asdict(limits), "max_request_bytes": limits.max_request_bytes},
            "examples": EXAMPLES,
        }

    @app.post(
        "/api/jobs",
        status_code=201,
        summary="Start a job: a content photo, one or more style images, options",
        openapi_extra=job_form_schema(limits.max_styles),
        responses={
            201: {"description": "the job, queued"},
            400: {"description": "not a multipart form"},
            413: {"description": "an image, or the request, is larger than the server accepts"},
            415: {"description": "a file is not an image of an accepted format"},
            422: {"description": "missing image, too many pixels, a bad option, over a limit"},
            429: {"description": "the queue is full"},
            507: {"description": "the data folder is full of jobs still queued or running"},
        },
    )
    async def create_job(request: Request) -> JSONResponse:
        """Queue a run. Answers at once with the job (`id`, `state`, `position` in the queue and
        the URLs to follow it); the run itself happens in a worker, one job at a time."""
        try:
            manager.check_queue()  # before a byte of the upload is read
        except QueueFull as e:
            raise HTTPException(429, detail=str(e), headers={"Retry-After": RETRY_AFTER}) from None
        form = await read_form(
            request, max_file_bytes=limits.max_upload_bytes, max_files=limits.max_styles + 10
        )
        try:
            content = form.get("content")
            styles = [s for s in form.getlist("style") if isinstance(s, UploadFile)]
            if not isinstance(content, UploadFile):
                raise HTTPException(422, detail="choose a content photo (form field 'content')")
            if not styles:
                raise HTTPException(422, detail="choose a style image (form field 'style')")
            given: dict[str, str] = {}
            for name, value in form.multi_items():
                if name in ("content", "style"):
                    continue
                if not isinstance(value, str):
                    raise HTTPException(422, detail=f"option '{name}' must be text, not a file")
                given[name] = value
            try:
                config = form_options.make_config(given)
                limits.check(config, len(styles))
            except UsageError as e:
                raise HTTPException(422, detail=str(e)) from None
            options = {k: v for k, v in given.items() if v.strip()}
            job = await run_in_threadpool(
                _store_and_submit, manager, limits, content, styles, config, options
            )
        finally:
            await form.close()
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
        `error` says why a job failed; `stopped` why a done job ended early (`asked`, or `time
        limit`); `preview_url`, `result_url` and `photo_url` where there is an image."""
        return manager.snapshot(find(job_id))

    @app.post("/api/jobs/{job_id}/stop", summary="Stop and keep the picture", responses=NOT_FOUND)
    def stop_job(job_id: JobId) -> dict[str, Any]:
        """A running job stops after its current step and the picture so far becomes its
        result (its state becomes `done`, with `stopped`: `asked`), as Ctrl-C does on the
        command line. A queued job, which has no picture yet, is cancelled."""
        job = manager.cancel(find(job_id).id, keep=True)
        assert job is not None
        return manager.snapshot(job)

    @app.post("/api/jobs/{job_id}/cancel", summary="Cancel a job", responses=NOT_FOUND)
    def cancel_job(job_id: JobId) -> dict[str, Any]:
        """A queued job is cancelled at once; a running one stops after its current step and
        its picture is thrown away (its state becomes `cancelled`). A finished job is left as
        it is."""
        job = manager.cancel(find(job_id).id)
        assert job is not None
        return manager.snapshot(job)

    @app.delete(
        "/api/jobs/{job_id}",
        summary="Remove a job and its files",
        status_code=204,
        responses={202: {"description": "running: removed once it stops"}, **NOT_FOUND},
    )
    def delete_job(job_id: JobId) -> Response:
        """The job and every file of it (uploads, pictures) are removed: at once (204) if it
        is finished or queued; a running job is cancelled and removed as soon as it stops,
        within a step (202, with the job as it is)."""
        job = manager.delete(find(job_id).id)
        assert job is not None
        if job.state not in FINISHED:
            return JSONResponse(manager.snapshot(job), status_code=202)
        return Response(status_code=204)

    @app.get(
        "/api/jobs/{job_id}/events",
        summary="A job's progress, as server-sent events",
        responses={200: {"content": {"text/event-stream": {}}}, **NOT_FOUND},
    )
    async def job_events(job_id: JobId) -> StreamingResponse:
        """A `text/event-stream`. The first event, `state`, is the job as it is now; then
        `queued` (its place changed), `started`, `progress` (after every step), `stopping` or
        `cancelling`, and one final event, `done`, `failed` or `cancelled`, after which the
        stream ends. Every event's data is the job as `GET /api/jobs/{id}` shows it."""
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
        """The result as a PNG file, with the run's settings stored in it."""
        job = find(job_id)
        if job.state != DONE or not job.result_path.is_file():
            raise HTTPException(409, detail=f"the job is {job.state}; it has no result")
        return FileResponse(job.result_path, media_type="image/png", filename=download_name(job))

    @app.get(
        "/api/jobs/{job_id}/photo",
        summary="The content photo at the result's size (JPEG)",
        responses={
            200: {"content": {"image/jpeg": {}}},
            409: {"description": "the job has no result to compare with"},
            **NOT_FOUND,
        },
    )
    def job_photo(job_id: JobId) -> FileResponse:
        """The photo as the run read it (turned upright, in sRGB), at the size of the result,
        so that the two can be laid over each other: the page's before/after view."""
        job = find(job_id)
        if job.state != DONE or not job.photo or not job.photo_path.is_file():
            raise HTTPException(409, detail=f"the job is {job.state}; it has no result")
        return FileResponse(job.photo_path, media_type="image/jpeg")

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
        stored = [
            store_upload(
                upload.file,
                staged,
                stem,
                name=client_name(upload.filename),
                what=what,
                limits=limits,
            )
            for upload, stem, what in [
                (content, "content", "content photo"),
                *((s, f"style-{i}", "style image") for i, s in enumerate(styles, 1)),
            ]
        ]
        return manager.submit(
            job_id,
            staged,
            content=stored[0].path,
            styles=[s.path for s in stored[1:]],
            content_name=stored[0].name,
            style_names=[s.name for s in stored[1:]],
            config=config,
            options=options,
        )
    except UploadTooLarge as e:
        raise HTTPException(413, detail=str(e)) from None
    except NotAnImage as e:
        raise HTTPException(415, detail=str(e)) from None
    except UsageError as e:
        raise HTTPException(422, detail=str(e)) from None
    except QueueFull as e:
        raise HTTPException(429, detail=str(e), headers={"Retry-After": RETRY_AFTER}) from None
    except NoRoom as e:
        raise HTTPException(507, detail=str(e)) from None
    except ImpastoError as e:
        raise HTTPException(503, detail=str(e)) from None
    finally:
        remove_tree(staged)  # gone already once submitted (moved into jobs/)


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
