"""What a client may make a connection cost: header size and how long headers, body and idleness may take.

uvicorn's httptools protocol buffers a request head of any size and waits forever for a head or a body that never
finishes (its keep-alive timer runs only between requests, and stops at the first byte of the next one). This
subclass adds, per connection:
- a limit on the request line and headers together: above it, 431 and the connection is closed (counted as the
  parser reads them, and by raw bytes while a head is incomplete, so a huge header is never buffered whole);
- a deadline for the head, from the connection's start or the first byte of the next request: 408, closed;
- a deadline for the body, from the end of the head: 408 (when no response has started), closed; the app sees
  ``http.disconnect``.
Idle keep-alive connections are closed by uvicorn's own ``timeout_keep_alive``. The answers are problem+json with
no request id: nothing was routed yet.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from infrastructure.settings import Settings
from interfaces.http.errors import problem_body

TITLES = {408: ("request_timeout", "Request timeout"), 431: ("headers_too_large", "Request headers too large")}


@dataclass(frozen=True, kw_only=True)
class ConnectionLimits:
    max_header_bytes: int = 32 * 1024
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head over the limit."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits
        self._reading_head = True
        self._head_bytes = 0  # raw bytes received since the head began (an upper bound while it is incomplete)
        self._head_size = 0  # what the parser has read of it: request target and headers
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self._limits.header_timeout_seconds, "the request headers did not arrive in time")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._reading_head:
            if self._deadline is None:
                self._arm(self._limits.header_timeout_seconds, "the request headers did not arrive in time")
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()  # no WebSocket routes here
        except httptools.HttpParserError:
            if self._head_too_large():
                self._refuse(431, f"request line and headers exceed {self._limits.max_header_bytes} bytes")
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        if self._reading_head and self._head_too_large():
            self._refuse(431, f"request line and headers exceed {self._limits.max_header_bytes} bytes")

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = self._head_size = 0
        self._arm(self._limits.body_timeout_seconds, "the request body did not arrive in time")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._reading_head = True
        super().on_message_complete()

    def _count(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self._limits.max_header_bytes:
            raise _HeadTooLarge

    def _head_too_large(self) -> bool:
        limit = self._limits.max_header_bytes
        return self._head_size > limit or (self._reading_head and self._head_bytes > limit)

    def _arm(self, seconds: float, detail: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._timed_out, detail)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self, detail: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            self._refuse(408, detail)
        else:
            self.transport.close()

    def _refuse(self, status: int, detail: str) -> None:
        """Answers with a problem and closes the connection; a running request sees ``http.disconnect``."""
        self._disarm()
        code, title = TITLES[status]
        body = orjson.dumps(problem_body(status=status, code=code, title=title, detail=detail, instance=""))
        head = [STATUS_LINE[status]]
        head.extend(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers)
        head.append(b"content-type: application/problem+json\r\nconnection: close\r\n")
        head.append(b"content-length: %d\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def protocol_factory(limits: ConnectionLimits) -> Any:
    """What uvicorn's ``http=`` takes: the protocol class, with the limits bound (picklable, for ``--workers``)."""
    return functools.partial(GuardedHttpToolsProtocol, limits=limits)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the connection limits of ``settings``."""
    limits = ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout_seconds=settings.header_timeout_seconds,
        body_timeout_seconds=settings.body_timeout_seconds,
    )
    return {"http": protocol_factory(limits), "timeout_keep_alive": settings.keep_alive_timeout_seconds}
