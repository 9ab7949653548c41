"""The one pure ASGI middleware every request passes (no ``BaseHTTPMiddleware``: it buffers and costs a task).

In one layer, because each layer costs a call and a closure per request:
- request id: a valid ``X-Request-ID`` or a new one, echoed in the response and carried by every log line;
- client address: the peer, or, when the peer is a trusted proxy, the rightmost untrusted ``X-Forwarded-For`` hop;
- request body size limit (413), by ``Content-Length`` up front or by counting a chunked body;
- response headers: ``X-Request-ID``, ``Server-Timing`` (time to the response head), security headers;
- telemetry: the access log line, the HTTP metrics (by route template), a SERVER span when tracing is on;
- a last-resort 500 problem for an unexpected exception: logged with the request id, answered with no detail;
- the count of requests still running (``InFlightRequests``), which the lifespan waits on before closing the pools.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infrastructure.observability.context import RequestContext, current_request
from infrastructure.observability.logging import get_logger
from infrastructure.observability.metrics import Metrics
from interfaces.http.context import request_id_var
from interfaces.http.errors import problem_body
from interfaces.http.rate_limit_headers import header_fields

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
_QUIET_PATHS = frozenset({"/health/live", "/health/ready", "/metrics"})  # logged only when they fail
UNMATCHED_ROUTE = "unmatched"
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _problem(status: int, code: str, title: str, detail: str, path: str) -> bytes:
    return orjson.dumps(problem_body(status=status, code=code, title=title, detail=detail, instance=path))


async def _send_problem(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def walk_routes(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[Any, str]]:
    """Every route with its full path template (mounted applications too, as ``{mount}/{path}``).

    FastAPI may keep an included router's routes as they are (their ``path`` without the include prefix), so the
    prefixes are added up here.
    """
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context_prefix = getattr(getattr(route, "include_context", None), "prefix", "")
            yield from walk_routes(included.routes, prefix + context_prefix)
        elif hasattr(route, "routes") and isinstance(getattr(route, "path", None), str):  # a mounted application
            yield route, f"{prefix}{route.path}/{{path}}"  # a path none of its routes matched
            yield from walk_routes(route.routes, prefix + route.path)
        elif isinstance(getattr(route, "path", None), str):
            yield route, prefix + route.path


def route_templates(routes: Iterable[Any]) -> dict[int, str]:
    """The full path template of every route, by the route object's id: what ``scope["route"]`` is after routing.
    Computed once, when the app is built."""
    return {id(route): template for route, template in walk_routes(routes)}


class TrustedProxies:
    """Which peers may tell us the client's address, and what the address then is."""

    def __init__(self, entries: Sequence[str]) -> None:
        self._networks: list[IPNetwork] = [ipaddress.ip_network(e, strict=False) for e in entries]

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def client(self, peer: str, forwarded_for: str | None) -> str:
        """The rightmost ``X-Forwarded-For`` hop that is not a trusted proxy; the peer unless it is trusted."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        client = peer
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip()
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return client  # garbage (or a spoof attempt): stop at the last address a proxy vouched for
            client = hop
            if not self.trusts(hop):
                return hop
        return client


class InFlightRequests:
    """How many requests are running, and a way to wait until none is.

    uvicorn ends a graceful shutdown that runs out of time by cancelling the requests still running, then at once
    runs the lifespan's shutdown, without waiting for the cancelled requests to unwind. Their unwinding is what
    stores a partial answer and records the call's usage; the lifespan must let it finish before it closes the
    usage buffer and the database pool, or those records are lost.
    """

    def __init__(self) -> None:
        self.count = 0
        self._idle: asyncio.Event | None = None

    def enter(self) -> None:
        self.count += 1

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self, seconds: float) -> bool:
        """True once no request is running; False if some still are after ``seconds``."""
        if self.count == 0:
            return True
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), seconds)
        except TimeoutError:
            return False
        finally:
            self._idle = None
        return True


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        metrics: Metrics | None = None,
        tracer: Tracer | None = None,
        access_log: bool = True,
        trusted_proxies: Sequence[str] = (),
        templates: Mapping[int, str] | None = None,
        in_flight: InFlightRequests | None = None,
        own_limit_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        # Paths whose handler enforces a body limit of its own, in its API's shape (file uploads).
        self._own_limit_paths = own_limit_paths
        self._in_flight = in_flight or InFlightRequests()
        self._templates = templates or {}
        self.max_body_bytes = max_body_bytes
        self._metrics = metrics
        self._tracer = tracer
        self._access_log = access_log
        self._proxies = TrustedProxies(trusted_proxies)
        self._log = get_logger("switchboard.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = length = forwarded = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _VALID_REQUEST_ID.match(candidate):
                    request_id = candidate
            elif name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"x-forwarded-for":
                forwarded = value.decode("latin-1") if forwarded is None else f"{forwarded},{value.decode('latin-1')}"
        request_id = request_id or uuid.uuid4().hex
        peer = scope["client"][0] if scope.get("client") else None
        client = self._proxies.client(peer, forwarded) if self._proxies and peer else peer
        if client != peer:
            scope["client"] = (client, 0)
        method, path = scope["method"], scope["path"]
        request_id_var.set(request_id)
        context = RequestContext(request_id, method, path, client)
        current_request.set(context)
        scope.setdefault("state", {})["request_id"] = request_id

        outcome = _Outcome(request_id, started, self._metrics)
        span = token = None
        if self._tracer is not None:
            span, token = self._start_span(scope, method, path, client)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = outcome.response_start(message, scope["state"])
            await send(message)

        self._in_flight.enter()
        if self._metrics is not None:
            self._metrics.http_in_flight.inc()
        try:
            if path in self._own_limit_paths:
                await self.app(scope, receive, send_with_headers)
            elif length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                await self._refuse(path, request_id, send_with_headers)
            elif length is None and chunked:
                await self._counted(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        except Exception:
            self._log.exception("unhandled error")
            if not outcome.started:
                body = _problem(500, "internal_error", "Internal server error", "an unexpected error occurred", path)
                await _send_problem(send_with_headers, 500, body)
        finally:
            self._in_flight.leave()
            self._finish(scope, outcome, context, span, token)

    def _finish(
        self, scope: Scope, outcome: _Outcome, context: RequestContext, span: Any, token: object | None
    ) -> None:
        seconds = time.perf_counter() - outcome.arrived
        route = scope.get("route")
        template: str = UNMATCHED_ROUTE
        if route is not None:
            template = self._templates.get(id(route)) or str(getattr(route, "path", UNMATCHED_ROUTE))
        status = outcome.status
        if self._metrics is not None:
            self._metrics.http_in_flight.dec()
            if outcome.streaming:
                self._metrics.streams_in_flight.dec()
            self._metrics.observe_request(context.method, template, status, seconds)
        if self._access_log and (status >= 400 or context.path not in _QUIET_PATHS):
            log = self._log.warning if status >= 500 else self._log.info
            log("request", route=template, status=status, duration_ms=round(seconds * 1000, 2), client=context.client)
        if span is not None:
            span.update_name(f"{context.method} {template}")
            span.set_attribute("http.route", template)
            span.set_attribute("http.response.status_code", status)
            if context.user_id is not None:
                span.set_attribute("enduser.id", context.user_id)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
            otel_context.detach(token)  # type: ignore[arg-type]

    def _start_span(self, scope: Scope, method: str, path: str, client: str | None) -> tuple[Any, object]:
        assert self._tracer is not None
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _TRACE_HEADERS}
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": path,
            "url.scheme": scope.get("scheme", "http"),
        }
        if client:
            attributes["client.address"] = client
        span = self._tracer.start_span(method, context=extract(carrier), kind=SpanKind.SERVER, attributes=attributes)
        token = otel_context.attach(trace.set_span_in_context(span))
        return span, token

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A chunked body: read here up to the limit, then replayed to the app."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._refuse(scope["path"], scope["state"]["request_id"], send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, path: str, request_id: str, send: Send) -> None:
        detail = f"request body larger than {self.max_body_bytes} bytes"
        await _send_problem(send, 413, _problem(413, "payload_too_large", "Payload too large", detail, path))


_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})


class _Outcome:
    """What the response said, as it went out: its status, whether it is an event stream."""

    __slots__ = ("arrived", "metrics", "request_id", "started", "status", "streaming")

    def __init__(self, request_id: str, arrived: float, metrics: Metrics | None) -> None:
        self.request_id = request_id
        self.arrived = arrived
        self.metrics = metrics
        self.started = False
        self.streaming = False
        self.status = 500  # nothing sent: the client saw a broken response

    def response_start(self, message: Message, state: dict[str, Any]) -> Message:
        self.started = True
        self.status = message["status"]
        headers = list(message.get("headers", ()))
        present = {name.lower() for name, _ in headers}  # Starlette sends them lower-cased: lower() is a no-op
        if b"x-request-id" not in present:
            headers.append((b"x-request-id", self.request_id.encode()))
        elapsed_ms = (time.perf_counter() - self.arrived) * 1000
        headers.append((b"server-timing", b"app;dur=%.1f" % elapsed_ms))
        headers.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
        headers.extend(header_fields(state))  # RateLimit / RateLimit-Policy, when the caller was counted
        if b"content-type" in present:
            for name, value in headers:
                if name.lower() == b"content-type" and value.startswith(b"text/event-stream"):
                    self.streaming = True
                    if self.metrics is not None:
                        self.metrics.streams_in_flight.inc()
                    break
        message["headers"] = headers
        return message
