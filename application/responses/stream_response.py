"""A response answered as a stream of deltas, stored (when asked to) however the stream ends.

The model call is the model-call service's ``CallStream``, which settles the call on every ending; this use case
only keeps the response: completed or incomplete at the stream's end, failed with the partial output when the
upstream broke mid-way, cancelled with what was produced when the stream was closed before its end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from application.llm.call_stream import CallStream
from application.llm.model_call import ModelCall
from application.responses.file_search import ground_response
from application.responses.prepare import ResponseCommand, prepare_response, store_response
from application.streams import run_to_end
from application.unit_of_work import UnitOfWorkFactory
from application.usage.response_cache import CacheStatus
from application.vectors.file_search import FileSearchRetrieval
from domain.llm.model import StreamEnd, TextDelta, ToolCallDelta
from domain.responses.model import ResponseRecord
from domain.shared.clock import Clock
from domain.shared.errors import UpstreamError


@dataclass(frozen=True)
class ResponseOutcome:
    """The last item of a response stream: the response as it ended, and the upstream error if it broke."""

    record: ResponseRecord
    error: UpstreamError | None = None


class ResponseStream:
    """Iterate for ``TextDelta`` and ``ToolCallDelta`` events, then one ``ResponseOutcome``; close it however the
    iteration ends (``aclose``). ``record`` is the response from the start (its id, its creation time)."""

    def __init__(
        self, call: CallStream, record: ResponseRecord, *, store: bool, uow: UnitOfWorkFactory, clock: Clock
    ) -> None:
        self._call = call
        self.record = record
        self._store = store
        self._uow = uow
        self._clock = clock
        self._ended = False

    @property
    def cache_status(self) -> CacheStatus:
        return self._call.cache_status

    def __aiter__(self) -> AsyncIterator[TextDelta | ToolCallDelta | ResponseOutcome]:
        return self._events()

    async def _events(self) -> AsyncIterator[TextDelta | ToolCallDelta | ResponseOutcome]:
        try:
            async for event in self._call:
                if isinstance(event, StreamEnd):
                    self.record.finish(event.completion, at=self._clock.now())
                    yield await self._end()
                    return
                yield event
        except UpstreamError as exc:
            self.record.fail(code=exc.code, message=exc.detail, partial=self._call.result, at=self._clock.now())
            yield await self._end(exc)

    async def aclose(self, cause: BaseException | None = None) -> None:
        """Closes the model call (settled as cancelled unless it had ended) and keeps what it had produced."""
        await run_to_end(self._close_and_store(cause))

    async def _close_and_store(self, cause: BaseException | None) -> None:
        await self._call.aclose(cause)
        if not self._ended:
            self.record.cancel(partial=self._call.result, at=self._clock.now())
            await self._end()

    async def _end(self, error: UpstreamError | None = None) -> ResponseOutcome:
        self._ended = True
        if self._store:
            await store_response(self._uow, self.record)
        return ResponseOutcome(self.record, error)


class StreamResponse:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        model_call: ModelCall,
        clock: Clock,
        retrieval: FileSearchRetrieval | None = None,
    ) -> None:
        self._uow = uow
        self._model_call = model_call
        self._clock = clock
        self._retrieval = retrieval

    async def open(self, command: ResponseCommand) -> ResponseStream:
        """Starts the model call and waits for its first event, so failures before any output raise here."""
        prepared = await prepare_response(self._uow, command, now=self._clock.now())
        prepared = await ground_response(self._retrieval, prepared, command)
        call = await self._model_call.stream(prepared.request, prepared.context)
        return ResponseStream(call, prepared.record, store=command.store, uow=self._uow, clock=self._clock)
