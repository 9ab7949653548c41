"""The observability adapters on their own: redaction, client address, log rendering, metrics, shutdown timing."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson
import pytest

from domain.llm.model import Completion, FinishReason, ModelSpec, ServedBy, TokenUsage
from domain.shared.errors import ShuttingDown
from infrastructure.llm.catalog import load_catalog
from infrastructure.observability import metrics as metrics_module
from infrastructure.observability.context import RequestContext, current_request, note_principal
from infrastructure.observability.llm import CallTelemetry
from infrastructure.observability.logging import captured_logs, configure_logging, get_logger
from infrastructure.observability.metrics import Metrics
from infrastructure.observability.redaction import MASK, Redactor
from interfaces import cli
from interfaces.http.lifecycle import Shutdown, cut_on_shutdown
from interfaces.http.middleware import InFlightRequests, RequestMiddleware, TrustedProxies

T = TypeVar("T")
pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "eyJhbGci"),
        ("key sk-sb-Zm9vYmFyYmF6cXV4cXV1eGNvcmdl used", "Zm9vYmFy"),
        ("provider: sk-ant-api03-abcdefghijklmnopqrstu", "abcdefghijkl"),
        ("postgresql+asyncpg://app:s3cret pass@db:5432/app", "s3cret"),
        ("Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpw"),
        ("token eyJ0eXAiOiJKV1QifQ.eyJleHAiOjF9.", "eyJ0eXAi"),
        ("RuntimeError: secret internals: password=hunter2", "hunter2"),
        ('{"api_key": "abc123def456", "ok": 1}', "abc123def456"),
        ("retrying with token: 0123456789abcdef", "0123456789abcdef"),
    ],
)
def test_credential_shapes_are_masked(text: str, leaked: str) -> None:
    masked = Redactor().text(text)
    assert leaked not in masked
    assert MASK in masked


def test_known_secret_values_and_sensitive_fields_are_masked_whatever_their_shape() -> None:
    redactor = Redactor(["plain-words-secret", "ab"])  # too short to mask safely: ignored
    event = {
        "event": "connecting with plain-words-secret",
        "password": "hunter2",
        "nested": {"Authorization": "x", "ok": ["plain-words-secret", 3]},
        "about": "tab and lab",
    }
    assert redactor.mapping(event) == {
        "event": f"connecting with {MASK}",
        "password": MASK,
        "nested": {"Authorization": MASK, "ok": [MASK, 3]},
        "about": "tab and lab",
    }


def test_the_client_is_the_rightmost_untrusted_hop_and_only_behind_a_trusted_proxy() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"])
    assert proxies.client("192.0.2.1", "203.0.113.5") == "203.0.113.5"
    assert proxies.client("10.0.0.1", "1.1.1.1, 203.0.113.5, 10.2.2.2") == "203.0.113.5"  # a spoofed first hop
    assert proxies.client("2001:db8::1", "2001:db8::2, 2606:4700::1111") == "2606:4700::1111"
    assert proxies.client("198.51.100.7", "203.0.113.5") == "198.51.100.7"  # an untrusted peer: header ignored
    assert proxies.client("10.0.0.1", None) == "10.0.0.1"
    assert proxies.client("10.0.0.1", "10.0.0.2, 10.0.0.3") == "10.0.0.2"  # proxies all the way
    assert proxies.client("10.0.0.1", "evil, 10.0.0.3") == "10.0.0.3"
    assert not TrustedProxies([])


def test_json_lines_carry_the_request_context_also_for_library_loggers() -> None:
    configure_logging(level="INFO", json=True)
    token = current_request.set(RequestContext("req-7", "GET", "/x", "127.0.0.1"))
    try:
        note_principal("user-1", None)
        with captured_logs() as buffer:
            get_logger("switchboard.test").info("ours", n=1)
            logging.getLogger("a.library").warning("theirs %s", 2)
            logging.getLogger("a.library").debug("below the level")
            logging.getLogger("httpx").info('HTTP Request: POST https://x "HTTP/1.1 200 OK"')  # floored
    finally:
        current_request.reset(token)
    ours, theirs = (orjson.loads(line) for line in buffer.getvalue().splitlines())
    assert list(ours)[:4] == ["timestamp", "level", "event", "logger"]
    assert ours | {"timestamp": None} == {
        "timestamp": None,
        "level": "info",
        "event": "ours",
        "logger": "switchboard.test",
        "n": 1,
        "request_id": "req-7",
        "method": "GET",
        "path": "/x",
        "user_id": "user-1",
    }
    assert (theirs["event"], theirs["logger"], theirs["level"], theirs["request_id"]) == (
        "theirs 2",
        "a.library",
        "warning",
        "req-7",
    )


def test_console_lines_for_people() -> None:
    configure_logging(level="DEBUG", json=False)
    with captured_logs() as buffer:
        get_logger("switchboard.test").debug("hello", password="hunter2")
    line = buffer.getvalue()
    assert "hello" in line
    assert "hunter2" not in line
    assert not line.startswith("{")
    configure_logging(level="INFO", json=True)


def test_cost_comes_from_the_variant_that_answered(tmp_path: Path) -> None:
    catalog_file = tmp_path / "models.toml"
    catalog_file.write_text(
        """
