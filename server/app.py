"""The FastAPI application. It never imports TensorFlow.

Routes are thin: `server.intake` checks uploads, `server.jobs` stores jobs,
`server.tasks` queues them, `server.tracking` mirrors worker reports, and the
artifact store holds the files. Run it with ``autoinit serve`` (which also
starts workers) or ``uvicorn --factory server.app:create_app``.
"""

from __future__ import annotations

import asyncio
import hmac
import importlib.util
import json
import logging
import os
import sys
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.artifacts import ArtifactStore
from server.intake import validate_upload
from server.jobs import JobRecord, JobStore
from server.metrics import CONTENT_TYPE_LATEST, ServiceMetrics
from server.problems import PROBLEM_MEDIA_TYPE, ProblemError, install_handlers
from server.protocol import JobState
from server.schemas import (
    Health,
    InitializeOptions,
    JobError,
    JobLinks,
    JobResource,
    Problem,
    Readiness,
)
from server.settings import Settings
from server.tasks import enqueue, make_celery
from server.tracking import JobTracker

__all__ = ["create_app"]

log = logging.getLogger("autoinit.server")

_FORM_OVERHEAD = 1 << 20  # multipart boundaries and the options field
_OPTION_NAMES = tuple(InitializeOptions.model_fields)
_PROBLEM = {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}}
_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["model"],
                "properties": {
                    "model": {"type": "string", "format": "binary",
                              "description": "JSON config, .keras archive or tf.keras 2 JSON."},
                    "options": {"type": "string",
                                "description": "JSON object of options (see query parameters)."},
                },
            }
        },
        "application/json": {"schema": {"type": "object",
                                        "description": "A model config (model.to_json())."}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary",
                                                "description": "A .keras archive or JSON."}},
    },
}


class _Service:
    """What the routes share: settings, stores, the queue and metrics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = JobStore(settings.job_db_path, ttl=settings.job_ttl)
        self.artifacts = ArtifactStore(settings.artifact_location)
        self.celery = make_celery(settings)
        self.metrics = ServiceMetrics()
        self.tracker = JobTracker(settings, self.store, self.artifacts, self.celery, self.metrics)
        self.limits = settings.upload_limits()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="autoinit-tracker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.store.close()

    def _loop(self) -> None:
        next_purge = 0.0
        while not self._stop.wait(1.0):
            try:
                self.tracker.refresh_active()
                if time.monotonic() >= next_purge:
                    self.tracker.purge_expired()
                    next_purge = time.monotonic() + 60
            except Exception:  # keep tracking whatever one refresh did
                log.exception("background job refresh failed")


class _BodyLimit:
    """ASGI middleware: bodies over the limit get 413 before they are read whole."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            response = _too_large(self.max_bytes, int(length))
            return await response(scope, receive, send)
        seen = 0

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise ProblemError(413, "Upload too large",
                                   f"The request body is larger than {self.max_bytes:,} bytes.")
            return message

        await self.app(scope, limited_receive, send)


def _too_large(limit: int, received: int) -> JSONResponse:
    from server.problems import problem_response

    return problem_response(413, "Upload too large",
                            f"The request body is {received:,} bytes; the limit is {limit:,} "
                            "bytes (AUTOINIT_MAX_UPLOAD_BYTES).")


