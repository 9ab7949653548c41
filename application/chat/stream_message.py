"""Posting a message and answering it as a stream of deltas, storing whatever was received however it ends.

The model call is the model-call service's ``CallStream``, which settles the call (cost, usage record) on every
ending; this use case only stores the conversation's turns: the whole answer, or the partial one of a stream that
broke, was cut for shutdown, or was abandoned by its client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from application.chat.exchange import (
    ExchangeLimits,
    PostMessageCommand,
    PreparedExchange,
    assistant_message,
    prepare_exchange,
    store_exchange,
)
from application.chat.file_search import ground_exchange
from application.llm.call_stream import CallStream
from application.llm.model_call import ModelCall
from application.streams import run_to_end
from application.unit_of_work import UnitOfWorkFactory
from application.usage.response_cache import CacheStatus
from application.vectors.file_search import FileSearchRetrieval
from domain.chat.model import Message, MessageStatus
from domain.llm.model import Completion, FinishReason, StreamEnd, TextDelta, TokenUsage
from domain.shared.clock import Clock
from domain.shared.errors import UpstreamError


@dataclass(frozen=True)
class StreamOutcome:
    """The last item of a message stream: what was stored, and the upstream error if the stream broke."""

    user_message: Message
    assistant_message: Message
    completion: Completion
    error: UpstreamError | None = None


class MessageStream:
    """Iterate for ``TextDelta``s as the model sends them, then one ``StreamOutcome``; close it however the
    iteration ends (``aclose``): a stream closed before its outcome closes the model call and stores the partial
    answer as incomplete."""

    def __init__(self, use_case: StreamMessage, prepared: PreparedExchange, call: CallStream) -> None:
        self._use_case = use_case
        self._prepared = prepared
        self._call = call
        self._stored = False

    @property
    def cache_status(self) -> CacheStatus:
        return self._call.cache_status

    def __aiter__(self) -> AsyncIterator[TextDelta | StreamOutcome]:
        return self._events()

    async def _events(self) -> AsyncIterator[TextDelta | StreamOutcome]:
        try:
            async for event in self._call:
                if isinstance(event, TextDelta):  # conversations offer no tools: a tool-call delta is dropped
                    yield event
                elif isinstance(event, StreamEnd):
                    yield await self._store(event.completion, MessageStatus.COMPLETE)
                    return
        except UpstreamError as exc:
            yield await self._store(self._partial(FinishReason.ERROR), MessageStatus.INCOMPLETE, exc)

    async def aclose(self, cause: BaseException | None = None) -> None:
        """Closes the model call (settled as cancelled unless it had ended) and stores what it had produced."""
        await run_to_end(self._close_and_store(cause))

    async def _close_and_store(self, cause: BaseException | None) -> None:
        await self._call.aclose(cause)
        if not self._stored:
            await self._store(self._partial(FinishReason.CANCELLED), MessageStatus.INCOMPLETE)

    def _partial(self, reason: FinishReason) -> Completion:
        """What the call had produced when it was cut, as the service settled it."""
        result = self._call.result
        if result is not None:
            return result
        usage = TokenUsage(estimated=True)
        return Completion(content="", finish_reason=reason, usage=usage, served_by=self._call.served_by)

    async def _store(
        self, completion: Completion, status: MessageStatus, error: UpstreamError | None = None
    ) -> StreamOutcome:
        self._stored = True
        return await self._use_case.store(self._prepared, completion, status, error)


class StreamMessage:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        model_call: ModelCall,
        clock: Clock,
        limits: ExchangeLimits | None = None,
        retrieval: FileSearchRetrieval | None = None,
    ) -> None:
        self._uow = uow
        self._model_call = model_call
        self._clock = clock
        self._limits = limits or ExchangeLimits()
        self._retrieval = retrieval

    async def open(self, command: PostMessageCommand) -> MessageStream:
        """Starts the model call and waits for its first event, so failures before any text raise here."""
        prepared = await prepare_exchange(self._uow, command, limits=self._limits, now=self._clock.now())
        if prepared.conversation.vector_store_ids:  # only then: the path without stores stays as it was
            prepared = await ground_exchange(self._retrieval, prepared, command)
        call = await self._model_call.stream(prepared.request, prepared.context)
        return MessageStream(self, prepared, call)

    async def store(
        self,
        prepared: PreparedExchange,
        completion: Completion,
        status: MessageStatus,
        error: UpstreamError | None = None,
    ) -> StreamOutcome:
        now = self._clock.now()
        reply = assistant_message(prepared, completion, status=status, now=now)
        await store_exchange(self._uow, prepared, reply, now=now)
        return StreamOutcome(
            user_message=prepared.user_message, assistant_message=reply, completion=completion, error=error
        )
