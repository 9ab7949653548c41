"""The one path every model call takes, whichever endpoint asked for it.

Conversations and the provider-compatible endpoints both call the model through ``LLMGateway``, so whatever
applies to a model call is written once, here, around the provider port:

1. the response cache (an eligible request found there is answered at no cost, still recorded as usage);
2. admission: the caller's budgets and tokens-per-minute policies (``Meter.admit``), before the model is asked;
3. the call itself;
4. settlement, however the call ended (success, upstream failure, cancellation, a stream closed early): cost
   charged, tokens reconciled, one usage record handed to the buffered recorder (``Meter.settle``). It runs in a
   shielded task, so a cancelled request still records what it cost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from dataclasses import replace
from typing import Any

from application.llm.context import CachePolicy, CallContext
from application.usage.metering import Admission, Meter, Outcome, status_of
from application.usage.response_cache import CacheStatus, ResponseCache, is_eligible
from domain.llm.model import (
    ChatMessage,
    ChatRole,
    Completion,
    CompletionRequest,
    EmbeddingRequest,
    Embeddings,
    FinishReason,
    ServedBy,
    StreamEnd,
    StreamEvent,
    TextDelta,
    partial_completion,
)
from domain.llm.ports import EmbeddingProvider, LLMProvider
from domain.llm.tokens import estimated_usage
from domain.shared.errors import UpstreamBadResponse, UpstreamUnavailable
from domain.usage.model import UsageStatus

__all__ = ["CachePolicy", "CacheStatus", "CallContext", "GatewayStream", "LLMGateway"]
logger = logging.getLogger("switchboard.usage")


class LLMGateway:
    def __init__(
        self,
        *,
        provider: LLMProvider,
        embedder: EmbeddingProvider | None = None,
        meter: Meter | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self._provider = provider
        self._embedder = embedder
        self._meter = meter
        self._cache = cache
        self._pending: set[asyncio.Task[None]] = set()

    def cache_status(self, request: CompletionRequest, context: CallContext, completion: Completion) -> CacheStatus:
        """Hit, miss or bypass, for a response header."""
        if completion.cached:
            return CacheStatus.HIT
        if self._cache is None or not is_eligible(request, context.cache):
            return CacheStatus.BYPASS
        return CacheStatus.MISS

    async def complete(self, request: CompletionRequest, context: CallContext) -> Completion:
        key = self._cache_key(request, context)
        if key is not None:
            hit = await self._lookup(key, request, context, streamed=False)
            if hit is not None:
                return hit
        admission = await self._admit(request, context)
        try:
            completion = await self._provider.complete(request)
        except BaseException as exc:
            await self._settle(admission, request, context, _failure(request, exc, [], streamed=False))
            raise
        await self._settle(admission, request, context, Outcome(completion=completion, status=UsageStatus.SUCCESS))
        if key is not None and self._cache is not None:
            await self._cache.put(key, completion)
        return completion

    async def embed(self, request: EmbeddingRequest, context: CallContext) -> Embeddings:
        """Embeddings, accounted for like completions: budgets, token limits and one usage record per call."""
        if self._embedder is None:
            raise UpstreamUnavailable("no embedding provider is configured", model=request.model)
        # The meter speaks completions: the texts are the prompt, and nothing is generated.
        as_prompt = CompletionRequest(
            model=request.model,
            messages=tuple(ChatMessage(ChatRole.USER, text) for text in request.inputs),
            max_tokens=0,
        )
        admission = await self._admit(as_prompt, context)
        try:
            embeddings = await self._embedder.embed(request)
        except BaseException as exc:
            await self._settle(admission, as_prompt, context, _failure(as_prompt, exc, [], streamed=False))
            raise
        completion = Completion(
            content="",
            finish_reason=FinishReason.STOP,
            usage=embeddings.usage,
            served_by=embeddings.served_by,
            attempts=embeddings.attempts,
        )
        await self._settle(admission, as_prompt, context, Outcome(completion=completion, status=UsageStatus.SUCCESS))
        return embeddings

    def stream(self, request: CompletionRequest, context: CallContext) -> GatewayStream:
        """The provider's events. Closing the stream early closes the upstream call (and records it)."""
        return GatewayStream(self, request, context)

    async def drain(self) -> None:
        """Waits for settlements still running (of requests cancelled mid-way); call before closing the recorder."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def _events(
        self, request: CompletionRequest, context: CallContext, stream: GatewayStream
    ) -> AsyncGenerator[StreamEvent, None]:
        key = self._cache_key(request, context)
        if key is not None:
            hit = await self._lookup(key, request, context, streamed=True)
            if hit is not None:
                stream.cache_status = CacheStatus.HIT
                if hit.content:
                    yield TextDelta(hit.content)
                yield StreamEnd(hit)
                return
            stream.cache_status = CacheStatus.MISS
        admission = await self._admit(request, context)
        upstream = aiter(self._provider.stream(request))
        parts: list[str] = []
        ttft_ms: int | None = None
        settled = False
        try:
            async for event in upstream:
                if isinstance(event, TextDelta):
                    if ttft_ms is None:
                        ttft_ms = round((time.monotonic() - admission.started) * 1000)
                    parts.append(event.text)
                elif isinstance(event, StreamEnd):
                    # Settled before the last event is handed on: the consumer may never ask for more.
                    done = Outcome(completion=event.completion, status=status_of(event.completion), ttft_ms=ttft_ms)
                    await self._settle(admission, request, context, replace(done, streamed=True))
                    settled = True
                    if key is not None and self._cache is not None:
                        await self._cache.put(key, event.completion)
                yield event
            if not settled:
                raise UpstreamBadResponse("the upstream stream ended without its final event", model=request.model)
        except BaseException as exc:
            if not settled:
                outcome = replace(_failure(request, exc, parts, streamed=True), ttft_ms=ttft_ms)
                await self._settle(admission, request, context, outcome)
            raise
        finally:
            aclose = getattr(upstream, "aclose", None)
            if aclose is not None:
                await aclose()

    def _cache_key(self, request: CompletionRequest, context: CallContext) -> str | None:
        if self._cache is None:
            return None
        return self._cache.key_for(request, context.principal, context.cache)

    async def _lookup(
        self, key: str, request: CompletionRequest, context: CallContext, *, streamed: bool
    ) -> Completion | None:
        assert self._cache is not None
        found = await self._cache.get(key)
        if found is None:
            return None
        hit = replace(found, cached=True)
        admission = Admission(started=time.monotonic(), spec=None)
        outcome = Outcome(completion=hit, status=UsageStatus.SUCCESS, ttft_ms=0 if streamed else None)
        await self._settle(admission, request, context, replace(outcome, streamed=streamed))
        return hit

    async def _admit(self, request: CompletionRequest, context: CallContext) -> Admission:
        if self._meter is None:
            return Admission(started=time.monotonic(), spec=None)
        return await self._meter.admit(request, context)

    async def _settle(
        self, admission: Admission, request: CompletionRequest, context: CallContext, outcome: Outcome
    ) -> None:
        """Runs the settlement in its own task and waits for it; a cancelled caller stops waiting, the task goes on."""
        if self._meter is None:
            return
        task = self._spawn(self._meter.settle(admission, request, context, outcome))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            raise
        except Exception:  # never fail a call that happened because its accounting did
            logger.exception("settling the usage of request %s failed", context.request_id)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task


class GatewayStream(AsyncIterator[StreamEvent]):
    """The events of one streamed call. ``cache_status`` is known once the first event has arrived."""

    def __init__(self, gateway: LLMGateway, request: CompletionRequest, context: CallContext) -> None:
        self.cache_status = CacheStatus.BYPASS
        self._events = gateway._events(request, context, self)

    def __aiter__(self) -> GatewayStream:
        return self

    async def __anext__(self) -> StreamEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        await self._events.aclose()


def _failure(request: CompletionRequest, error: BaseException, parts: list[str], *, streamed: bool) -> Outcome:
    """The outcome of a call that did not finish: the upstream's own account of it when the error carries one, else
    an estimate. A failure before any text cost nothing; a cancelled call is assumed to have read its prompt."""
    cancelled = isinstance(error, asyncio.CancelledError | GeneratorExit)
    status = UsageStatus.CANCELLED if cancelled else UsageStatus.ERROR
    completion = partial_completion(error)
    if completion is None and (parts or cancelled):
        text = "".join(parts)
        usage = estimated_usage(request, text)
        reason = FinishReason.CANCELLED if cancelled else FinishReason.ERROR
        served = ServedBy(model=request.model, provider="unknown", upstream_model="unknown")
        completion = Completion(content=text, finish_reason=reason, usage=usage, served_by=served)
    return Outcome(completion=completion, status=status, error=error, streamed=streamed)
