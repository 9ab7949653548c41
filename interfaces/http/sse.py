"""Server-Sent Events framing."""

from __future__ import annotations

from typing import Any

import orjson

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def sse_event(event: str, data: Any) -> bytes:
    """One SSE frame; JSON never contains a raw newline, so one ``data:`` line is always enough."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