default_model = "m"
[models.m]
[[models.m.variants]]
label = "a"
weight = 1
provider = "local"
upstream_model = "x"
input_usd_per_mtok = 1.0
output_usd_per_mtok = 2.0
[[models.m.variants]]
label = "b"
weight = 1
provider = "local"
upstream_model = "y"
input_usd_per_mtok = 10.0
output_usd_per_mtok = 20.0
"""
    )
    observed = CallTelemetry(catalog=load_catalog(catalog_file), metrics=Metrics(), log_content=False)

    def completion(variant: str) -> Completion:
        served = ServedBy(model="m", provider="local", upstream_model="y", variant=variant)
        usage = TokenUsage(input_tokens=1_000_000, output_tokens=500_000)
        return Completion(content="", finish_reason=FinishReason.STOP, usage=usage, served_by=served)

    assert observed.cost_usd(completion("a")) == pytest.approx(2.0)
    assert observed.cost_usd(completion("b")) == pytest.approx(20.0)


def test_metrics_render_in_one_process_with_process_collectors() -> None:
    metrics = Metrics()
    metrics.observe_request("GET", "/x/{id}", 200, 0.003)
    metrics.cache_lookup("m", hit=True)
    metrics.circuit_changed("m", "open")
    text = metrics.render().decode()
    assert 'switchboard_http_requests_total{method="GET",route="/x/{id}",status="200"} 1.0' in text
    assert 'switchboard_llm_cache_lookups_total{model="m",result="hit"} 1.0' in text
    assert 'switchboard_llm_circuit_state{deployment="m"} 2.0' in text
    assert "process_cpu_seconds_total" in text or "python_info" in text
    assert Metrics().render().count(b"switchboard_http_requests_total{") == 0  # one registry per app


def test_serve_prepares_a_metrics_directory_only_for_several_workers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert cli.MULTIPROC_ENV == metrics_module.MULTIPROC_ENV
    monkeypatch.setenv(cli.MULTIPROC_ENV, "")  # records the original state, restored afterwards
    monkeypatch.delenv(cli.MULTIPROC_ENV)
    cli._metrics_directory(1)
    assert cli.MULTIPROC_ENV not in os.environ
    cli._metrics_directory(3)
    made = Path(os.environ[cli.MULTIPROC_ENV])
    assert made.is_dir()
    made.rmdir()
    monkeypatch.setenv(cli.MULTIPROC_ENV, str(tmp_path))
    (tmp_path / "counter_99.db").write_text("stale")
    cli._metrics_directory(1)
    assert list(tmp_path.iterdir()) == []


def test_streams_are_cut_before_the_servers_own_deadline() -> None:
    shutdown = Shutdown(grace_seconds=0.2)
    assert not shutdown.should_cut()
    shutdown.begin()
    assert shutdown.draining
    assert not shutdown.should_cut()
    time.sleep(0.12)
    assert shutdown.should_cut()
    assert Shutdown(grace_seconds=30)._cut_after == 28
    assert Shutdown(grace_seconds=2)._cut_after == 1


async def test_a_stream_silent_at_the_deadline_is_cut_while_it_waits() -> None:
    closed: list[str] = []

    async def silent() -> AsyncGenerator[str, None]:
        try:
            yield "first"
            await asyncio.sleep(3600)  # an upstream that stopped talking
            yield "never"
        finally:
            closed.append("upstream")

    shutdown = Shutdown(grace_seconds=0.2)  # cut 0.1 s after the signal
    stream = Closing(silent())
    events = cut_on_shutdown(stream, shutdown)
    assert await anext(events) == "first"
    started = time.monotonic()
    shutdown.begin()
    with pytest.raises(ShuttingDown):
        await asyncio.wait_for(anext(events), 2)
    assert 0.05 < time.monotonic() - started < 1
    await events.aclose()
    assert closed == ["upstream"]
    assert isinstance(stream.cause, ShuttingDown)  # the stream is told why it was closed
    current = asyncio.current_task()
    assert current is not None
    assert current.cancelling() == 0  # the cut's cancellation was taken back


async def test_any_other_cancellation_of_a_stream_goes_on() -> None:
    async def slow() -> AsyncGenerator[int, None]:
        await asyncio.sleep(3600)
        yield 1

    shutdown = Shutdown(grace_seconds=30)
    task = asyncio.ensure_future(anext(cut_on_shutdown(Closing(slow()), shutdown)))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class Closing(Generic[T]):
    """A generator as a front door's stream: closing it closes the generator and remembers why."""

    cache_status = "bypass"

    def __init__(self, events: AsyncGenerator[T, None]) -> None:
        self._events = events
        self.cause: BaseException | None = None

    def __aiter__(self) -> AsyncIterator[T]:
        return self._events

    async def aclose(self, cause: BaseException | None = None) -> None:
        self.cause = cause
        await self._events.aclose()


