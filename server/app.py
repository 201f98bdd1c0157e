"""The FastAPI application: wiring only. It never imports TensorFlow.

`create_app` builds the `server.service.Service`, includes the route modules
of `server.api.routes` (each a module-level ``APIRouter``), installs the
problem+json handlers and the middlewares, and serves the static page. Run it
with ``autoinit serve`` (which also starts workers) or
``uvicorn --factory server.app:create_app``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from server.api.routes import jobs, operations, options, page, results
from server.middleware import BodyDeadline, BodyLimit, CrashGuard, RequestMetrics
from server.problems import install_handlers
from server.service import Service
from server.settings import Settings
from server.uploads import FORM_OVERHEAD

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API; ``settings`` default to the ``AUTOINIT_*`` environment."""
    settings = settings or Settings()
    service = Service(settings)

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
    for routes in (jobs, results, operations, options, page):
        app.include_router(routes.router)
    frontend = settings.resolved_frontend_dir
    if frontend is not None:
        app.mount("/", StaticFiles(directory=frontend, html=True), name="frontend")
    else:
        app.add_api_route("/", page.docs_redirect, include_in_schema=False)
    # The last added is the outermost: CORS headers reach even early 413s, and the
    # metrics count the 500s CrashGuard answers (innermost, next to the routes).
    app.add_middleware(CrashGuard)
    app.add_middleware(BodyDeadline, seconds=settings.body_timeout)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_upload_bytes + FORM_OVERHEAD,
        max_form_bytes=settings.max_upload_bytes + settings.max_data_bytes + FORM_OVERHEAD,
    )
    app.add_middleware(RequestMetrics, metrics=service.metrics)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
            expose_headers=["Location"],
        )
    return app
