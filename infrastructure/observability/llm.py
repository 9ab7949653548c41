"""Model calls seen from outside: a log line, metrics and spans, without the router or the use cases knowing.

- ``LLMTelemetry`` is the router's observer: it counts retries, fallbacks and circuit changes, and wraps each
  deployment's provider in an ``ObservedDeployment``, which makes one CLIENT span per upstream attempt (GenAI
  semantic conventions: ``gen_ai.*`` attributes) and counts attempts and upstream errors.
- ``ObservedLLM`` wraps the router itself, where a call is whole (retries and fallbacks done): one log line per call
  (model asked and who answered, tokens, cost, latency, attempts, fallbacks) and the call, token and cost metrics.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from domain.llm.model import (
    Completion,
    CompletionRequest,
    EmbeddingRequest,
    Embeddings,
    ModelSpec,
    StreamEnd,
    StreamEvent,
    partial_completion,
)
from domain.llm.ports import EmbeddingProvider, LLMProvider, ModelCatalog
from domain.shared.errors import UpstreamError
from infrastructure.llm.observer import RouterObserver
from infrastructure.llm.transport import Transport
from infrastructure.observability.logging import get_logger
from infrastructure.observability.metrics import Metrics

MICROS_PER_USD = 1_000_000
TOKENS_PER_PRICE_UNIT = 1_000_000  # catalog prices are per million tokens


def _outcome(error: BaseException) -> str:
    return error.code if isinstance(error, UpstreamError) else "cancelled"


async def _close(stream: AsyncIterator[StreamEvent]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


class LLMTelemetry(RouterObserver):
    def __init__(self, metrics: Metrics, tracer: Tracer | None) -> None:
        self._metrics = metrics
        self._tracer = tracer

    def deployment(self, key: str, spec: ModelSpec, provider: LLMProvider, transport: Transport) -> LLMProvider:
        return ObservedDeployment(
            provider, key=key, spec=spec, server=transport.host, metrics=self._metrics, tracer=self._tracer
        )

    def retried(self, deployment: str, error: BaseException | None) -> None:
        code = error.code if isinstance(error, UpstreamError) else "error"
        self._metrics.retries.labels(deployment, code).inc()

    def fell_back(self, model: str, error: UpstreamError) -> None:
        self._metrics.fallbacks.labels(model, error.code).inc()

    def circuit_changed(self, deployment: str, state: str) -> None:
        self._metrics.circuit_changed(deployment, state)


class ObservedDeployment(LLMProvider):
    """One provider deployment, each call a span and a count."""

    def __init__(
        self,
        inner: LLMProvider,
        *,
        key: str,
        spec: ModelSpec,
        server: str | None,
        metrics: Metrics,
        tracer: Tracer | None,
    ) -> None:
        self._inner = inner
        self._key = key
        self._spec = spec
        self._tracer = tracer
        self._ok = metrics.upstream_requests.labels(key, spec.provider, "ok")
        self._requests = metrics.upstream_requests
        self._errors = metrics.upstream_errors
        self._server = server

    async def aclose(self) -> None:
        aclose = getattr(self._inner, "aclose", None)
        if aclose is not None:
            await aclose()

    async def complete(self, request: CompletionRequest) -> Completion:
        span = self._start(request, streaming=False)
        try:
            completion = await self._inner.complete(request)
        except BaseException as exc:
            self._failed(span, exc)
            raise
        self._succeeded(span, completion)
        return completion

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        span = self._start(request, streaming=True)
        events = self._inner.stream(request)
        settled = False
        try:
            async for event in events:
                if isinstance(event, StreamEnd):
                    settled = True
                    self._succeeded(span, event.completion)
                yield event
        except BaseException as exc:
            if not settled:  # an error, or the consumer stopped before the end (cancelled)
                settled = True
                self._failed(span, exc)
            raise
        finally:
            await _close(events)

    def _start(self, request: CompletionRequest, *, streaming: bool) -> Span | None:
        if self._tracer is None:
            return None
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": self._spec.provider,
            "gen_ai.system": self._spec.provider,
            "gen_ai.request.model": self._spec.upstream_model,
            "switchboard.model": self._spec.name,
            "switchboard.deployment": self._key,
            "switchboard.streaming": streaming,
        }
        if request.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = request.max_tokens
        if request.temperature is not None:
            attributes["gen_ai.request.temperature"] = request.temperature
        if request.top_p is not None:
            attributes["gen_ai.request.top_p"] = request.top_p
        if self._server:
            attributes["server.address"] = self._server
        return self._tracer.start_span(f"chat {self._spec.upstream_model}", kind=SpanKind.CLIENT, attributes=attributes)

    def _succeeded(self, span: Span | None, completion: Completion) -> None:
        self._ok.inc()
        if span is not None:
            span.set_attributes(
                {
                    "gen_ai.response.model": completion.served_by.upstream_model,
                    "gen_ai.response.finish_reasons": [completion.finish_reason.value],
                    "gen_ai.usage.input_tokens": completion.usage.input_tokens,
                    "gen_ai.usage.output_tokens": completion.usage.output_tokens,
                }
            )
            span.end()

    def _failed(self, span: Span | None, error: BaseException) -> None:
        outcome = _outcome(error)
        self._requests.labels(self._key, self._spec.provider, outcome).inc()
        if isinstance(error, UpstreamError):
            self._errors.labels(self._key, self._spec.provider, outcome).inc()
        if span is not None:
            span.set_attribute("error.type", outcome)
            if isinstance(error, UpstreamError):
                span.set_status(Status(StatusCode.ERROR, error.code))
            span.end()


class ObservedLLM(LLMProvider, EmbeddingProvider):
    """The router as the gateway sees it: each whole call logged once, with its tokens, cost and path."""

    def __init__(self, inner: Any, *, catalog: ModelCatalog, metrics: Metrics, log_content: bool) -> None:
        self._inner = inner
        self._catalog = catalog
        self._metrics = metrics
        self._log_content = log_content
        self._log = get_logger("switchboard.llm")

    @property
    def catalog(self) -> ModelCatalog:
        return self._catalog

    async def aclose(self) -> None:
        aclose = getattr(self._inner, "aclose", None)
        if aclose is not None:
            await aclose()

    async def complete(self, request: CompletionRequest) -> Completion:
        started = time.perf_counter()
        try:
            completion = await self._inner.complete(request)
        except UpstreamError as exc:
            self._failed(request, exc, started, streaming=False)
            raise
        self._done(request, completion, started, streaming=False)
        return completion

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        started = time.perf_counter()
        try:
            embeddings: Embeddings = await self._inner.embed(request)
        except UpstreamError as exc:
            self._metrics.llm_calls.labels(request.model, "", exc.provider or "unknown", exc.code).inc()
            self._log.warning("embeddings failed", model=request.model, error=exc.code, **self._timing(started))
            raise
        served = embeddings.served_by
        m = self._metrics
        m.llm_calls.labels(request.model, served.model, served.provider, "ok").inc()
        m.llm_duration.labels(request.model, served.provider, "embed").observe(time.perf_counter() - started)
        m.llm_tokens.labels(served.model, served.provider, "input").inc(embeddings.usage.input_tokens)
        self._log.info(
            "embeddings",
            model=request.model,
            provider=served.provider,
            upstream_model=served.upstream_model,
            inputs=len(request.inputs),
            input_tokens=embeddings.usage.input_tokens,
            attempts=embeddings.attempts,
            **self._timing(started),
        )
        return embeddings

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        events = self._inner.stream(request)
        first = True
        settled = False
        try:
            async for event in events:
                if first:
                    first = False
                    self._first_event(request, started)
                if isinstance(event, StreamEnd):
                    settled = True
                    self._done(request, event.completion, started, streaming=True)
                yield event
        except UpstreamError as exc:
            settled = True
            self._failed(request, exc, started, streaming=True)
            raise
        finally:
            await _close(events)
            if not settled:
                self._log.info("llm call cancelled", model=request.model, streaming=True, **self._timing(started))

    def _first_event(self, request: CompletionRequest, started: float) -> None:
        spec = self._catalog.find(request.model)
        provider = spec.provider if spec is not None else "unknown"
        self._metrics.llm_first_token.labels(request.model, provider).observe(time.perf_counter() - started)

    @staticmethod
    def _timing(started: float) -> dict[str, float]:
        return {"latency_ms": round((time.perf_counter() - started) * 1000, 2)}

    def cost_usd(self, completion: Completion) -> float:
        spec = self._catalog.find(completion.served_by.model)
        if spec is None:
            return 0.0
        try:
            deployment = spec.deployment(completion.served_by.variant)
        except KeyError:
            deployment = spec
        usage = completion.usage
        micros = (
            usage.input_tokens * deployment.input_price_per_mtok_micros
            + usage.output_tokens * deployment.output_price_per_mtok_micros
        ) / TOKENS_PER_PRICE_UNIT
        return micros / MICROS_PER_USD

    def _done(self, request: CompletionRequest, completion: Completion, started: float, *, streaming: bool) -> None:
        served = completion.served_by
        usage = completion.usage
        cost = self.cost_usd(completion)
        m = self._metrics
        m.llm_calls.labels(request.model, served.model, served.provider, "ok").inc()
        m.llm_duration.labels(request.model, served.provider, "stream" if streaming else "complete").observe(
            time.perf_counter() - started
        )
        m.llm_tokens.labels(served.model, served.provider, "input").inc(usage.input_tokens)
        m.llm_tokens.labels(served.model, served.provider, "output").inc(usage.output_tokens)
        if cost:
            m.llm_cost.labels(served.model, served.provider).inc(cost)
        fields: dict[str, Any] = {
            "model": request.model,
            "served_by": served.model,
            "variant": served.variant,
            "provider": served.provider,
            "upstream_model": served.upstream_model,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "tokens_estimated": usage.estimated,
            "cost_usd": round(cost, 8),
            "finish_reason": completion.finish_reason.value,
            "attempts": completion.attempts,
            "retries": max(0, completion.attempts - 1 - len(completion.fallbacks)),
            "fallbacks": list(completion.fallbacks),
            "streaming": streaming,
            **self._timing(started),
        }
        if self._log_content:
            fields["prompt"] = [{"role": m.role.value, "content": m.content} for m in request.messages]
            fields["answer"] = completion.content
        self._log.info("llm call", **fields)

    def _failed(self, request: CompletionRequest, error: UpstreamError, started: float, *, streaming: bool) -> None:
        partial = partial_completion(error)
        served = partial.served_by if partial is not None else None
        provider = served.provider if served is not None else (error.provider or "unknown")
        self._metrics.llm_calls.labels(request.model, served.model if served else "", provider, error.code).inc()
        self._metrics.llm_duration.labels(request.model, provider, "stream" if streaming else "complete").observe(
            time.perf_counter() - started
        )
        fields: dict[str, Any] = {
            "model": request.model,
            "provider": provider,
            "error": error.code,
            "detail": error.detail,
            "streaming": streaming,
            **self._timing(started),
        }
        if partial is not None:
            fields.update(
                served_by=partial.served_by.model,
                input_tokens=partial.usage.input_tokens,
                output_tokens=partial.usage.output_tokens,
                attempts=partial.attempts,
                fallbacks=list(partial.fallbacks),
            )
            self._metrics.llm_tokens.labels(partial.served_by.model, provider, "input").inc(partial.usage.input_tokens)
            self._metrics.llm_tokens.labels(partial.served_by.model, provider, "output").inc(
                partial.usage.output_tokens
            )
        self._log.warning("llm call failed", **fields)
