"""The HTTP/1.1 connection: uvicorn's h11 protocol with the service's limits.

uvicorn answers a request it cannot parse (``Content-Length: -1``) with a
plain-text 400, and gives a client unlimited time to send its request head.
`GuardedH11Protocol` changes both:

* a request h11 refuses gets a problem+json 400 (then the connection closes);
* a request head (request line and headers, at most h11's 16 KiB) that has
  not fully arrived ``header_timeout`` seconds after its first byte, or after
  the connection opened, gets 408 and the connection closes. A client that
  sent nothing is closed silently.

The body has its own deadline (`server.middleware.BodyDeadline`); an idle
keep-alive connection closes after uvicorn's ``timeout_keep_alive``. Each
open connection costs a socket and at most the 16 KiB head buffer; no
thread or worker waits on it. ``autoinit serve`` runs uvicorn with
``http=guarded_protocol(settings.header_timeout)``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.problems import PROBLEM_MEDIA_TYPE

__all__ = ["GuardedH11Protocol", "guarded_protocol"]


def _problem_body(status: int, title: str, detail: str) -> bytes:
    return json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with problem+json 400s and a request-head timeout."""

    #: Seconds a request head may take to arrive (``AUTOINIT_HEADER_TIMEOUT``).
    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_started = False
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:
            self._disarm_head_timer()  # a head arrived; its body has its own deadline
        elif self._waiting_for_head():
            self._head_started = True
            self._arm_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._head_started = False

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._waiting_for_head():
            return
        if self._head_started:
            body = _problem_body(
                408,
                "Request timeout",
                f"The request line and headers did not arrive within {self.header_timeout:g} s "
                "(AUTOINIT_HEADER_TIMEOUT); the connection is closed.",
            )
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: "
                + PROBLEM_MEDIA_TYPE.encode()
                + b"\r\ncontent-length: "
                + str(len(body)).encode()
                + b"\r\nconnection: close\r\n\r\n"
                + body
            )
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        body = _problem_body(
            400,
            "Bad Request",
            "The request is not valid HTTP/1.1 (for example a Content-Length that is not a "
            "whole number of bytes, or a malformed header line); the connection is closed.",
        )
        headers = [
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))
        self.transport.close()


def guarded_protocol(header_timeout: float) -> type[GuardedH11Protocol]:
    """`GuardedH11Protocol` with ``header_timeout``, for ``uvicorn.run(http=...)``."""
    attributes: dict[str, Any] = {"header_timeout": header_timeout}
    return type("GuardedH11Protocol", (GuardedH11Protocol,), attributes)
