"""ASGI middlewares: the body-size limit and the request metrics.

Plain ASGI (not ``BaseHTTPMiddleware``), so a body over the limit is refused
while it streams in, before it is held in memory whole.
"""

from __future__ import annotations

import time
from typing import Any

from server.metrics import ServiceMetrics
from server.problems import ProblemError, problem_response

__all__ = ["BodyLimit", "RequestMetrics"]

_BODY_METHODS = ("POST", "PUT", "PATCH")


class BodyLimit:
    """Bodies over ``max_bytes`` get 413: from Content-Length before any byte is
    read, or while they stream in when no length is given."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            response = problem_response(
                413, "Upload too large",
                f"The request body is {int(length):,} bytes; the limit is {self.max_bytes:,} "
                "bytes (AUTOINIT_MAX_UPLOAD_BYTES).")
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
            self.metrics.observe_request(scope["method"], route, status,
                                         time.perf_counter() - start)
