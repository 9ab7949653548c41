"""Prompt caching end to end: ``cache_control`` from ``/v1/messages``, ``/v1/chat/completions`` and the native API
reaches the Anthropic upstream (the fake one on loopback), and the call is billed at the cache prices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Api, make_settings, running_api
from tests.fakes.upstream import FakeUpstream, ok

pytestmark = pytest.mark.api

# Claude Sonnet's prices; the cache prices follow from Anthropic's multipliers ($0.30 read, $3.75 write).
CATALOG = """
default_model = "claude"

[models.claude]
provider = "anthropic"
upstream_model = "claude-sonnet-4-6"
base_url = "{base}"
api_key_env = "SB_TEST_ANTHROPIC_KEY"
input_usd_per_mtok = 3
output_usd_per_mtok = 15
timeout_seconds = 2
"""
EPHEMERAL = {"type": "ephemeral"}


@pytest.fixture
async def upstream(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeUpstream]:
    monkeypatch.setenv("SB_TEST_ANTHROPIC_KEY", "sk-ant-test-secret")
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
async def api(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Api]:
    path = tmp_path / "models.toml"
    path.write_text(CATALOG.format(base=upstream.base_url))
    async with running_api(make_settings(catalog_path=path)) as running:
        yield running


async def key_headers(api: Api) -> dict[str, str]:
    session = await api.user("ada@example.com")
    body = (
        await api.http.post("/api/v1/api-keys", json={"name": "k", "scopes": ["chat", "usage"]}, headers=session)
    ).json()
    return {"Authorization": f"Bearer {body['key']}"}


async def usage_totals(api: Api, headers: dict[str, str]) -> dict[str, Any]:
    await api.app.state.container.usage_recorder().flush()
    totals: dict[str, Any] = (await api.http.get("/api/v1/usage", headers=headers)).json()["totals"]
    return totals


async def test_a_cached_anthropic_prompt_is_billed_at_the_cache_prices(api: Api, upstream: FakeUpstream) -> None:
    headers = await key_headers(api)
    upstream.push(ok(cached_tokens=100_000, cache_creation_tokens=20_000))
    message = {
        "model": "claude",
        "max_tokens": 50,
        "system": [{"type": "text", "text": "a very long book", "cache_control": EPHEMERAL}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "what happens?", "cache_control": EPHEMERAL}]}
        ],
    }
    response = await api.http.post("/v1/messages", json=message, headers=headers)
    assert response.status_code == 200, response.text

    sent = upstream.last_request.json
    assert sent["system"] == [{"type": "text", "text": "a very long book", "cache_control": EPHEMERAL}]
    assert sent["messages"][0]["content"] == [{"type": "text", "text": "what happens?", "cache_control": EPHEMERAL}]
    usage = response.json()["usage"]
    assert (usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]) == (100_000, 20_000)
    plain, output = usage["input_tokens"], usage["output_tokens"]
    # Micro-dollars per million tokens: $3 plain input, $0.30 cache read, $3.75 cache write, $15 output.
    exact = plain * 3_000_000 + 100_000 * 300_000 + 20_000 * 3_750_000 + output * 15_000_000
    expected = -(-exact // 1_000_000)
    assert expected == 30_000 + 75_000 + 3 * plain + 15 * output  # $0.03 of reads, $0.075 of writes

    totals = await usage_totals(api, headers)
    assert totals["cost_micros"] == expected
    assert totals["input_tokens"] == plain + 120_000
    assert (totals["cached_tokens"], totals["cache_write_tokens"]) == (100_000, 20_000)
    assert totals["cache_savings_micros"] == 100_000 * (3_000_000 - 300_000) // 1_000_000  # $0.27 saved
    assert Decimal(totals["cache_savings_usd"]) == Decimal("0.27")


async def test_chat_completions_pass_cache_control_on_content_parts(api: Api, upstream: FakeUpstream) -> None:
    headers = await key_headers(api)
    chat = {
        "model": "claude",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "the rules", "cache_control": EPHEMERAL}]},
            {"role": "user", "content": "hi"},
        ],
    }
    response = await api.http.post("/v1/chat/completions", json=chat, headers=headers)
    assert response.status_code == 200, response.text
    assert upstream.last_request.json["system"] == [{"type": "text", "text": "the rules", "cache_control": EPHEMERAL}]


async def test_the_native_api_marks_the_system_prompt_and_the_new_message(api: Api, upstream: FakeUpstream) -> None:
    session = await api.user("ada@example.com")
    created = await api.http.post("/api/v1/conversations", json={"system_prompt": "be brief"}, headers=session)
    cid = created.json()["id"]
    posted = await api.http.post(
        f"/api/v1/conversations/{cid}/messages", json={"content": "hello", "prompt_cache": True}, headers=session
    )
    assert posted.status_code == 201, posted.text
    sent = upstream.last_request.json
    assert sent["system"] == [{"type": "text", "text": "be brief", "cache_control": EPHEMERAL}]
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hello", "cache_control": EPHEMERAL}]}
    ]
