"""A stateless chat completion answered as a stream of events."""

from __future__ import annotations

from collections.abc import AsyncIterator

from application.chat.stream_message import close_stream
from application.compat.create_completion import CompletionCommand, prepare_completion
from application.llm.gateway import LLMGateway
from domain.llm.model import StreamEvent
from domain.llm.ports import ModelCatalog
from domain.shared.errors import UpstreamBadResponse


class CompletionStream:
    """The model's events: text and tool-call deltas, then one ``StreamEnd``. An ``UpstreamError`` after the first
    event propagates from ``__anext__`` (the partial completion attached). ``aclose`` closes the upstream call;
    call it however the iteration ends."""

    def __init__(self, upstream: AsyncIterator[StreamEvent], first: StreamEvent) -> None:
        self._upstream = upstream
        self._first: StreamEvent | None = first

    def __aiter__(self) -> CompletionStream:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._first is not None:
            event, self._first = self._first, None
            return event
        return await anext(self._upstream)

    async def aclose(self) -> None:
        await close_stream(self._upstream)


class StreamCompletion:
    def __init__(self, *, gateway: LLMGateway, catalog: ModelCatalog) -> None:
        self._gateway = gateway
        self._catalog = catalog

    async def open(self, command: CompletionCommand) -> CompletionStream:
        """Starts the model call and waits for its first event, so failures before any output raise here."""
        context = prepare_completion(self._catalog, command)
        upstream = self._gateway.stream(command.request, context)
        try:
            first = await anext(upstream)
        except StopAsyncIteration:
            raise UpstreamBadResponse("the upstream stream was empty", model=command.request.model) from None
        except BaseException:
            await close_stream(upstream)
            raise
        return CompletionStream(upstream, first)
