"""OpenTelemetry traces: the HTTP request, each use case, each database statement, each upstream model call.

Off unless an OTLP endpoint is configured, and then free: no SDK tracer provider is built, nothing is wrapped or
listened to, and the middleware skips its span. On, the SDK exports batches over OTLP/HTTP (``OTEL_EXPORTER_OTLP_*``
variables such as headers are honoured by the exporter). The provider is injected, never global, so tests can hand
in one with an in-memory exporter.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")
INSTRUMENTATION = "switchboard"
TRACED_METHODS = ("execute", "open")  # use cases answer with ``execute``; a streaming one opens with ``open``


def build_tracer_provider(
    endpoint: str | None, *, service_name: str, sample_ratio: float = 1.0, version: str = "0.1.0"
) -> Any | None:
    """An SDK provider exporting to ``endpoint`` over OTLP/HTTP; ``None`` (tracing off) without an endpoint. The SDK
    and the exporter are imported only then."""
    if not endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name, "service.version": version}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    # A bounded export timeout: flushing at shutdown must not hold the process long when the collector is away.
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces", timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class Tracing:
    """The tracer, or ``None`` when tracing is off: callers test ``tracer is None`` and skip all the work."""

    def __init__(self, provider: Any | None) -> None:
        self.provider = provider
        self.tracer: Tracer | None = provider.get_tracer(INSTRUMENTATION) if provider is not None else None

    def shutdown(self) -> None:
        """Flushes spans still buffered; called once on shutdown."""
        if self.provider is not None and hasattr(self.provider, "shutdown"):
            self.provider.shutdown()


def trace_use_case(instance: T, tracer: Tracer) -> T:
    """Wraps the instance's ``execute`` (and ``open``) in a span named after its class; returns the instance."""
    name = type(instance).__name__
    for method in TRACED_METHODS:
        bound = getattr(instance, method, None)
        if bound is not None and inspect.iscoroutinefunction(bound):
            setattr(instance, method, _traced(bound, tracer, name))
    return instance


def _traced(fn: Callable[..., Awaitable[Any]], tracer: Tracer, name: str) -> Callable[..., Awaitable[Any]]:
    attributes = {"code.function.name": f"{fn.__module__}.{fn.__qualname__}"}

    @functools.wraps(fn)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        with tracer.start_as_current_span(name, attributes=attributes) as span:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                span.set_attribute("error.type", getattr(exc, "code", type(exc).__qualname__))
                raise

    return traced


def instrument_engine(engine: AsyncEngine, tracer: Tracer) -> None:
    """A CLIENT span around every statement the engine runs (the statement text has placeholders, never values)."""
    sync_engine = engine.sync_engine
    system = {"postgresql": "postgresql", "sqlite": "sqlite"}.get(sync_engine.dialect.name, sync_engine.dialect.name)
    base: dict[str, Any] = {"db.system.name": system}
    if sync_engine.url.database:
        base["db.namespace"] = sync_engine.url.database if system != "sqlite" else "main"
    if sync_engine.url.host:
        base["server.address"] = sync_engine.url.host
        if sync_engine.url.port:
            base["server.port"] = sync_engine.url.port

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _start(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        attributes = {**base, "db.operation.name": operation, "db.query.text": statement}
        span = tracer.start_span(
            f"{operation} {base.get('db.namespace', system)}", kind=SpanKind.CLIENT, attributes=attributes
        )
        if context is not None:
            context._switchboard_span = span
        else:
            span.end()

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _end(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        span = getattr(context, "_switchboard_span", None)
        if span is not None:
            span.end()
            context._switchboard_span = None

    @event.listens_for(sync_engine, "handle_error")
    def _error(exception_context: Any) -> None:
        context = exception_context.execution_context
        span = getattr(context, "_switchboard_span", None)
        if span is not None:
            error = exception_context.original_exception
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            span.set_attribute("error.type", type(error).__qualname__)
            span.end()
            context._switchboard_span = None
