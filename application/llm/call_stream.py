"""One streamed model call, opened, as the front doors consume it; settled exactly once however it ends.

It is open when handed over (the upstream answered, no text yet perhaps): a front door sends its first event at once.
Its time to first token (``ttft_ms``, the first-token metric) is measured at its first output, not at its opening.

The endings, and what each records (one usage record, always):

- its ``StreamEnd``: settled (cost, tokens, the record) *before* the event is handed on, so a client that reads the
  last event and leaves has been billed; the answer goes to the response cache when eligible;
- an upstream failure mid-stream: settled as an error with what was produced (the upstream's usage when it said,
  else an estimate), then the error is raised to the consumer;
- closed before its end (``aclose``): the client went away, or the server cut the stream for shutdown
  (``aclose(cause)``): the upstream call is closed and the call settled as cancelled with what was produced.

Every partial answer is accounted to the deployment serving the stream (known since it opened), at its prices.
"""

from __future__ import annotations

import asyncio
import time

from application.llm.settlement import Settlement, failed
from application.streams import run_to_end
from application.usage.metering import Outcome, status_of
from application.usage.response_cache import CacheStatus, ResponseCache
from domain.llm.model import Completion, ServedBy, StreamEnd, StreamEvent
from domain.llm.stream import ModelStream
from domain.shared.errors import UpstreamError


class CallStream:
    def __init__(
        self,
        stream: ModelStream,
        settlement: Settlement,
        *,
        cache_status: CacheStatus = CacheStatus.BYPASS,
        cache: tuple[ResponseCache, str] | None = None,
    ) -> None:
        self._stream = stream
        self._settlement = settlement
        self._cache = cache
        self.cache_status = cache_status
        self.ttft_ms: int | None = None  # set by the first output (none when cut before any)
        self.result: Completion | None = None  # the whole answer, or what a call cut short had produced
        self._closed = False

    @property
    def served_by(self) -> ServedBy:
        """The deployment serving this stream (after fallbacks and A/B), known from its opening."""
        return self._stream.served_by

    def __aiter__(self) -> CallStream:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._closed:
            raise StopAsyncIteration
        try:
            event = await anext(self._stream)
        except UpstreamError as exc:
            await self._settle(self._cut(exc))
            raise
        if self.ttft_ms is None:
            self._first_output()
        if isinstance(event, StreamEnd):
            completion = event.completion
            outcome = Outcome(completion=completion, status=status_of(completion), ttft_ms=self.ttft_ms, streamed=True)
            await self._settle(outcome)
            if self._cache is not None:
                cache, key = self._cache
                await cache.put(key, completion)
        return event

    def _first_output(self) -> None:
        seconds = time.monotonic() - self._settlement.admission.started
        self.ttft_ms = round(seconds * 1000)
        if self.cache_status is not CacheStatus.HIT:
            self._settlement.first_token(self._stream.served_by, seconds)

    async def aclose(self, cause: BaseException | None = None) -> None:
        """Closes the upstream call and, unless the stream had ended, settles it as cancelled (by ``cause``: the
        server's shutdown; none: the client went away). Only the first call does anything."""
        if self._closed:
            return
        self._closed = True

        await run_to_end(self._close_and_settle(cause))

    async def _close_and_settle(self, cause: BaseException | None) -> None:
        try:
            await self._stream.aclose()
        finally:
            await self._settle(self._cut(cause or asyncio.CancelledError()))

    def _cut(self, error: BaseException) -> Outcome:
        return failed(
            self._settlement.request,
            error,
            text=self._stream.text,
            served_by=self._stream.served_by,
            streamed=True,
            ttft_ms=self.ttft_ms,
        )

    async def _settle(self, outcome: Outcome) -> None:
        if self._settlement.settled:
            return
        self.result = outcome.completion
        await self._settlement.settle(outcome)
