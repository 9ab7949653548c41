"""Conversations answered by real provider adapters (through their SDKs) against the fake upstream server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.api.conftest import Api, assert_problem, make_settings, running_api
from tests.fakes import upstream as fake
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.api

OPENAI_TABLE = """
provider = "openai"
upstream_model = "gpt-4o-mini"
base_url = "{base}/v1"
api_key_env = "SB_TEST_OPENAI_KEY"
"""
ANTHROPIC_TABLE = """
provider = "anthropic"
upstream_model = "claude-haiku-4-5"
base_url = "{base}"
api_key_env = "SB_TEST_ANTHROPIC_KEY"
"""


def catalog_text(base: str, chat: str = OPENAI_TABLE) -> str:
    return f"""
default_model = "chat"

[models.chat]
{chat.format(base=base)}
input_usd_per_mtok = 0.15
output_usd_per_mtok = 0.60
timeout_seconds = 1
fallbacks = ["backup"]

[models.backup]
{ANTHROPIC_TABLE.format(base=base)}
timeout_seconds = 1

[models.solo]
{OPENAI_TABLE.format(base=base)}
timeout_seconds = 1
"""


@pytest.fixture
async def upstream(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeUpstream]:
    monkeypatch.setenv("SB_TEST_OPENAI_KEY", "sk-test-openai-secret")
    monkeypatch.setenv("SB_TEST_ANTHROPIC_KEY", "sk-ant-test-secret")
    async with FakeUpstream() as up:
        yield up


def fast_retries(**overrides: Any) -> dict[str, Any]:
    return {
        "upstream_backoff_base_seconds": 0.001,
        "upstream_backoff_max_seconds": 0.01,
        "upstream_retry_budget_min_retries": 100,
        **overrides,
    }


async def _api(tmp_path: Path, text: str, **settings: Any) -> Any:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return running_api(make_settings(catalog_path=path, **fast_retries(**settings)))


async def _conversation(api: Api, model: str = "chat") -> tuple[dict[str, str], str]:
    headers = await api.user("ada@example.com")
    cid = (await api.http.post("/api/v1/conversations", json={"model": model}, headers=headers)).json()["id"]
    return headers, cid


async def test_openai_answers_then_a_config_edit_switches_to_anthropic(upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await _api(tmp_path, catalog_text(upstream.base_url)) as api:
        headers, cid = await _conversation(api)
        posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=headers)
        assert posted.status_code == 201, posted.text
        body = posted.json()
        assert body["assistant_message"]["content"] == "Echo: hi"
        assert body["served_by"]["provider"] == "openai"
        assert upstream.last_request.path == "/v1/chat/completions"
        assert upstream.last_request.api_key == "sk-test-openai-secret"
        assert upstream.last_request.json["model"] == "gpt-4o-mini"

    # The same public model, now served by Anthropic: only the catalog file changed.
    async with await _api(tmp_path, catalog_text(upstream.base_url, chat=ANTHROPIC_TABLE)) as api:
        headers, cid = await _conversation(api)
        posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=headers)
        assert posted.status_code == 201, posted.text
        assert posted.json()["served_by"]["provider"] == "anthropic"
        assert upstream.last_request.path == "/v1/messages"
        assert upstream.last_request.json["model"] == "claude-haiku-4-5"


async def test_models_list_the_catalog(upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await _api(tmp_path, catalog_text(upstream.base_url)) as api:
        headers = await api.user("ada@example.com")
        body = (await api.http.get("/api/v1/models", headers=headers)).json()
        chat = next(m for m in body["items"] if m["name"] == "chat")
        assert chat["provider"] == "openai"
        assert chat["fallbacks"] == ["backup"]
        assert chat["input_usd_per_mtok"] == "0.15"
        assert "sk-test" not in str(body)
        assert "base_url" not in str(body)


async def test_a_retry_hides_a_passing_failure(upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await _api(tmp_path, catalog_text(upstream.base_url)) as api:
        headers, cid = await _conversation(api)
        upstream.push(fake.rate_limited(retry_after=0.01), fake.server_error())
        posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=headers)
        assert posted.status_code == 201, posted.text
        assert posted.json()["served_by"]["model"] == "chat"
        assert len(upstream.requests_to("/v1/chat/completions")) == 3


async def test_fallback_to_another_provider_says_who_answered(upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await _api(tmp_path, catalog_text(upstream.base_url)) as api:
        headers, cid = await _conversation(api)
        upstream.fail_model("gpt-4o-mini", 503)
        posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=headers)
        assert posted.status_code == 201, posted.text
        served = posted.json()["served_by"]
        assert (served["model"], served["provider"], served["fallbacks"]) == ("backup", "anthropic", ["chat"])
        assert posted.json()["assistant_message"]["model"] == "backup"


@pytest.mark.parametrize(
    ("behaviour", "status", "code"),
    [
        (lambda: fake.server_error(503), 503, "upstream_unavailable"),
        (lambda: fake.html_error(502), 502, "upstream_bad_response"),  # a proxy's page, not the API's answer
        (lambda: fake.hang(), 504, "upstream_timeout"),
        (lambda: fake.malformed(), 502, "upstream_bad_response"),
        (lambda: fake.missing_fields(), 502, "upstream_bad_response"),
        (lambda: fake.auth_error(), 502, "upstream_auth_error"),
    ],
)
async def test_when_every_attempt_fails_the_client_gets_a_problem(
    upstream: FakeUpstream, tmp_path: Path, behaviour: Any, status: int, code: str
) -> None:
    async with await _api(tmp_path, catalog_text(upstream.base_url), upstream_max_attempts=1) as api:
        headers, cid = await _conversation(api, model="solo")
        upstream.push(behaviour())
        posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=headers)
        body = assert_problem(posted, status, code)
        assert "sk-test" not in posted.text
        # Nothing was stored for an exchange that never got an answer.
        detail = (await api.http.get(f"/api/v1/conversations/{cid}", headers=headers)).json()
        assert detail["messages"] == []
        assert body["request_id"]


async def test_context_too_long_is_the_clients_problem_and_not_retried(upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await _api(tmp_path, catalog_text(upstream.base_url)) as api:
        headers, cid = await _conversation(api)
        upstream.push(fake.context_length_exceeded())
        posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=headers)
        assert_problem(posted, 422, "context_too_long")
        assert len(upstream.requests_to("/v1/chat/completions")) == 1
        assert upstream.requests_to("/v1/messages") == []


def _sse(raw: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in raw.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((fields["event"], orjson.loads(fields["data"])))
    return events


async def _stream(api: Api, cid: str, headers: dict[str, str]) -> httpx.Response:
    return await api.http.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"content": "one two three four"},
        headers={**headers, "Accept": "text/event-stream"},
    )


@pytest.mark.parametrize("chat", [OPENAI_TABLE, ANTHROPIC_TABLE])
async def test_streaming_through_each_provider(upstream: FakeUpstream, tmp_path: Path, chat: str) -> None:
    async with await _api(tmp_path, catalog_text(upstream.base_url, chat=chat)) as api:
        headers, cid = await _conversation(api)
        upstream.push(fake.delay(0, chunk_delay=0.01))  # chunks spaced in time: each is forwarded on its own
        response = await _stream(api, cid, headers)
        assert response.status_code == 200
        events = _sse(response.text)
        deltas = [data["text"] for name, data in events if name == "delta"]
        assert "".join(deltas) == "Echo: one two three four"
        assert len(deltas) >= 4
        name, done = events[-1]
        assert name == "done"
        assert done["assistant_message"]["content"] == "Echo: one two three four"
        assert done["usage"]["output_tokens"] == 5


async def test_an_upstream_failure_mid_stream_ends_with_an_error_event_and_keeps_the_partial(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await _api(tmp_path, catalog_text(upstream.base_url)) as api:
        headers, cid = await _conversation(api)
        upstream.push(fake.drop_stream_after(3))
        response = await _stream(api, cid, headers)
        events = _sse(response.text)
        name, error = events[-1]
        assert name == "error"
        assert error["code"] == "upstream_bad_response"
        assert error["status"] == 502
        partial = error["result"]["assistant_message"]
        assert partial["status"] == "incomplete"
        assert partial["finish_reason"] == "error"
        assert partial["content"] == "".join(d["text"] for n, d in events if n == "delta")
        stored = (await api.http.get(f"/api/v1/conversations/{cid}", headers=headers)).json()["messages"]
        assert [m["status"] for m in stored] == ["complete", "incomplete"]


async def test_a_stream_that_fails_before_any_text_falls_back(upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await _api(tmp_path, catalog_text(upstream.base_url), upstream_max_attempts=1) as api:
        headers, cid = await _conversation(api)
        upstream.push(fake.server_error(500))
        response = await _stream(api, cid, headers)
        name, done = _sse(response.text)[-1]
        assert name == "done"
        assert done["served_by"]["model"] == "backup"


async def test_a_stream_whose_models_all_fail_first_is_a_plain_problem(upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await _api(tmp_path, catalog_text(upstream.base_url), upstream_max_attempts=1) as api:
        headers, cid = await _conversation(api, model="solo")
        upstream.push(fake.server_error(500))
        assert_problem(await _stream(api, cid, headers), 503, "upstream_unavailable")