def test_a_model_spec_without_prices_costs_nothing() -> None:
    spec = ModelSpec(name="free", provider="local", upstream_model="x")
    assert spec.input_price_per_mtok_micros == 0


async def test_open_event_streams_are_counted_until_they_end() -> None:
    metrics = Metrics()
    seen: list[float] = []

    async def sse_app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        seen.append(metrics.streams_in_flight._value.get())
        await send({"type": "http.response.body", "body": b"event: done\ndata: {}\n\n"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        return None

    middleware = RequestMiddleware(sse_app, max_body_bytes=1024, metrics=metrics, access_log=False)
    scope = {"type": "http", "method": "GET", "path": "/s", "headers": [], "client": ("127.0.0.1", 1)}
    await middleware(scope, receive, send)
    assert seen == [1.0]
    assert metrics.streams_in_flight._value.get() == 0
    assert metrics.http_in_flight._value.get() == 0


async def test_the_lifespan_can_wait_for_running_requests_even_cancelled_ones_to_unwind() -> None:
    in_flight = InFlightRequests()
    unwound: list[str] = []

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.05)  # storing a partial answer, recording usage
            unwound.append(scope["path"])

    middleware = RequestMiddleware(slow_app, max_body_bytes=1024, access_log=False, in_flight=in_flight)
    scope = {"type": "http", "method": "GET", "path": "/s", "headers": [], "client": ("127.0.0.1", 1)}
    assert await in_flight.wait_idle(0)
    request = asyncio.create_task(middleware(scope, None, None))
    await asyncio.sleep(0.01)
    assert in_flight.count == 1
    assert not await in_flight.wait_idle(0.01)
    request.cancel()  # what uvicorn does when the graceful shutdown runs out of time
    assert await in_flight.wait_idle(5)
    assert unwound == ["/s"]
    assert in_flight.count == 0
    with pytest.raises(asyncio.CancelledError):
        await request


def test_an_otlp_endpoint_turns_tracing_on_and_none_leaves_it_off() -> None:
    from infrastructure.observability.tracing import Tracing, build_tracer_provider

    assert build_tracer_provider(None, service_name="switchboard") is None
    assert Tracing(None).tracer is None
    provider = build_tracer_provider("http://127.0.0.1:4318/", service_name="sb", sample_ratio=0.25)
    try:
        assert provider.resource.attributes["service.name"] == "sb"
        assert "0.25" in provider.sampler.get_description()
        assert Tracing(provider).tracer is not None
    finally:
        provider.shutdown()  # nothing was recorded: nothing is sent
