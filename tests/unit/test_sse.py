"""An SSE response closes its model call's stream however it ends, even when its frames were never written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Message

from interfaces.http.sse import EventStreamResponse

pytestmark = pytest.mark.unit


class Stream:
    cache_status = "bypass"

    def __init__(self) -> None:
        self.closed = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"

    async def aclose(self, cause: BaseException | None = None) -> None:
        self.closed += 1


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def test_a_client_gone_before_the_body_began_still_closes_the_stream() -> None:
    stream = Stream()
    frames = aiter(stream)  # never started: its own ``finally`` would never run

    async def gone(message: Message) -> None:
        raise OSError("the client closed the connection")

    response = EventStreamResponse(frames, stream=stream, headers={})
    scope: dict[str, Any] = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "POST", "headers": []}
    with pytest.raises(ClientDisconnect):  # what Starlette makes of the failed write
        await response(scope, _receive, gone)
    assert stream.closed == 1


async def test_a_stream_written_to_its_end_is_closed_after_the_response() -> None:
    stream = Stream()
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    response = EventStreamResponse(aiter(stream), stream=stream, headers={"x-a": "1"})
    scope: dict[str, Any] = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "POST", "headers": []}
    await response(scope, _receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body", "http.response.body"]
    assert (b"content-type", b"text/event-stream; charset=utf-8") in sent[0]["headers"]
    assert stream.closed == 1
