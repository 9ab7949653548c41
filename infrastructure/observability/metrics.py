"""Prometheus metrics (prometheus-client), one registry per application instance.

Several worker processes: with ``PROMETHEUS_MULTIPROC_DIR`` set (``switchboard serve --workers N`` sets it up),
prometheus-client keeps values in memory-mapped files in that directory and a scrape, whichever worker answers it,
adds up every worker's. Without it, values live in this process and the registry is read directly.

Labels are cheap and bounded: a route's template (``/api/v1/conversations/{conversation_id}``), never a raw path;
public model names and deployment keys from the operator's catalog; error codes from the domain's fixed list.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)
CIRCUIT_VALUES = {"closed": 0, "half_open": 1, "open": 2}


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    def __init__(self) -> None:
        self.multiprocess = multiprocess_mode()
        self.registry = CollectorRegistry(auto_describe=True)
        if not self.multiprocess:  # per-process collectors make no sense summed over workers
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        r = self.registry
        self.http_requests = Counter(
            "switchboard_http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=r
        )
        self.http_duration = Histogram(
            "switchboard_http_request_duration_seconds",
            "Time from a request's arrival to its last response byte (a whole stream for SSE).",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.http_in_flight = Gauge(
            "switchboard_http_requests_in_flight", "Requests being answered.", registry=r, multiprocess_mode="livesum"
        )
        self.streams_in_flight = Gauge(
            "switchboard_http_streams_in_flight", "SSE responses open.", registry=r, multiprocess_mode="livesum"
        )
        self.rate_limited = Counter(
            "switchboard_rate_limited_requests", "Requests refused by a rate limit or quota.", ["code"], registry=r
        )
        self.cache_lookups = Counter(
            "switchboard_llm_cache_lookups", "Response cache lookups by result.", ["model", "result"], registry=r
        )
        self.llm_calls = Counter(
            "switchboard_llm_calls",
            "Model calls (after retries and fallbacks) by the model asked for, who answered and the outcome.",
            ["model", "served_by", "provider", "outcome"],
            registry=r,
        )
        self.llm_duration = Histogram(
            "switchboard_llm_call_duration_seconds",
            "Model call latency, retries and fallbacks included (a whole stream when streaming).",
            ["model", "provider", "mode"],
            buckets=LLM_BUCKETS,
            registry=r,
        )
        self.llm_first_token = Histogram(
            "switchboard_llm_time_to_first_token_seconds",
            "Time from a streamed model call to its first event.",
            ["model", "provider"],
            buckets=LLM_BUCKETS,
            registry=r,
        )
        self.llm_tokens = Counter(
            "switchboard_llm_tokens", "Tokens by model, provider and kind.", ["model", "provider", "kind"], registry=r
        )
        self.llm_cost = Counter(
            "switchboard_llm_cost_usd", "Cost in US dollars at catalog prices.", ["model", "provider"], registry=r
        )
        self.upstream_requests = Counter(
            "switchboard_llm_upstream_requests",
            "Calls to a provider deployment (each retry counts) by outcome: ok or an error code.",
            ["deployment", "provider", "outcome"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "switchboard_llm_upstream_errors",
            "Failed calls to a provider deployment, by error code.",
            ["deployment", "provider", "code"],
            registry=r,
        )
        self.retries = Counter(
            "switchboard_llm_retries",
            "Retries of a deployment by the error that caused them.",
            ["deployment", "code"],
            registry=r,
        )
        self.fallbacks = Counter(
            "switchboard_llm_fallbacks", "A model failed and its fallbacks were tried.", ["model", "code"], registry=r
        )
        self.circuit_state = Gauge(
            "switchboard_llm_circuit_state",
            "Circuit breaker of a deployment: 0 closed, 1 half open, 2 open (the worst over workers).",
            ["deployment"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self._http: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """The per-request path: label children are looked up once per (method, route, status), then cached."""
        key = (method, route, status)
        children = self._http.get(key)
        if children is None:
            code = str(status)
            children = (self.http_requests.labels(method, route, code), self.http_duration.labels(method, route, code))
            self._http[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def circuit_changed(self, deployment: str, state: str) -> None:
        self.circuit_state.labels(deployment).set(CIRCUIT_VALUES.get(state, 0))

    def cache_lookup(self, model: str, *, hit: bool) -> None:
        self.cache_lookups.labels(model, "hit" if hit else "miss").inc()

    def render(self) -> bytes:
        """The exposition text: this process's registry, or every worker's files in multiprocess mode."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped library
        return generate_latest(registry)


def mark_process_dead(pid: int) -> None:
    """Drops the live gauges of a worker that stopped (multiprocess mode only)."""
    if multiprocess_mode():
        prometheus_multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # untyped library
