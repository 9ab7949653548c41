"""A model stream: one model call's answer, event by event, as a value of the domain.

A ``ModelStream`` is *opened* on its source's first event: ``StreamOpened`` (the upstream answered; the adapters
send it as soon as they have read the upstream's first event, before any text), or the first output of a source
that does not announce itself. Whoever opens it (the router, after its retries and fallbacks) has already waited for
that event, so a failure before it is an ordinary error, never a broken stream; from then on nothing retries or falls
back, and the front doors send their first event at once. From that moment it knows who is serving it
(``served_by``: model, variant, provider, upstream model), so a call cut short is accounted to the deployment that
was really answering, not to the model asked for. Its events are the answer's: ``StreamOpened`` is not handed on.

It is closed exactly once: ``aclose`` closes the events' source (an adapter's generator, whose closing releases its
HTTP response) the first time and does nothing after. Nobody else needs to know how its source is closed.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from domain.llm.model import (
    Completion,
    ServedBy,
    StreamEnd,
    StreamEvent,
    StreamOpened,
    TextDelta,
    ToolCallDelta,
    UpstreamEvent,
)
from domain.shared.errors import UpstreamBadResponse


class ModelStream:
    """``TextDelta`` and ``ToolCallDelta`` events, then exactly one ``StreamEnd`` (or an ``UpstreamError``, the
    partial completion attached: ``domain.llm.model.partial_completion``)."""

    def __init__(
        self, events: AsyncGenerator[UpstreamEvent, None], served_by: ServedBy, *, first: StreamEvent | None = None
    ) -> None:
        """A stream already open: ``first``, when given, is the event it was opened on (read from ``events``)."""
        self._events = events
        self._first = first
        self._served_by = served_by
        self._text: list[str] = []
        self._ended = False
        self._closed = False

    @classmethod
    async def open(cls, events: AsyncGenerator[UpstreamEvent, None], served_by: ServedBy) -> ModelStream:
        """Waits for the first event of ``events`` (``StreamOpened``, or the first output); a failure up to there
        closes them and raises."""
        try:
            first = await anext(events)
        except StopAsyncIteration:
            await events.aclose()
            raise UpstreamBadResponse("the stream ended without any event", model=served_by.model) from None
        except BaseException:
            await events.aclose()
            raise
        return cls(events, served_by, first=None if isinstance(first, StreamOpened) else first)

    @classmethod
    def replay(cls, completion: Completion) -> ModelStream:
        """A stored answer as a stream, open at once: its text, its tool calls, its end."""
        return cls(_replayed(completion), completion.served_by)

    @property
    def served_by(self) -> ServedBy:
        return self._served_by

    @property
    def text(self) -> str:
        """The text handed on so far (what a call cut short had produced)."""
        return "".join(self._text)

    def __aiter__(self) -> ModelStream:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._closed or self._ended:
            raise StopAsyncIteration
        if self._first is not None:
            event, self._first = self._first, None
        else:
            event = await self._next()
        if isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, StreamEnd):
            self._ended = True
        return event

    async def _next(self) -> StreamEvent:
        while True:
            try:
                event = await anext(self._events)
            except StopAsyncIteration:
                raise UpstreamBadResponse(
                    "the stream ended without its final event", model=self._served_by.model
                ) from None
            if not isinstance(event, StreamOpened):  # said once is enough: a source that repeats it is not wrong
                return event

    async def aclose(self) -> None:
        """Closes the source the first time; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        await self._events.aclose()


async def _replayed(completion: Completion) -> AsyncGenerator[StreamEvent, None]:
    if completion.content:
        yield TextDelta(completion.content)
    for index, call in enumerate(completion.tool_calls):
        yield ToolCallDelta(index=index, id=call.id, name=call.name, arguments=call.arguments)
    yield StreamEnd(completion)
