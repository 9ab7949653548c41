"""How the fake acts out the faults a :class:`Behaviour` asks for, the same for both wire formats: hangs, abrupt
closes, redirects, a proxy's HTML page, bodies cut or truncated halfway, streams that stall, drop, break or
carry a malformed event, and slow chunks. (Error statuses, 429 with ``retry-after`` included, are rendered by
the wire modules in each provider's shape.)
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Final

from tests.fakes.upstream.behaviours import Behaviour
from tests.fakes.upstream.transport import ABORT, ABORTING, Exchange, Headers

INSTEAD_OF_ANSWER: Final = frozenset({"hang", "disconnect", "redirect", "html_error"})
"""Faults acted out instead of any answer (a stream's ``hang(after_chunks=n)`` is acted out mid-stream)."""

_CUT_STREAM: Final = frozenset({"drop_stream", "stream_error", "hang", "malformed"})
"""Faults that happen after event number ``n`` of a stream."""

_HTML_PAGE: Final = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
)


async def instead_of_answer(ex: Exchange, b: Behaviour) -> Any:
    """Hang until the client leaves, close without a response, redirect, or send an HTML error page."""
    if b.kind == "hang":
        await ex.wait_disconnect()
        return None
    if b.kind == "disconnect":
        ABORTING.set(True)
        return ABORT
    if b.kind == "redirect":
        status = b.status if 300 <= b.status < 400 else 307
        await ex.respond(status, b"", [("location", b.location or "/"), *b.headers])
        return None
    status = b.status if b.status >= 400 else 502
    page = _HTML_PAGE.format(status=status, reason=_reason_phrase(status)).encode()
    await ex.respond(status, page, [("content-type", "text/html; charset=utf-8"), ("server", "cloudflare")])
    return None


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def truncated(data: bytes) -> bytes:
    """The first half of a JSON body (at least one byte): no longer valid JSON."""
    return data[: max(1, len(data) // 2)]


async def cut_body(ex: Exchange, data: bytes, headers: Headers) -> None:
    """Send the headers and half the body, then cut the connection."""
    await ex.start(200, [*headers, ("content-length", str(len(data)))])
    await ex.body(data[: len(data) // 2], more=True)
    ABORTING.set(True)


async def send_stream(
    ex: Exchange, events: list[bytes], b: Behaviour, error_event: bytes, headers: Headers, chunk_delay: float
) -> bool:
    """Send SSE events, ``chunk_delay`` apart, with ``b``'s fault; True when the stream completed normally."""
    events, cut = _scripted(events, b)
    await ex.start(200, headers)
    if chunk_delay <= 0 and cut == len(events):
        await ex.body(b"".join(events))  # the fast path: the whole stream in one write
        return True
    if chunk_delay <= 0:
        await ex.body(b"".join(events[:cut]), more=True)
    else:
        for i, event in enumerate(events[:cut]):
            if i and await ex.pause(chunk_delay):
                return False
            await ex.body(event, more=True)
    return await _end_stream(ex, b, error_event)


def _scripted(events: list[bytes], b: Behaviour) -> tuple[list[bytes], int]:
    """The events to send and how many of them come before the fault (all of them: no fault mid-stream)."""
    if b.kind not in _CUT_STREAM:
        return events, len(events)
    cut = max(0, min(b.n, len(events) - 1))
    if b.kind == "malformed":
        events = [*events[:cut], _malformed_event(events[cut]), *events[cut + 1 :]]
        return events, len(events)
    return events, cut


def _malformed_event(event: bytes) -> bytes:
    """Truncate the JSON of one SSE event (keeping its blank-line terminator)."""
    head, sep, data = event.rstrip(b"\n").rpartition(b"data: ")
    if not sep:
        return b"data: {\n\n"
    return head + b"data: " + truncated(data) + b"\n\n"


async def _end_stream(ex: Exchange, b: Behaviour, error_event: bytes) -> bool:
    """After the events before the fault: cut the connection, stall, send the error event, or end normally."""
    if b.kind == "drop_stream":
        ABORTING.set(True)
        return False
    if b.kind == "hang":
        await ex.wait_disconnect()
        return False
    if b.kind == "stream_error":
        await ex.body(error_event)
        return False
    await ex.body(b"")
    return True
