"""Posting a message and answering it as a stream of deltas, storing whatever was received however it ends."""

from __future__ import annotations

import asyncio
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
from application.llm.gateway import CacheStatus, LLMGateway
from application.unit_of_work import UnitOfWorkFactory
from domain.chat.model import Message, MessageStatus
from domain.llm.model import (
    Completion,
    FinishReason,
    ServedBy,
    StreamEnd,
    StreamEvent,
    TextDelta,
    partial_completion,
)
from domain.llm.ports import ModelCatalog
from domain.llm.tokens import estimated_usage
from domain.shared.clock import Clock
from domain.shared.errors import UpstreamBadResponse, UpstreamError

# Storing a cut-short answer must outlive the cancelled request that triggered it; strong references live here.
_BACKGROUND: set[asyncio.Task[None]] = set()


async def close_stream(stream: AsyncIterator[StreamEvent]) -> None:
    """Closes a provider stream (an async generator), which closes its upstream HTTP response."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


@dataclass(frozen=True)
class StreamOutcome:
    """The last item of a message stream: what was stored, and the upstream error if the stream broke."""

    user_message: Message
    assistant_message: Message
    completion: Completion
    error: UpstreamError | None = None


class MessageStream:
    """Iterate for ``TextDelta``s as the model sends them, then one ``StreamOutcome``.

    If the consumer stops early (the client went away), the upstream call is closed and the partial answer is
    stored as incomplete anyway.
    """

    def __init__(
        self,
        use_case: StreamMessage,
        prepared: PreparedExchange,
        upstream: AsyncIterator[StreamEvent],
        first: StreamEvent,
    ) -> None:
        self._use_case = use_case
        self._prepared = prepared
        self._upstream = upstream
        self._first = first

    @property
    def cache_status(self) -> CacheStatus:
        """Whether the answer comes from the response cache (known before the first event is sent on)."""
        status = getattr(self._upstream, "cache_status", CacheStatus.BYPASS)
        return status if isinstance(status, CacheStatus) else CacheStatus.BYPASS

    async def __aiter__(self) -> AsyncIterator[TextDelta | StreamOutcome]:
        parts: list[str] = []
        settled = False
        try:
            event = self._first
            try:
                while not isinstance(event, StreamEnd):
                    if isinstance(event, TextDelta):  # conversations offer no tools: a tool-call delta is dropped
                        parts.append(event.text)
                        yield event
                    event = await anext(self._upstream)
            except StopAsyncIteration:
                error: UpstreamError = UpstreamBadResponse("the upstream stream ended without its final event")
            except UpstreamError as exc:
                error = exc
            else:
                settled = True
                outcome = await self._use_case.store(self._prepared, event.completion, MessageStatus.COMPLETE)
            if not settled:
                settled = True
                partial = self._use_case.partial(self._prepared, "".join(parts), FinishReason.ERROR, error)
                outcome = await self._use_case.store(self._prepared, partial, MessageStatus.INCOMPLETE, error)
        finally:
            if not settled:
                await self._abandon("".join(parts))
        yield outcome

    async def _abandon(self, text: str) -> None:
        async def close_and_store() -> None:
            try:
                await close_stream(self._upstream)
            finally:
                partial = self._use_case.partial(self._prepared, text, FinishReason.CANCELLED, None)
                await self._use_case.store(self._prepared, partial, MessageStatus.INCOMPLETE)

        task = asyncio.ensure_future(close_and_store())
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)
        await asyncio.shield(task)  # a cancelled caller stops waiting here; the task still finishes


class StreamMessage:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        gateway: LLMGateway,
        catalog: ModelCatalog,
        clock: Clock,
        limits: ExchangeLimits | None = None,
    ) -> None:
        self._uow = uow
        self._gateway = gateway
        self._catalog = catalog
        self._clock = clock
        self._limits = limits or ExchangeLimits()

    async def open(self, command: PostMessageCommand) -> MessageStream:
        """Starts the model call and waits for its first event, so failures before any text raise here."""
        prepared = await prepare_exchange(self._uow, self._catalog, command, limits=self._limits, now=self._clock.now())
        upstream = self._gateway.stream(prepared.request, prepared.context)
        try:
            first = await anext(upstream)
        except StopAsyncIteration:
            raise UpstreamBadResponse("the upstream stream was empty") from None
        except BaseException:
            await close_stream(upstream)
            raise
        return MessageStream(self, prepared, upstream, first)

    def partial(
        self, prepared: PreparedExchange, text: str, reason: FinishReason, error: UpstreamError | None
    ) -> Completion:
        """A completion for an answer cut short: the provider's own account when the error carries one, else an
        estimate from the text received."""
        reported = partial_completion(error) if error is not None else None
        if reported is not None:
            return reported
        served = ServedBy(
            model=prepared.request.model,
            provider=error.provider if error and error.provider else "unknown",
            upstream_model=error.model if error and error.model else "unknown",
        )
        usage = estimated_usage(prepared.request, text)
        return Completion(content=text, finish_reason=reason, usage=usage, served_by=served)

    async def store(
        self,
        prepared: PreparedExchange,
        completion: Completion,
        status: MessageStatus,
        error: UpstreamError | None = None,
    ) -> StreamOutcome:
        now = self._clock.now()
        reply = assistant_message(prepared, completion, status=status, now=now)
        async with self._uow() as uow:
            await store_exchange(uow, prepared, reply, now=now)
            await uow.commit()
        return StreamOutcome(
            user_message=prepared.user_message, assistant_message=reply, completion=completion, error=error
        )
