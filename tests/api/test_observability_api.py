"""Logs, metrics, traces and request handling as an operator sees them, through the HTTP API."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import structlog
from dependency_injector import providers
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from domain.shared.errors import RateLimited
from infrastructure.observability.logging import captured_logs
from interfaces.container import Container
from interfaces.http.app import create_app
from tests.api.conftest import PASSWORD, TEST_SECRET, Api, assert_problem, make_settings, running_api
from tests.api.test_providers_api import catalog_text, fast_retries
from tests.fakes import upstream as fake
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.api
PROVIDER_KEY = "sk-test-openai-" + "p" * 24
ANTHROPIC_KEY = "sk-ant-test-" + "a" * 24


def json_lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def logs() -> Iterator[Any]:
    with captured_logs() as buffer:
        yield buffer


@pytest.fixture
async def upstream(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeUpstream]:
    monkeypatch.setenv("SB_TEST_OPENAI_KEY", PROVIDER_KEY)
    monkeypatch.setenv("SB_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    async with FakeUpstream() as up:
        yield up


async def _key(api: Api, email: str) -> dict[str, str]:
    jwt = await api.user(email)
    key = (await api.http.post("/api/v1/api-keys", json={"name": "k"}, headers=jwt)).json()["key"]
    return {"Authorization": f"Bearer {key}"}


async def _chat(api: Api, headers: dict[str, str], content: str = "hello", **extra: Any) -> httpx.Response:
    cid = (await api.http.post("/api/v1/conversations", json={}, headers=headers)).json()["id"]
    return await api.http.post(
        f"/api/v1/conversations/{cid}/messages", json={"content": content}, headers={**headers, **extra}
    )


async def test_request_id_server_timing_and_security_headers(api: Api) -> None:
    response = await api.http.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert re.fullmatch(r"app;dur=\d+\.\d", response.headers["server-timing"])
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


async def test_every_log_line_of_a_request_carries_its_request_id_and_caller(logs: Any) -> None:
    async with running_api(make_settings(log_format="json")) as api:
        headers = await _key(api, "ada@example.com")
        posted = await _chat(api, headers, **{"X-Request-ID": "trace-me-1"})
        assert posted.status_code == 201
        me = (await api.http.get("/api/v1/users/me", headers=headers)).json()
    lines = json_lines(logs.getvalue())
    mine = [line for line in lines if line.get("request_id") == "trace-me-1"]
    assert {line["event"] for line in mine} >= {"llm call", "request"}
    for line in mine:
        assert line["method"] == "POST"
        assert line["path"].endswith("/messages")
        assert line["user_id"] == me["id"]
        assert line["api_key_id"]
    access = next(line for line in mine if line["event"] == "request")
    assert access["status"] == 201
    assert access["route"] == "/api/v1/conversations/{conversation_id}/messages"
    assert access["duration_ms"] > 0
    assert access["level"] == "info"
    assert access["timestamp"].endswith("Z")
    call = next(line for line in mine if line["event"] == "llm call")
    assert (call["model"], call["provider"], call["attempts"], call["fallbacks"]) == ("local", "local", 1, [])
    assert call["input_tokens"] > 0
    assert call["output_tokens"] > 0
    assert "prompt" not in call
    assert "answer" not in call


async def test_message_contents_are_logged_only_when_asked(logs: Any) -> None:
    async with running_api(make_settings(log_format="json", log_message_content=True)) as api:
        await _chat(api, await api.user("ada@example.com"), content="a very particular question")
    call = next(line for line in json_lines(logs.getvalue()) if line["event"] == "llm call")
    assert call["prompt"][-1] == {"role": "user", "content": "a very particular question"}
    assert "a very particular question" in call["answer"]


async def test_no_secret_reaches_a_log(logs: Any, upstream: FakeUpstream, tmp_path: Path) -> None:
    """Register, log in, create and use a key, call real provider adapters (also failing with their credentials
    refused), send bad credentials: then scan every log line for each secret, and for the message's content."""
    catalog = tmp_path / "models.toml"
    catalog.write_text(catalog_text(upstream.base_url))
    content = "my bank pin is 7519 and nobody may know"
    settings = make_settings(
        log_format="json", log_level="DEBUG", catalog_path=catalog, upstream_max_attempts=1, **fast_retries()
    )
    async with running_api(settings) as api:
        await api.register("ada@example.com")
        tokens = await api.log_in("ada@example.com")
        jwt = {"Authorization": f"Bearer {tokens['access_token']}"}
        key = (await api.http.post("/api/v1/api-keys", json={"name": "k"}, headers=jwt)).json()["key"]
        with_key = {"Authorization": f"Bearer {key}"}
        assert (await _chat(api, with_key, content=content)).status_code == 201
        upstream.push(fake.auth_error(), fake.auth_error())
        assert (await _chat(api, with_key, content=content)).status_code == 502
        assert (await api.http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).is_success
        bad_key = key[:-4] + "AAAA"
        assert (await api.http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {bad_key}"})).status_code
        wrong = await api.http.post("/api/v1/auth/token", data={"username": "ada@example.com", "password": "x" * 20})
        assert wrong.status_code == 401
        # Planted: what careless code or a library might log. The redaction must catch it on the way out.
        logging.getLogger("some.library").warning("calling upstream with Authorization: Bearer %s", key)
        logging.getLogger("some.library").error("connect failed: %s", f"postgresql://app:{PASSWORD}@db/x")
        structlog.get_logger().info("careless", password=PASSWORD, headers={"authorization": f"Bearer {key}"})
        structlog.get_logger().info(f"provider said: invalid key {PROVIDER_KEY}; jwt {TEST_SECRET}")
    text = logs.getvalue()
    assert "llm call failed" in text
    assert "auth.failed" in text
    for secret in (
        PASSWORD,
        key,
        bad_key,
        tokens["access_token"],
        tokens["refresh_token"],
        PROVIDER_KEY,
        ANTHROPIC_KEY,
        TEST_SECRET,
        content,
    ):
        assert secret not in text, f"a secret reached the logs: {secret[:12]}…"
    assert text.count("[REDACTED]") >= 5


async def test_auth_failures_are_security_events(logs: Any) -> None:
    async with running_api(make_settings(log_format="json")) as api:
        await api.http.get("/api/v1/users/me", headers={"Authorization": "Bearer sk-sb-nope"})
        member = await api.user("ada@example.com")
        await api.http.get("/api/v1/admin/users", headers=member)
    events = {line["event"]: line for line in json_lines(logs.getvalue()) if line.get("category") == "security"}
    assert events["auth.failed"]["code"] == "unauthenticated"
    assert events["auth.failed"]["client"] == "127.0.0.1"
    assert events["auth.failed"]["path"] == "/api/v1/users/me"
    assert "access.denied" in events


async def test_admin_changes_are_audited_in_the_same_transaction_and_logged(logs: Any) -> None:
    async with running_api(make_settings(log_format="json")) as api:
        admin = await api.admin()
        ada = await api.register("ada@example.com")
        changed = await api.http.patch(
            f"/api/v1/admin/users/{ada['id']}", json={"role": "admin"}, headers={**admin, "X-Request-ID": "adm-1"}
        )
        assert changed.status_code == 200
        await api.http.patch(f"/api/v1/admin/users/{ada['id']}", json={"is_active": False}, headers=admin)
        async with api.app.state.container.uow()() as uow:
            trail = await uow.audit_log.list_by_target("user", ada["id"])
        me = (await api.http.get("/api/v1/users/me", headers=admin)).json()
    assert [(e.before, e.after) for e in trail] == [
        ({"is_active": True}, {"is_active": False}),
        ({"role": "member"}, {"role": "admin"}),
    ]
    assert all(str(e.actor_id) == me["id"] and e.action == "user.update" for e in trail)
    assert trail[1].request_id == "adm-1"
    logged = [line for line in json_lines(logs.getvalue()) if line["event"] == "admin.change"]
    assert [line["after"] for line in logged] == [{"role": "admin"}, {"is_active": False}]
    assert logged[0]["request_id"] == "adm-1"
    assert logged[0]["category"] == "security"


def _samples(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


async def test_metrics_count_requests_by_route_template_and_model_calls(api: Api) -> None:
    headers = await api.user("ada@example.com")
    for _ in range(2):
        assert (await _chat(api, headers)).status_code == 201
    await api.http.get(f"/api/v1/conversations/{uuid.uuid4()}", headers=headers)
    await api.http.get("/no/such/path")
    response = await api.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    route = "/api/v1/conversations/{conversation_id}/messages"
    assert samples[f'switchboard_http_requests_total{{method="POST",route="{route}",status="201"}}'] == 2
    assert (
        samples[
            'switchboard_http_requests_total{method="GET",route="/api/v1/conversations/{conversation_id}",status="404"}'
        ]
        == 1
    )
    assert samples['switchboard_http_requests_total{method="GET",route="unmatched",status="404"}'] == 1
    assert (
        samples[f'switchboard_http_request_duration_seconds_count{{method="POST",route="{route}",status="201"}}'] == 2
    )
    assert samples['switchboard_llm_calls_total{model="local",outcome="ok",provider="local",served_by="local"}'] == 2
    assert samples['switchboard_llm_tokens_total{kind="output",model="local",provider="local"}'] > 0
    assert samples['switchboard_llm_upstream_requests_total{deployment="local",outcome="ok",provider="local"}'] == 2
    assert samples['switchboard_llm_circuit_state{deployment="local"}'] == 0
    assert samples["switchboard_http_requests_in_flight"] == 1  # this scrape
    assert not any(str(uuid.UUID(int=0))[:8] in name for name in samples)  # no raw ids as labels


async def test_metrics_show_retries_fallbacks_upstream_errors_cost_and_open_circuits(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    catalog = tmp_path / "models.toml"
    catalog.write_text(catalog_text(upstream.base_url))
    settings = make_settings(catalog_path=catalog, breaker_failure_threshold=2, **fast_retries(upstream_max_attempts=2))
    async with running_api(settings) as api:
        headers = await api.user("ada@example.com")
        upstream.push(fake.server_error(503))
        assert (await _chat(api, headers)).status_code == 201  # retried, then ok
        upstream.fail_model("gpt-4o-mini", 503)
        assert (await _chat(api, headers)).json()["served_by"]["model"] == "backup"  # circuit opens, falls back
        samples = _samples((await api.http.get("/metrics")).text)
    assert samples['switchboard_llm_retries_total{code="upstream_unavailable",deployment="chat"}'] >= 2
    assert samples['switchboard_llm_fallbacks_total{code="upstream_unavailable",model="chat"}'] == 1
    assert (
        samples[
            'switchboard_llm_upstream_errors_total{code="upstream_unavailable",deployment="chat",provider="openai"}'
        ]
        >= 3
    )
    assert samples['switchboard_llm_circuit_state{deployment="chat"}'] == 2
    assert (
        samples['switchboard_llm_calls_total{model="chat",outcome="ok",provider="anthropic",served_by="backup"}'] == 1
    )
    assert samples['switchboard_llm_cost_usd_total{model="chat",provider="openai"}'] > 0  # priced in the catalog


async def test_metrics_can_require_a_token_or_be_off(api_with: Any) -> None:
    async with api_with(metrics_token="scrape-" + "t" * 20) as api:
        assert_problem(await api.http.get("/metrics"), 401, "unauthenticated")
        assert_problem(await api.http.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401)
        ok = await api.http.get("/metrics", headers={"Authorization": "Bearer scrape-" + "t" * 20})
        assert ok.status_code == 200
    async with api_with(metrics_enabled=False) as api:
        assert (await api.http.get("/metrics")).status_code == 404


async def test_the_span_tree_of_a_chat_request(sqlite_url: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = make_settings(database_url=sqlite_url)
    container = Container(settings=settings)
    container.tracer_provider.override(providers.Object(provider))
    app = create_app(settings, container=container)
    async with running_api(settings, app=app) as api:
        headers = await api.user(f"{uuid.uuid4().hex[:8]}@example.com")
        cid = (await api.http.post("/api/v1/conversations", json={}, headers=headers)).json()["id"]
        exporter.clear()
        traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        posted = await api.http.post(
            f"/api/v1/conversations/{cid}/messages",
            json={"content": "hi", "max_tokens": 50},
            headers={**headers, "traceparent": traceparent},
        )
        assert posted.status_code == 201
    # The usage ledger's writer stores records of many requests in one batch, in a trace of its own.
    spans = [
        s
        for s in exporter.get_finished_spans()
        if "usage_records" not in str((s.attributes or {}).get("db.query.text"))
    ]
    by_id = {s.context.span_id: s for s in spans}

    def parent(span: ReadableSpan) -> ReadableSpan | None:
        return by_id.get(span.parent.span_id) if span.parent else None

    server = next(s for s in spans if s.kind is SpanKind.SERVER)
    assert server.name == "POST /api/v1/conversations/{conversation_id}/messages"
    assert server.attributes["http.response.status_code"] == 201
    assert format(server.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"  # the caller's trace
    assert {s.context.trace_id for s in spans} == {server.context.trace_id}
    use_case = next(s for s in spans if s.name == "PostMessage")
    assert parent(use_case) is server
    llm = next(s for s in spans if s.name == "chat local-echo")  # "chat {upstream model}"
    assert parent(llm) is use_case
    assert llm.kind is SpanKind.CLIENT
    assert llm.attributes["gen_ai.operation.name"] == "chat"
    assert llm.attributes["gen_ai.provider.name"] == "local"
    assert llm.attributes["gen_ai.request.model"] == "local-echo"
    assert llm.attributes["switchboard.model"] == "local"
    assert llm.attributes["gen_ai.request.max_tokens"] == 50
    assert llm.attributes["gen_ai.usage.input_tokens"] > 0
    assert llm.attributes["gen_ai.usage.output_tokens"] > 0
    assert llm.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    queries = [s for s in spans if s.attributes.get("db.system.name") == "sqlite"]
    assert {q.attributes["db.operation.name"] for q in queries} >= {"SELECT", "INSERT"}
    assert any(parent(q) is use_case for q in queries)
    assert all(parent(q) in (use_case, *(s for s in spans if s.name == "Authenticate")) for q in queries)
    assert "?" in next(q for q in queries if q.attributes["db.operation.name"] == "INSERT").attributes["db.query.text"]


async def test_tracing_is_off_without_an_endpoint(api: Api) -> None:
    container = api.app.state.container
    assert container.tracing().tracer is None
    assert not container.post_message.overridden  # nothing wrapped


async def test_trusted_proxies_decide_the_client_address(logs: Any, api_with: Any) -> None:
    forwarded = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7, 10.1.2.3"}
    async with api_with(log_format="json") as api:  # no trusted proxy: the header is ignored
        await api.http.get("/api/v1/models", headers=forwarded)
    async with api_with(log_format="json", trusted_proxies=["127.0.0.1", "10.0.0.0/8"]) as api:
        await api.http.get("/api/v1/models", headers=forwarded)
        await api.http.get("/api/v1/models", headers={"X-Forwarded-For": "not-an-ip, 10.9.9.9"})
    clients = [line["client"] for line in json_lines(logs.getvalue()) if line["event"] == "request"]
    assert clients == ["127.0.0.1", "203.0.113.7", "10.9.9.9"]


async def test_cors_from_settings(api_with: Any) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    async with api_with(cors_origins=["https://app.example"]) as api:
        allowed = await api.http.options("/api/v1/conversations", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = await api.http.options("/api/v1/conversations", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        simple = await api.http.get("/health/live", headers={"Origin": "https://app.example"})
        assert simple.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
    async with api_with() as api:
        assert (
            "access-control-allow-origin"
            not in (await api.http.options("/api/v1/conversations", headers=preflight)).headers
        )


async def test_an_unexpected_error_is_logged_with_its_traceback_and_request_id_but_no_secret(
    logs: Any, api_with: Any
) -> None:
    class Boom:
        async def execute(self, *_: object) -> None:
            raise RuntimeError("secret internals: password=hunter2")

    async with api_with(log_format="json") as api:
        with api.app.state.container.register_user.override(providers.Object(Boom())):
            response = await api.http.post(
                "/api/v1/auth/register",
                json={"email": "a@example.com", "password": "x" * 12},
                headers={"X-Request-ID": "boom-1"},
            )
    assert response.status_code == 500
    error = next(line for line in json_lines(logs.getvalue()) if line["event"] == "unhandled error")
    assert error["request_id"] == "boom-1"
    assert error["level"] == "error"
    assert "RuntimeError" in error["exception"]
    assert "hunter2" not in logs.getvalue()


async def test_rate_limited_requests_are_counted(api: Api) -> None:
    class Limited:
        async def execute(self, *_: object) -> None:
            raise RateLimited("slow down", retry_after_seconds=2)

    with api.app.state.container.register_user.override(providers.Object(Limited())):
        response = await api.http.post("/api/v1/auth/register", json={"email": "a@example.com", "password": "x" * 12})
    assert_problem(response, 429, "rate_limited")
    samples = _samples((await api.http.get("/metrics")).text)
    assert samples['switchboard_rate_limited_requests_total{code="rate_limited"}'] == 1


async def test_the_compatible_api_is_observed_too(logs: Any, api_with: Any) -> None:
    """/v1: route templates through the mounted app, the caller on log lines, auth failures as security events."""
    async with api_with(log_format="json") as api:
        jwt = await api.user("ada@example.com")
        key = (await api.http.post("/api/v1/api-keys", json={"name": "k"}, headers=jwt)).json()["key"]
        chat = {"model": "local", "messages": [{"role": "user", "content": "hi"}]}
        answered = await api.http.post("/v1/chat/completions", json=chat, headers={"x-api-key": key})
        assert answered.status_code == 200
        assert (await api.http.post("/v1/messages", json=chat, headers={"x-api-key": "sk-sb-wrong"})).status_code == 401
        await api.http.get("/v1/no/such/thing")
        samples = _samples((await api.http.get("/metrics")).text)
    assert samples['switchboard_http_requests_total{method="POST",route="/v1/chat/completions",status="200"}'] == 1
    assert samples['switchboard_http_requests_total{method="POST",route="/v1/messages",status="401"}'] == 1
    assert samples['switchboard_http_requests_total{method="GET",route="unmatched",status="404"}'] == 1
    lines = json_lines(logs.getvalue())
    call = next(line for line in lines if line["event"] == "llm call")
    assert call["path"] == "/v1/chat/completions"
    assert call["api_key_id"]
    assert any(line["event"] == "auth.failed" and line["path"] == "/v1/messages" for line in lines)


async def test_compatible_streams_end_with_the_apis_error_event_when_shutdown_cuts_them(api: Api) -> None:
    jwt = await api.user("ada@example.com")
    key = (await api.http.post("/api/v1/api-keys", json={"name": "k"}, headers=jwt)).json()["key"]
    headers = {"Authorization": f"Bearer {key}"}
    shutdown = api.app.state.container.shutdown()
    shutdown.begin()
    shutdown._cut_at = 0.0  # the grace has run out
    chat = {"model": "local", "messages": [{"role": "user", "content": "one two three"}], "stream": True}
    openai = await api.http.post("/v1/chat/completions", json=chat, headers=headers)
    anthropic = await api.http.post("/v1/messages", json={**chat, "max_tokens": 50}, headers=headers)
    frames = openai.text.strip().split("\n\n")
    error = orjson.loads(frames[-1].removeprefix("data: "))["error"]
    assert (error["code"], error["type"]) == ("shutting_down", "server_error")
    assert "[DONE]" not in openai.text
    last = anthropic.text.strip().split("\n\n")[-1].split("\n")
    assert last[0] == "event: error"
    assert orjson.loads(last[1].removeprefix("data: "))["error"]["type"] == "overloaded_error"


async def test_conversation_streams_end_with_shutting_down_when_shutdown_cuts_them(api: Api) -> None:
    headers = await api.user("ada@example.com")
    cid = (await api.http.post("/api/v1/conversations", json={}, headers=headers)).json()["id"]
    shutdown = api.app.state.container.shutdown()
    shutdown.begin()
    shutdown._cut_at = 0.0
    body = {"content": "one two three four", "stream": True}
    streamed = await api.http.post(f"/api/v1/conversations/{cid}/messages", json=body, headers=headers)
    frames = [frame.split("\n") for frame in streamed.text.strip().split("\n\n")]
    assert [f[0] for f in frames] == ["event: start", "event: delta", "event: error"]
    assert orjson.loads(frames[-1][1].removeprefix("data: "))["code"] == "shutting_down"
    for _ in range(50):  # the partial answer is stored in the background
        messages = (await api.http.get(f"/api/v1/conversations/{cid}", headers=headers)).json()["messages"]
        if messages:
            break
    assert [(m["status"], m["finish_reason"]) for m in messages][1] == ("incomplete", "cancelled")
