"""Model calls seen from outside: a log line, metrics and spans, without the router or the use cases knowing.

- ``LLMTelemetry`` is the router's observer: it counts retries, fallbacks and circuit changes, and wraps each
  deployment's provider in an ``ObservedDeployment``, which makes one CLIENT span per upstream attempt (GenAI
  semantic conventions: ``gen_ai.*`` attributes) and counts attempts and upstream errors.
- ``CallTelemetry`` is the model-call service's observer, told once per whole call (retries and fallbacks done)
  however it ended: one log line (model asked and who answered, tokens, cost, latency, attempts, fallbacks) and the
  call, token and cost metrics.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncGenerator
from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from application.llm.observer import CallObserver
from application.usage.metering import Outcome
from domain.llm.model import (
    Completion,
    CompletionRequest,
    EmbeddingRequest,
    Embeddings,
    ModelSpec,
    ServedBy,
    StreamEnd,
    UpstreamEvent,
)
from domain.llm.ports import LLMProvider, ModelCatalog
from domain.shared.errors import DomainError, UpstreamError
from domain.usage.model import UsageStatus, cost_micros
from infrastructure.llm.observer import RouterObserver
from infrastructure.llm.router import Closeable
from infrastructure.llm.transport import Transport
from infrastructure.observability.logging import get_logger
from infrastructure.observability.metrics import Metrics

MICROS_PER_USD = 1_000_000


def _outcome(error: BaseException) -> str:
    return error.code if isinstance(error, DomainError) else "cancelled"


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
        if isinstance(self._inner, Closeable):
            await self._inner.aclose()

    @property
    def accepts_user_keys(self) -> bool:
        return self._inner.accepts_user_keys

    def with_credential(self, secret: str) -> LLMProvider | None:
        keyed = self._inner.with_credential(secret)
        if keyed is None:
            return None
        observed = copy.copy(self)
        observed._inner = keyed
        return observed

    async def verify_credential(self, secret: str) -> None:
        await self._inner.verify_credential(secret)

    async def count_tokens(self, request: CompletionRequest) -> int | None:
        return await self._inner.count_tokens(request)

    async def complete(self, request: CompletionRequest) -> Completion:
        span = self._start(request, streaming=False)
        try:
            completion = await self._inner.complete(request)
        except BaseException as exc:
            self._failed(span, exc)
            raise
        self._succeeded(span, completion)
        return completion

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[UpstreamEvent, None]:
        span = self._start(request, streaming=True)
        events = self._inner.stream(request)
        ended = False
        try:
            async for event in events:
                if isinstance(event, StreamEnd):
                    ended = True
                    self._succeeded(span, event.completion)
                yield event
        except BaseException as exc:
            if not ended:  # an error, or the consumer stopped before the end (cancelled)
                ended = True
                self._failed(span, exc)
            raise
        finally:
            await events.aclose()

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


class CallTelemetry(CallObserver):
    """Each whole call logged once, with its tokens, cost and path, and counted."""

    def __init__(self, *, catalog: ModelCatalog, metrics: Metrics, log_content: bool) -> None:
        self._catalog = catalog
        self._metrics = metrics
        self._log_content = log_content
        self._log = get_logger("switchboard.llm")

    def first_token(self, request: CompletionRequest, served_by: ServedBy, seconds: float) -> None:
        self._metrics.llm_first_token.labels(request.model, served_by.provider).observe(seconds)

    def finished(self, request: CompletionRequest, outcome: Outcome, seconds: float) -> None:
        completion = outcome.completion
        if outcome.status is UsageStatus.SUCCESS and completion is not None:
            self._done(request, completion, seconds, streaming=outcome.streamed)
        elif isinstance(outcome.error, DomainError) and outcome.error.code != "shutting_down":
            self._failed(request, outcome, seconds)
        else:
            fields = self._partial_fields(completion) if completion is not None else {}
            self._log.info(
                "llm call cancelled", model=request.model, streaming=outcome.streamed, **fields, **_timing(seconds)
            )

    def embedded(
        self, request: EmbeddingRequest, embeddings: Embeddings | None, error: BaseException | None, seconds: float
    ) -> None:
        m = self._metrics
        if embeddings is None:
            provider = error.provider if isinstance(error, UpstreamError) and error.provider else "unknown"
            m.llm_calls.labels(request.model, "", provider, _outcome(error or Exception())).inc()
            self._log.warning("embeddings failed", model=request.model, error=_outcome(error or Exception()))
            return
        served = embeddings.served_by
        m.llm_calls.labels(request.model, served.model, served.provider, "ok").inc()
        m.llm_duration.labels(request.model, served.provider, "embed").observe(seconds)
        m.llm_tokens.labels(served.model, served.provider, "input").inc(embeddings.usage.input_tokens)
        self._log.info(
            "embeddings",
            model=request.model,
            provider=served.provider,
            upstream_model=served.upstream_model,
            inputs=len(request.inputs),
            input_tokens=embeddings.usage.input_tokens,
            attempts=embeddings.attempts,
            **_timing(seconds),
        )

    def cost_usd(self, completion: Completion) -> float:
        spec = self._catalog.find(completion.served_by.model)
        if spec is None:
            return 0.0
        try:
            deployment = spec.deployment(completion.served_by.variant)
        except KeyError:
            deployment = spec
        return cost_micros(completion.usage, deployment) / MICROS_PER_USD

    def _done(self, request: CompletionRequest, completion: Completion, seconds: float, *, streaming: bool) -> None:
        served = completion.served_by
        usage = completion.usage
        cost = self.cost_usd(completion)
        m = self._metrics
        m.llm_calls.labels(request.model, served.model, served.provider, "ok").inc()
        m.llm_duration.labels(request.model, served.provider, "stream" if streaming else "complete").observe(seconds)
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
            "key_owner": served.key_owner.value,  # whose provider key paid: operator, or the user's own
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "tokens_estimated": usage.estimated,
            "cost_usd": round(cost, 8),
            "finish_reason": completion.finish_reason.value,
            "attempts": completion.attempts,
            "retries": max(0, completion.attempts - 1 - len(completion.fallbacks)),
            "fallbacks": list(completion.fallbacks),
            "streaming": streaming,
            **_timing(seconds),
        }
        if self._log_content:
            fields["prompt"] = [{"role": m.role.value, "content": m.content} for m in request.messages]
            fields["answer"] = completion.content
        self._log.info("llm call", **fields)

    def _failed(self, request: CompletionRequest, outcome: Outcome, seconds: float) -> None:
        error = outcome.error
        assert isinstance(error, DomainError)
        partial = outcome.completion
        served = partial.served_by if partial is not None else None
        upstream_provider = error.provider if isinstance(error, UpstreamError) else None
        provider = served.provider if served is not None else (upstream_provider or "unknown")
        streaming = "stream" if outcome.streamed else "complete"
        self._metrics.llm_calls.labels(request.model, served.model if served else "", provider, error.code).inc()
        self._metrics.llm_duration.labels(request.model, provider, streaming).observe(seconds)
        fields: dict[str, Any] = {
            "model": request.model,
            "provider": provider,
            "error": error.code,
            "detail": error.detail,
            "streaming": outcome.streamed,
            **_timing(seconds),
        }
        if partial is not None:
            fields.update(self._partial_fields(partial))
            self._metrics.llm_tokens.labels(partial.served_by.model, provider, "input").inc(partial.usage.input_tokens)
            self._metrics.llm_tokens.labels(partial.served_by.model, provider, "output").inc(
                partial.usage.output_tokens
            )
        self._log.warning("llm call failed", **fields)

    @staticmethod
    def _partial_fields(partial: Completion) -> dict[str, Any]:
        return {
            "served_by": partial.served_by.model,
            "variant": partial.served_by.variant,
            "input_tokens": partial.usage.input_tokens,
            "output_tokens": partial.usage.output_tokens,
            "attempts": partial.attempts,
            "fallbacks": list(partial.fallbacks),
        }


def _timing(seconds: float) -> dict[str, float]:
    return {"latency_ms": round(seconds * 1000, 2)}
