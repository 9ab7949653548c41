"""Server-Sent Events framing."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson

from domain.llm.model import StreamEvent
from domain.llm.stream import ModelStream

# A model call's events as an API's stream writer reads them; the writer closes them however it ends.
Events = AsyncGenerator[StreamEvent, None] | ModelStream

SSE = "text/event-stream"
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def sse_event(event: str, data: Any) -> bytes:
    """One SSE frame; JSON never contains a raw newline, so one ``data:`` line is always enough."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
