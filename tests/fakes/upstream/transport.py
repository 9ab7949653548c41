"""Plumbing under the fake: one request/response exchange, abrupt closes, and uvicorn tuned for tests.

Nothing here knows a wire format.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Final

import orjson
import uvicorn

Scope = dict[str, Any]
ASGIMessage = dict[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]
Headers = list[tuple[str, str]]

JSON: Final = ("content-type", "application/json")
SSE: Final = ("content-type", "text/event-stream; charset=utf-8")

ABORT: Final = object()
"""Returned by the ASGI app to make uvicorn close the connection without a response."""

ABORTING: contextvars.ContextVar[bool] = contextvars.ContextVar("fake_upstream_aborting", default=False)
_ABORT_LOG_MESSAGES: Final = frozenset(
    {
        "ASGI callable returned without completing response.",
        "ASGI callable should return None, but returned '%s'.",
    }
)


class _AbortLogFilter(logging.Filter):
    """Hide uvicorn's complaint about a connection the fake cut on purpose (and only those)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (ABORTING.get() and record.msg in _ABORT_LOG_MESSAGES)


_filter_lock = threading.Lock()
_filter_installed = False


def install_abort_log_filter() -> None:
    global _filter_installed
    with _filter_lock:
        if not _filter_installed:
            logging.getLogger("uvicorn.error").addFilter(_AbortLogFilter())
            _filter_installed = True


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body; None when the client left first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_json(raw: bytes) -> tuple[Any, bool]:
    """The parsed body (``None`` when empty or not JSON), and whether it was not JSON."""
    if not raw:
        return None, False
    try:
        return orjson.loads(raw), False
    except orjson.JSONDecodeError:
        return None, True


class Exchange:
    """One request/response, with a lazily started watcher for the client going away."""

    __slots__ = ("_watch", "receive", "send")

    def __init__(self, receive: Receive, send: Send) -> None:
        self.receive = receive
        self.send = send
        self._watch: asyncio.Future[ASGIMessage] | None = None

    def _watcher(self) -> asyncio.Future[ASGIMessage]:
        if self._watch is None:
            self._watch = asyncio.ensure_future(self.receive())
        return self._watch

    async def pause(self, seconds: float) -> bool:
        """Sleep; return True (early) if the client disconnected."""
        if seconds <= 0:
            return False
        done, _ = await asyncio.wait({self._watcher()}, timeout=seconds)
        return bool(done)

    async def wait_disconnect(self) -> None:
        while (await self._watcher())["type"] != "http.disconnect":
            self._watch = None

    def close(self) -> None:
        if self._watch is not None and not self._watch.done():
            self._watch.cancel()

    async def start(self, status: int, headers: Sequence[tuple[str, str]]) -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )

    async def body(self, data: bytes, *, more: bool = False) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": more})

    async def respond(self, status: int, data: bytes, headers: Sequence[tuple[str, str]]) -> None:
        await self.start(status, [*headers, ("content-length", str(len(data)))])
        await self.body(data)


class Server(uvicorn.Server):
    """uvicorn without signal handling, with an event-driven main loop and a quick hard shutdown."""

    def __init__(self, config: uvicorn.Config, *, grace: float) -> None:
        super().__init__(config)
        self._grace = grace
        self._exit_event: asyncio.Event | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_exit(self) -> None:
        self.should_exit = True
        if self._exit_event is not None:
            self._exit_event.set()

    async def main_loop(self) -> None:
        self._exit_event = asyncio.Event()
        if self.should_exit:
            return
        while not self.should_exit:
            await self.on_tick(0)  # refreshes the Date header
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit_event.wait(), 1.0)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()  # closes idle keep-alive connections at once
        deadline = time.monotonic() + self._grace
        while state.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        # Whatever is still in flight (hangs, slow streams) is cut: their clients see a disconnect and
        # the handlers, waiting on `receive()`, see `http.disconnect` and return.
        for connection in list(state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()
        deadline = time.monotonic() + 2.0
        while state.tasks and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        for task in list(state.tasks):
            task.cancel()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)


def bind(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
    # and without it uvicorn's separate header / body writes meet Nagle + delayed ACK (40 ms per request).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def http_impl() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover
        return "h11"
    return "httptools"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return None
    return uvloop.new_event_loop
