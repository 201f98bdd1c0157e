"""RFC 9457 problem details: every error the API answers is one of these.

A route raises `ProblemError`; the handlers installed by `install_handlers`
turn it (and FastAPI's own validation and HTTP errors) into an
``application/problem+json`` body with a readable ``detail``.

Example:
    >>> raise ProblemError(404, "Job not found", "No job has id 'abc'.")
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.text import without_lone_surrogates

__all__ = ["PROBLEM_MEDIA_TYPE", "ProblemError", "problem_response", "install_handlers"]

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("autoinit.server")


class ProblemError(Exception):
    """An error answered as problem+json with HTTP ``status``."""

    def __init__(
        self, status: int, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.headers = headers
        self.extra = extra


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    # A detail may quote the request (a lone surrogate in it): never fail to encode it.
    return JSONResponse(
        without_lone_surrogates(body), status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


def _location(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "request"


def install_handlers(app: FastAPI) -> None:
    """Answer every error as problem+json."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, error: ProblemError) -> JSONResponse:
        return problem_response(
            error.status,
            error.title,
            error.detail,
            instance=request.url.path,
            headers=error.headers,
            **error.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = error.errors()
        detail = "; ".join(
            f"{_location(tuple(e.get('loc', ())))}: {e.get('msg')} (received {e.get('input')!r})"
            for e in errors[:10]
        )
        return problem_response(422, "Invalid request parameters", detail, instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        try:
            title = HTTPStatus(error.status_code).phrase
        except ValueError:
            title = "Error"
        detail = error.detail if isinstance(error.detail, str) else title
        if error.status_code == 404 and detail == "Not Found":
            detail = f"There is nothing at {request.url.path}. See /docs for the API."
        return problem_response(
            error.status_code,
            title,
            detail,
            instance=request.url.path,
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500, "Internal server error", f"{type(error).__name__}: {error}", instance=request.url.path
        )
