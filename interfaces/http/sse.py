"""Server-Sent Events framing."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from application.streams import Streamed
from domain.llm.model import StreamEvent
from domain.llm.stream import ModelStream

# A model call's events as an API's stream writer reads them; the writer closes them however it ends.
Events = AsyncGenerator[StreamEvent, None] | ModelStream

SSE = "text/event-stream"
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def sse_event(event: str, data: Any) -> bytes:
    """One SSE frame; JSON never contains a raw newline, so one ``data:`` line is always enough."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class EventStreamResponse(StreamingResponse):
    """An SSE response that closes its model call's stream however the response ends.

    The frames' writer closes the stream in its own ``finally``; but a writer that never started (the client left
    before the body began) has no ``finally`` to run, and the call would stay open and unsettled. This closes it
    after the response in every case (closing a stream twice does nothing the second time).
    """

    def __init__(self, frames: AsyncIterator[bytes], *, stream: Streamed[Any] | None, headers: dict[str, str]) -> None:
        super().__init__(frames, media_type=SSE, headers=SSE_HEADERS | headers)
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._stream is not None:
                await self._stream.aclose()
