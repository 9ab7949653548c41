"""An Azure OpenAI deployment through the native and the OpenAI-compatible APIs, against the fake upstream; its
content filter's refusal is a clear 400 on both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.conftest import Api, assert_problem, make_settings, running_api
from tests.fakes.upstream import FakeUpstream, content_filtered

pytestmark = pytest.mark.api

CATALOG = """
default_model = "gpt"

[models.gpt]
provider = "azure_openai"
upstream_model = "gpt-4o"
deployment = "prod-gpt"
base_url = "{base}"
api_key_env = "SB_TEST_AZURE_KEY"
input_usd_per_mtok = 2.5
output_usd_per_mtok = 10
timeout_seconds = 2
"""


@pytest.fixture
async def upstream(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeUpstream]:
    monkeypatch.setenv("SB_TEST_AZURE_KEY", "azure-test-secret")
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
    body = (await api.http.post("/api/v1/api-keys", json={"name": "k", "scopes": ["chat"]}, headers=session)).json()
    return {"Authorization": f"Bearer {body['key']}"}


CHAT = {"model": "gpt", "messages": [{"role": "user", "content": "hello"}]}


async def test_chat_completions_and_messages_reach_the_azure_deployment(api: Api, upstream: FakeUpstream) -> None:
    headers = await key_headers(api)
    chat = await api.http.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert chat.status_code == 200, chat.text
    assert chat.json()["choices"][0]["message"]["content"] == "Echo: hello"
    message = {"model": "gpt", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    answered = await api.http.post("/v1/messages", json=message, headers=headers)
    assert answered.status_code == 200, answered.text
    for sent in upstream.requests:
        assert sent.path == "/openai/deployments/prod-gpt/chat/completions"
        assert sent.headers["api-key"] == "azure-test-secret"


async def test_the_content_filter_is_a_400_on_both_apis(api: Api, upstream: FakeUpstream) -> None:
    headers = await key_headers(api)
    upstream.push(content_filtered())
    chat = await api.http.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert chat.status_code == 400
    assert "content filter" in chat.json()["error"]["message"]

    session = await api.user("bob@example.com")
    cid = (await api.http.post("/api/v1/conversations", json={}, headers=session)).json()["id"]
    upstream.push(content_filtered())
    posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "x"}, headers=session)
    problem = assert_problem(posted, 400, "content_filtered")
    assert "content management policy" in problem["detail"]
    assert len(upstream.requests) == 2  # refused once each: a filtered prompt is not retried