class _RequestMetrics:
    """ASGI middleware: count requests and time them, by route template."""

    def __init__(self, app: Any, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "other"
            self.metrics.observe_request(scope["method"], route, status,
                                         time.perf_counter() - start)


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _resource(job: JobRecord) -> JobResource:
    base = f"/jobs/{job.id}"
    error = JobError(title=job.error_title, detail=job.error_detail or "") if job.error_title else None
    return JobResource(
        id=job.id, status=job.status, progress=job.progress, stage=job.stage, error=error,
        warnings=job.warnings, options=job.options, model=job.model, attempts=job.attempts,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
        expires_at=job.expires_at,
        links=JobLinks(self=base, model=f"{base}/model", config=f"{base}/config",
                       traces=f"{base}/traces", traces_csv=f"{base}/traces.csv",
                       figure=f"{base}/figure"),
    )


def _plotly_js() -> Path | None:
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API; ``settings`` default to the ``AUTOINIT_*`` environment."""
    settings = settings or Settings()
    service = _Service(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start()
        yield
        service.stop()

    app = FastAPI(
        title="AutoInit",
        version="0.1.0",
        summary="Analytic signal-preserving weight initialization for Keras models.",
        description="Upload a Keras model config; get it back initialized with AutoInit, "
        "with per-layer signal traces. Jobs are asynchronous: `POST /initialize`, then "
        "poll `GET /jobs/{id}` (or pass `?wait=SECONDS`).",
        lifespan=lifespan,
    )
    app.state.service = service
    install_handlers(app)
    app.include_router(_api_router(service))
    app.include_router(_ops_router(service))
    plotly_js = _plotly_js()
    if plotly_js is not None:
        @app.get("/static/plotly.min.js", include_in_schema=False)
        def plotly_min_js() -> FileResponse:
            return FileResponse(plotly_js, media_type="text/javascript",
                                headers={"Cache-Control": "public, max-age=86400"})
    frontend = settings.resolved_frontend_dir
    if frontend is not None:
        @app.get("/jobs/{job_id}/view", include_in_schema=False)
        def view_job(job_id: str) -> RedirectResponse:
            # Relative, so a path prefix in front of the service survives.
            return RedirectResponse(f"../../#job={quote(job_id, safe='')}")

        app.mount("/", StaticFiles(directory=frontend, html=True), name="frontend")
    else:
        @app.get("/", include_in_schema=False)
        def index() -> RedirectResponse:
            return RedirectResponse("/docs")
    # The last added is the outermost: CORS headers reach even early 413s.
    app.add_middleware(_BodyLimit, max_bytes=settings.max_upload_bytes + _FORM_OVERHEAD)
    app.add_middleware(_RequestMetrics, metrics=service.metrics)
    if settings.cors_origin_list:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origin_list,
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"],
                           expose_headers=["Location"])
    return app


#: Cookie the page stores an API key in (see frontend/app.js).
KEY_COOKIE = "autoinit_api_key"


def _require_key(service: _Service):
    keys = service.settings.api_key_set

    def check(request: Request) -> None:
        if not keys:
            return
        given = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if given is None:
            # The page's key: a SameSite=Strict cookie, so that its plain links
            # (downloads) work and other sites' requests never carry it.
            cookie = request.cookies.get(KEY_COOKIE)
            given = unquote(cookie) if cookie is not None else None
        if given is None or not any(hmac.compare_digest(given.encode(), k.encode()) for k in keys):
            raise ProblemError(
                401, "API key required",
                "Send a valid API key in the X-API-Key header or as 'Authorization: Bearer "
                "<key>'." + (" The key given is not valid." if given is not None else ""),
                headers={"WWW-Authenticate": "Bearer"})

    return check


async def _read_upload(request: Request, filename: str | None,
                       max_bytes: int) -> tuple[bytes, str | None, dict]:
    """The model bytes, its file name and the ``options`` form field, if any."""
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        return await request.body(), filename, {}
    try:
        form = await request.form(max_files=2, max_fields=10, max_part_size=max_bytes + 1)
    except StarletteHTTPException as error:
        if "exceeded maximum size" in str(error.detail):
            raise ProblemError(413, "Upload too large",
                               f"The 'model' field is larger than {max_bytes:,} bytes.") from None
        raise
    model = form.get("model")
    if model is None:
        raise ProblemError(422, "Missing model",
                           "Expected a multipart field named 'model' holding the model file "
                           f"(JSON config or .keras archive). Received fields: {sorted(form.keys())}.")
    if isinstance(model, UploadFile):
        data, filename = await model.read(), model.filename or filename
    else:
        data = model.encode()
    raw_options = form.get("options")
    if raw_options is None or raw_options == "":
        return data, filename, {}
    if isinstance(raw_options, UploadFile):
        raw_options = (await raw_options.read()).decode("utf-8", errors="replace")
    try:
        options = json.loads(raw_options)
    except json.JSONDecodeError as error:
        raise ProblemError(422, "Invalid options",
                           f"The 'options' field must be a JSON object; it is not valid JSON "
                           f"({error.msg} at line {error.lineno}, column {error.colno}).") from None
    if not isinstance(options, dict):
        raise ProblemError(422, "Invalid options",
                           f"The 'options' field must be a JSON object. Received: "
                           f"{type(options).__name__}.")
    return data, filename, options


def _options(form_options: dict, query: dict[str, Any]) -> InitializeOptions:
    merged = {**form_options, **{k: v for k, v in query.items() if v is not None}}
    try:
        return InitializeOptions(**merged)
    except ValidationError as error:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']} (received {e.get('input')!r})"
            for e in error.errors()[:10])
        raise ProblemError(422, "Invalid options", detail) from None


def _api_router(service: _Service) -> APIRouter:
    settings = service.settings
    router = APIRouter(dependencies=[Depends(_require_key(service))],
                       responses={401: _PROBLEM, 404: _PROBLEM})

    async def refreshed(job_id: str) -> JobRecord:
        job = await run_in_threadpool(service.tracker.refresh, job_id)
        if job is None:
            raise ProblemError(404, "Job not found",
                               f"No job has id {job_id!r}; it may have expired or been deleted.")
        return job

    @router.post(
        "/initialize", status_code=202, response_model=JobResource, tags=["jobs"],
        summary="Upload a model to initialize",
        openapi_extra={"requestBody": _UPLOAD_BODY},
        responses={200: {"model": JobResource, "description": "Finished within ?wait."},
                   303: {"description": "With 'Accept: application/octet-stream': the job "
                         "succeeded within ?wait; Location is its model."},
                   413: _PROBLEM, 415: _PROBLEM, 422: _PROBLEM, 503: _PROBLEM},
    )
    async def initialize(
        request: Request,
        response: Response,
        wait: float | None = Query(None, ge=0, allow_inf_nan=False,
                                   description="Hold the request up to this many seconds "
                                   f"(capped at the server's limit, {settings.max_wait:g} s)."),
        filename: str | None = Query(None, max_length=255,
                                     description="Name of a raw-body upload (e.g. model.keras)."),
        input_mean: float | None = Query(None),
        input_var: float | None = Query(None),
        signal_variance: float | None = Query(None),
        distribution: str | None = Query(None),
        seed: int | None = Query(None),
        probe_batch: int | None = Query(None),
        baselines: str | None = Query(None, description="Comma-separated, e.g. default,he_normal."),
        backward: bool | None = Query(None),
        center_activations: bool | None = Query(None, description="AutoInit++."),
    ) -> JobResource:
        data, name, form_options = await _read_upload(request, filename, settings.max_upload_bytes)
        options = _options(form_options, {
            "input_mean": input_mean, "input_var": input_var,
            "signal_variance": signal_variance, "distribution": distribution, "seed": seed,
            "probe_batch": probe_batch, "baselines": baselines, "backward": backward,
            "center_activations": center_activations})
        try:
            upload = await run_in_threadpool(validate_upload, data, name, service.limits)
        except ProblemError as error:
            service.metrics.refused.labels(str(error.status)).inc()
            raise
        job = await run_in_threadpool(_submit, service, upload, options, name)
        wait = min(wait, settings.max_wait) if wait else None
        deadline = time.monotonic() + (wait or 0.0)
        while wait and not job.finished and time.monotonic() < deadline:
            await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            job = await refreshed(job.id)
        response.headers["Location"] = f"/jobs/{job.id}"
        if _wants_model(request):
            return _model_answer(job)
        response.status_code = 200 if job.finished else 202
        return _resource(job)

    @router.get("/jobs/{job_id}", response_model=JobResource, tags=["jobs"],
                summary="A job's status, progress and links")
    async def get_job(job_id: str) -> JobResource:
        return _resource(await refreshed(job_id))

    @router.delete("/jobs/{job_id}", status_code=204, tags=["jobs"],
                   summary="Delete a job and its files (cancels it if queued)")
    async def delete_job(job_id: str) -> Response:
        if not await run_in_threadpool(service.tracker.delete, job_id):
            raise ProblemError(404, "Job not found", f"No job has id {job_id!r}.")
        return Response(status_code=204)

    async def artifact(job_id: str, name: str) -> tuple[JobRecord, Path | None, bytes | None]:
        job = await refreshed(job_id)
        if job.status != JobState.SUCCEEDED:
            reason = (f"it failed: {job.error_title}. {job.error_detail}"
                      if job.status == JobState.FAILED
                      else f"it is {job.status} ({job.stage}, {job.progress:.0%}); "
                      f"poll the job until its status is '{JobState.SUCCEEDED}'")
            raise ProblemError(409, "Job has no results", f"Job {job_id} has no {name}: {reason}")
        path = service.artifacts.local_path(job_id, name)
        if path is not None and path.is_file():
            return job, path, None
        data = await run_in_threadpool(service.artifacts.get_bytes, job_id, name)
        if data is None:
            raise ProblemError(404, "Result missing", f"Job {job_id} has no {name} in the "
                               "artifact store (it may have expired).")
        return job, None, data

    async def traces_of(job_id: str) -> dict:
        _, path, data = await artifact(job_id, "traces.json")
        return json.loads(path.read_bytes() if path is not None else data)

    def file_answer(path: Path | None, data: bytes | None, media_type: str,
                    download: str | None = None) -> Response:
        headers = {"Content-Disposition": f'attachment; filename="{download}"'} if download else None
        if path is not None:
            return FileResponse(path, media_type=media_type, headers=headers)
        return Response(data, media_type=media_type, headers=headers)

    @router.get("/jobs/{job_id}/model", tags=["results"], response_class=Response,
                summary="The initialized model (.keras archive)",
                responses={200: {"content": {"application/octet-stream": {}}}, 409: _PROBLEM})
    async def get_model(job_id: str) -> Response:
        job, path, data = await artifact(job_id, "model.keras")
        stem = "".join(c for c in str(job.model.get("name") or "model") if c.isalnum() or c in "-_")
        return file_answer(path, data, "application/octet-stream", f"{stem or 'model'}-autoinit.keras")

    @router.get("/jobs/{job_id}/config", tags=["results"], response_class=Response,
                summary="The initialized model's config (Keras JSON)",
                responses={200: {"content": {"application/json": {}}}, 409: _PROBLEM})
    async def get_config(job_id: str) -> Response:
        _, path, data = await artifact(job_id, "config.json")
        return file_answer(path, data, "application/json")

    @router.get("/jobs/{job_id}/traces", tags=["results"], response_class=Response,
                summary="Per-layer signal traces (JSON, or CSV with ?format=csv)",
                responses={200: {"content": {"application/json": {}, "text/csv": {}}},
                           409: _PROBLEM})
    async def get_traces(job_id: str, format: str = Query("json", pattern="^(json|csv)$")) -> Response:
        if format == "csv":
            return await get_traces_csv(job_id)
        _, path, data = await artifact(job_id, "traces.json")
        return file_answer(path, data, "application/json")

    @router.get("/jobs/{job_id}/traces.csv", tags=["results"], response_class=Response,
                summary="Per-layer signal traces as CSV",
                responses={200: {"content": {"text/csv": {}}}, 409: _PROBLEM})
    async def get_traces_csv(job_id: str) -> Response:
        from autoinit.plot import traces_to_csv

        text = traces_to_csv(await traces_of(job_id))
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{job_id}-traces.csv"'})

    @router.get("/jobs/{job_id}/figure", tags=["results"], response_class=Response,
                summary="Plotly figure JSON of the traces (what the page draws)",
                responses={200: {"content": {"application/json": {}}}, 409: _PROBLEM})
    async def get_figure(
        job_id: str,
        log: bool = Query(True, description="Log y axis for the variance panel."),
        dark: bool = Query(False, description="Dark template (the page follows the OS setting)."),
        gradients: bool = Query(False, description="Add the gradient-variance panel, if probed."),
    ) -> Response:
        from autoinit.plot import figure_json

        traces = await traces_of(job_id)
        text = await run_in_threadpool(lambda: figure_json(
            traces, log_y=log, dark=dark, show_gradients=gradients))
        return Response(text, media_type="application/json")

    return router


def _wants_model(request: Request) -> bool:
    """``Accept: application/octet-stream``: the caller wants the model itself
    (``curl -L --fail -H 'Accept: application/octet-stream' ... -o model.keras``)."""
    return "application/octet-stream" in request.headers.get("accept", "").lower()


def _model_answer(job: JobRecord) -> Response:
    """For a caller that wants the model: 303 to it, or a problem that says why not.

    Never a JSON body with a 2xx status, which ``curl -o model.keras`` would
    silently save as the model.
    """
    location = {"Location": f"/jobs/{job.id}"}
    if job.status == JobState.SUCCEEDED:
        return RedirectResponse(f"/jobs/{job.id}/model", status_code=303)
    if job.status == JobState.FAILED:
        raise ProblemError(422, job.error_title or "The job failed",
                           job.error_detail or "The model could not be initialized.",
                           headers=location)
    raise ProblemError(503, "Not finished yet",
                       f"Job {job.id} is {job.status} ({job.stage}, {job.progress:.0%}) after the "
                       f"wait; poll {location['Location']} or ask again with a longer ?wait.",
                       headers={**location, "Retry-After": "5"})


def _submit(service: _Service, upload, options: InitializeOptions, filename: str | None) -> JobRecord:
    job = service.store.create(options=options.model_dump(), model=upload.summary,
                               filename=filename)
    service.artifacts.put_bytes(job.id, "upload.json", json.dumps(upload.config).encode())
    try:
        enqueue(service.celery, job.id, options.model_dump())
    except Exception as error:
        log.exception("could not queue job %s", job.id)
        service.store.update(job.id, status=JobState.FAILED, stage=JobState.FAILED.value,
                             error_title="The queue is unavailable",
                             error_detail=f"{type(error).__name__}: {error}",
                             finished_at=time.time())
        raise ProblemError(503, "The queue is unavailable",
                           f"The job could not be queued ({type(error).__name__}: {error}). "
                           "Try again later.") from None
    return job


def _ops_router(service: _Service) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", response_model=Health, summary="The API process is up")
    def healthz() -> Health:
        return Health(status="ok", pid=os.getpid(), rss_bytes=_rss_bytes(),
                      tensorflow_imported="tensorflow" in sys.modules or "keras" in sys.modules)

    @router.get("/readyz", response_model=Readiness,
                summary="At least one worker answers a ping (lists the first to answer)",
                responses={503: {"model": Readiness}})
    def readyz(response: Response) -> Readiness:
        timeout = 2.0 if service.settings.embedded else 1.0
        try:
            # The first answer is enough to be ready; waiting for all costs `timeout`.
            replies = service.celery.control.ping(timeout=timeout, limit=1)
        except Exception as error:
            log.warning("worker ping failed: %s", error)
            replies = []
        workers = sorted(name for reply in replies for name in reply)
        if not workers:
            response.status_code = 503
        return Readiness(status="ready" if workers else "not ready", workers=workers,
                         mode="embedded" if service.settings.embedded else "distributed")

    @router.get("/metrics", response_class=Response, summary="Prometheus metrics",
                responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    def metrics() -> Response:
        return Response(service.metrics.render(service.store.count_by_status()),
                        media_type=CONTENT_TYPE_LATEST)

    return router
