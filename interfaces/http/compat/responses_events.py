"""The Responses API's stream (a pure rendering of a response stream's items): ``response.created``,
``response.in_progress``, each output item opened, its deltas, closed, then ``response.completed`` (or
``response.incomplete`` / ``response.failed``), every event with its ``sequence_number``.

A failure mid-stream (the upstream broke, the server is shutting down) ends with ``response.failed`` showing the
partial output. The stream is closed however the writing ends.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from application.responses.stream_response import ResponseOutcome
from domain.llm.model import TextDelta, ToolCall, ToolCallDelta
from domain.responses.model import ResponseRecord, ResponseStatus
from domain.shared.errors import DomainError
from interfaces.http.compat.responses_wire import (
    call_item,
    citation_annotations,
    file_search_item,
    message_item,
    response_body,
    text_part,
)
from interfaces.http.errors import public_detail
from interfaces.http.sse import sse_event

_ENDINGS = {
    ResponseStatus.COMPLETED: "response.completed",
    ResponseStatus.INCOMPLETE: "response.incomplete",
}


Items = AsyncGenerator[TextDelta | ToolCallDelta | ResponseOutcome, None]


@dataclass
class _Call:
    output_index: int
    id: str
    name: str
    arguments: list[str] = field(default_factory=list)


class EventWriter:
    """Numbers the events of one response and remembers which output items are open."""

    def __init__(self, record: ResponseRecord) -> None:
        self.record = record
        self._sequence = 0
        self._outputs = 0
        self._text: list[str] | None = None
        self._text_index = 0
        self._calls: dict[int, _Call] = {}

    def event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return sse_event(kind, payload)

    def start(self) -> bytes:
        return (
            self.event("response.created", response=response_body(self.record, status=ResponseStatus.IN_PROGRESS))
            + self.event("response.in_progress", response=response_body(self.record, status=ResponseStatus.IN_PROGRESS))
            + self._file_search()
        )

    def _file_search(self) -> bytes:
        """The ``file_search_call`` item, first: the search ran before the model was asked."""
        if self.record.file_search is None:
            return b""
        index = self._next_output()
        item = file_search_item(self.record, status="in_progress")
        where = {"item_id": item["id"], "output_index": index}
        return (
            self.event("response.output_item.added", output_index=index, item=item)
            + self.event("response.file_search_call.in_progress", **where)
            + self.event("response.file_search_call.searching", **where)
            + self.event("response.file_search_call.completed", **where)
            + self.event(
                "response.output_item.done", output_index=index, item=file_search_item(self.record, status="completed")
            )
        )

    def text(self, delta: str) -> bytes:
        frames = b""
        message_id = message_item(self.record, "", status="in_progress")["id"]
        if self._text is None:
            self._text, self._text_index = [], self._next_output()
            item = message_item(self.record, "", status="in_progress")
            frames += self.event("response.output_item.added", output_index=self._text_index, item=item)
            frames += self.event(
                "response.content_part.added", **self._where(message_id), content_index=0, part=text_part("")
            )
        self._text.append(delta)
        return frames + self.event(
            "response.output_text.delta", **self._where(message_id), content_index=0, delta=delta, logprobs=[]
        )

    def call(self, delta: ToolCallDelta) -> bytes:
        frames = b""
        call = self._calls.get(delta.index)
        if call is None:
            call = _Call(self._next_output(), delta.id or "", delta.name or "")
            self._calls[delta.index] = call
            item = call_item(self.record, ToolCall(id=call.id, name=call.name, arguments=""), status="in_progress")
            frames += self.event("response.output_item.added", output_index=call.output_index, item=item)
        if delta.arguments:
            call.arguments.append(delta.arguments)
            frames += self.event(
                "response.function_call_arguments.delta", **self._call_where(call), delta=delta.arguments
            )
        return frames

    def end(self, status: ResponseStatus | None = None) -> bytes:
        """Closes the open items, then the response's own last event, as its record now stands (or shown in
        ``status``)."""
        frames = self._close_text() + b"".join(self._close_call(call) for call in self._calls.values())
        shown = status or self.record.status
        return frames + self.event(
            _ENDINGS.get(shown, "response.failed"), response=response_body(self.record, status=shown)
        )

    def _close_text(self) -> bytes:
        if self._text is None:
            return b""
        text = "".join(self._text)
        where = self._where(message_item(self.record, "", status="in_progress")["id"])
        status = "completed" if self.record.status is ResponseStatus.COMPLETED else "incomplete"
        cited = citation_annotations(self.record, text)
        return (
            b"".join(
                self.event(
                    "response.output_text.annotation.added",
                    **where,
                    content_index=0,
                    annotation_index=index,
                    annotation=annotation,
                )
                for index, annotation in enumerate(cited)
            )
            + self.event("response.output_text.done", **where, content_index=0, text=text, logprobs=[])
            + self.event("response.content_part.done", **where, content_index=0, part=text_part(text, cited))
            + self.event(
                "response.output_item.done",
                output_index=self._text_index,
                item=message_item(self.record, text, status=status),
            )
        )

    def _close_call(self, call: _Call) -> bytes:
        arguments = "".join(call.arguments)
        item = call_item(self.record, ToolCall(id=call.id, name=call.name, arguments=arguments), status="completed")
        return self.event(
            "response.function_call_arguments.done", **self._call_where(call), name=call.name, arguments=arguments
        ) + self.event("response.output_item.done", output_index=call.output_index, item=item)

    def _where(self, item_id: str) -> dict[str, Any]:
        return {"item_id": item_id, "output_index": self._text_index}

    def _call_where(self, call: _Call) -> dict[str, Any]:
        item = call_item(self.record, ToolCall(id=call.id, name=call.name, arguments=""), status="in_progress")
        return {"item_id": item["id"], "output_index": call.output_index}

    def _next_output(self) -> int:
        index, self._outputs = self._outputs, self._outputs + 1
        return index


async def response_events(stream: Items, record: ResponseRecord) -> AsyncIterator[bytes]:
    """The SSE body of a streamed response (``record``: the stream's response, complete once it ended):
    ``response.created`` and ``response.in_progress`` at once (the stream is open: the upstream answered), then one
    write per item the model gives."""
    writer = EventWriter(record)
    try:
        yield writer.start()
        async for item in stream:
            if isinstance(item, TextDelta):
                yield writer.text(item.text)
            elif isinstance(item, ToolCallDelta):
                yield writer.call(item)
            else:
                yield writer.end()
    except DomainError as exc:  # cut for shutdown: kept as cancelled, shown failed with what it had produced
        await stream.aclose()  # the stream's own closing keeps the partial output
        record.error_code, record.error_message = exc.code, public_detail(exc)
        yield writer.end(ResponseStatus.FAILED)
    finally:
        await stream.aclose()


def background_events(record: ResponseRecord) -> list[bytes]:
    """A background response's events as far as it has gone, one SSE frame each, frame ``n`` being the event of
    ``sequence_number`` n: created and queued, in progress once claimed, a text delta per beat of its runner's
    (``marks``), and once it finished, the closing events. Made from the stored response alone, so a later reading
    (``starting_after``) sees the same events under the same numbers, and each reading extends the one before."""
    writer = EventWriter(record)
    queued = response_body(record, status=ResponseStatus.QUEUED)
    frames = writer.event("response.created", response=queued) + writer.event("response.queued", response=queued)
    if record.status is not ResponseStatus.QUEUED:
        frames += writer.event(
            "response.in_progress", response=response_body(record, status=ResponseStatus.IN_PROGRESS)
        )
        shown = 0
        for mark in record.marks:
            frames += writer.text(record.output_text[shown:mark]) if shown < mark <= len(record.output_text) else b""
            shown = max(shown, min(mark, len(record.output_text)))
        if record.status.finished:
            frames += writer.text(record.output_text[shown:]) if len(record.output_text) > shown else b""
            for index, call in enumerate(record.tool_calls):
                frames += writer.call(ToolCallDelta(index=index, id=call.id, name=call.name, arguments=call.arguments))
            frames += writer.end()
    return [frame + b"\n\n" for frame in frames.split(b"\n\n") if frame]


def replayed_events(record: ResponseRecord) -> bytes:
    """A stored response streamed again (``GET /v1/responses/{id}?stream=true``): the events it was created with."""
    writer = EventWriter(record)
    frames = writer.start() + (writer.text(record.output_text) if record.output_text else b"")
    for index, call in enumerate(record.tool_calls):
        frames += writer.call(ToolCallDelta(index=index, id=call.id, name=call.name, arguments=call.arguments))
    return frames + writer.end()
