"""ASGI middlewares: body size and time limits, request metrics, and the 500 guard.

Plain ASGI (not ``BaseHTTPMiddleware``), so a body over the limit is refused
while it streams in, before it is held in memory whole.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from server.metrics import ServiceMetrics
from server.problems import ProblemError, problem_response

__all__ = ["BodyDeadline", "BodyLimit", "CrashGuard", "RequestMetrics"]

log = logging.getLogger("autoinit.server")

_BODY_METHODS = ("POST", "PUT", "PATCH")


class BodyLimit:
    """Bodies over ``max_bytes`` get 413: from Content-Length before any byte is
    read, or while they stream in when no length is given. A multipart form
    (which may carry training data next to the model) may hold ``max_form_bytes``."""

    def __init__(self, app: Any, max_bytes: int, max_form_bytes: int | None = None) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.max_form_bytes = max_bytes if max_form_bytes is None else max_form_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        form = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        limit = self.max_form_bytes if form else self.max_bytes
        settings = (
            "AUTOINIT_MAX_UPLOAD_BYTES + AUTOINIT_MAX_DATA_BYTES" if form else "AUTOINIT_MAX_UPLOAD_BYTES"
        )
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            response = problem_response(
                413,
                "Upload too large",
                f"The request body is {int(length):,} bytes; the limit is {limit:,} bytes ({settings}).",
            )
            return await response(scope, receive, send)
        seen = 0

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise ProblemError(
                    413, "Upload too large", f"The request body is larger than {limit:,} bytes."
                )
            return message

        await self.app(scope, limited_receive, send)


class RequestMetrics:
    """Count requests and time them, by route template."""

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
            self.metrics.observe_request(scope["method"], route, status, time.perf_counter() - start)


class BodyDeadline:
    """The whole request body must arrive within ``seconds`` of its head.

    A slow client then holds no route (and no more than the body limit in
    memory) for longer: past the deadline it gets 408 and its connection is
    closed (``Connection: close``), whatever it is still sending.
    """

    def __init__(self, app: Any, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        body_done = False

        async def timed_receive() -> dict:
            nonlocal body_done
            if body_done:  # later receives only wait for a disconnect
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise ProblemError(
                    408,
                    "Request timeout",
                    f"The request body did not arrive within {self.seconds:g} s "
                    "(AUTOINIT_BODY_TIMEOUT); the connection is closed.",
                    headers={"Connection": "close"},
                ) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)


class CrashGuard:
    """An unexpected error becomes a 500 problem+json, and the connection stays usable.

    Starlette's outermost middleware re-raises whatever it answered with 500,
    and uvicorn closes the connection of an app that raised, resetting the
    client's next requests on it. This middleware answers and does not re-raise
    (unless the response had already started: then the connection must close).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watched_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as error:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = problem_response(
                500, "Internal server error", f"{type(error).__name__}: {error}", instance=scope.get("path")
            )
            await response(scope, receive, send)
