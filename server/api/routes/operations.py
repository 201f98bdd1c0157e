"""``/healthz``, ``/readyz``, ``/metrics``: what operators and orchestrators poll."""

from __future__ import annotations

import logging
import os
import sys

from fastapi import APIRouter, Response

from server.api.deps import ServiceDep
from server.metrics import CONTENT_TYPE_LATEST
from server.schemas import Health, Readiness

__all__ = ["router"]

log = logging.getLogger("autoinit.server")

router = APIRouter(tags=["operations"])


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@router.get("/healthz", response_model=Health, summary="The API process is up")
def healthz() -> Health:
    return Health(
        status="ok",
        pid=os.getpid(),
        rss_bytes=_rss_bytes(),
        tensorflow_imported="tensorflow" in sys.modules or "keras" in sys.modules,
    )


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="At least one worker answers a ping (lists the first to answer)",
    responses={503: {"model": Readiness}},
)
def readyz(response: Response, service: ServiceDep) -> Readiness:
    embedded = service.settings.embedded
    try:
        # The first answer is enough to be ready; waiting for all costs the timeout.
        replies = service.celery.control.ping(timeout=2.0 if embedded else 1.0, limit=1)
    except Exception as error:
        log.warning("worker ping failed: %s", error)
        replies = []
    workers = sorted(name for reply in replies for name in reply)
    if not workers:
        response.status_code = 503
    return Readiness(
        status="ready" if workers else "not ready",
        workers=workers,
        mode="embedded" if embedded else "distributed",
    )


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(service: ServiceDep) -> Response:
    return Response(service.metrics.render(service.store.count_by_status()), media_type=CONTENT_TYPE_LATEST)
