"""Every streaming front door sends its first event as soon as the upstream answered, before any text.

The fake upstream sends its first stream event (OpenAI's role chunk, Anthropic's ``message_start``) and then holds
the response open without text until the client leaves: each front door's first event must already have reached
the client, whole, and carry no text. Today's answer would wait for the first text, and this would time out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from interfaces.http.app import create_app
from tests.api.conftest import PASSWORD, make_settings
from tests.api.serving import serving
from tests.fakes import upstream as fake
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.api

CATALOG = """
default_model = "gpt"

[models.gpt]
provider = "openai"
upstream_model = "gpt-4o-mini"
base_url = "{base}/v1"
api_key_env = "SB_TEST_OPENAI_KEY"

[models.claude]
provider = "anthropic"
upstream_model = "claude-haiku-4-5"
base_url = "{base}"
api_key_env = "SB_TEST_ANTHROPIC_KEY"
"""


@dataclass
class Switchboard:
    url: str
    key: str
    jwt: dict[str, str]
    upstream: FakeUpstream


@pytest.fixture(scope="module")
async def switchboard(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Switchboard]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SB_TEST_OPENAI_KEY", "sk-test-openai-secret")
        env.setenv("SB_TEST_ANTHROPIC_KEY", "sk-ant-test-secret")
        async with FakeUpstream() as upstream:
            catalog = tmp_path_factory.mktemp("first-byte") / "models.toml"
            catalog.write_text(CATALOG.format(base=upstream.base_url))
            app = create_app(make_settings(catalog_path=catalog, upstream_max_attempts=1))
            async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
                account = {"email": "first-byte@example.com", "password": PASSWORD}
                assert (await http.post("/api/v1/auth/register", json=account)).status_code == 201
                login = {"username": account["email"], "password": PASSWORD}
                token = (await http.post("/api/v1/auth/token", data=login)).json()["access_token"]
                jwt = {"Authorization": f"Bearer {token}"}
                key = (await http.post("/api/v1/api-keys", json={"name": "first-byte"}, headers=jwt)).json()["key"]
                yield Switchboard(url=url, key=key, jwt=jwt, upstream=upstream)


async def _first_event(switchboard: Switchboard, path: str, body: dict[str, Any], headers: dict[str, str]) -> str:
    """The first SSE event the client reads, while the upstream holds everything after its first event."""
    switchboard.upstream.reset()
    switchboard.upstream.push(fake.hang(after_chunks=1))
    async with (
        httpx.AsyncClient(base_url=switchboard.url, timeout=5) as http,
        http.stream("POST", path, json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        received = ""
        async with asyncio.timeout(2):  # the upstream sends no text for as long as the client stays
            async for text in response.aiter_text():
                received += text
                if "\n\n" in received:
                    return received.split("\n\n", 1)[0]
    raise AssertionError(f"the stream ended before its first event: {received!r}")


async def test_the_openai_chat_completion_sends_its_role_chunk_at_once(switchboard: Switchboard) -> None:
    body = {"model": "gpt", "messages": [{"role": "user", "content": "hello"}], "stream": True}
    event = await _first_event(
        switchboard, "/v1/chat/completions", body, {"Authorization": f"Bearer {switchboard.key}"}
    )

    assert event.startswith("data: ")
    assert '"delta":{"role":"assistant","content":""}' in event
    assert '"object":"chat.completion.chunk"' in event


async def test_the_anthropic_message_sends_message_start_at_once(switchboard: Switchboard) -> None:
    body = {"model": "claude", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 50, "stream": True}
    headers = {"x-api-key": switchboard.key, "anthropic-version": "2023-06-01"}
    event = await _first_event(switchboard, "/v1/messages", body, headers)

    assert event.startswith("event: message_start\n")
    assert '"content":[]' in event


async def test_the_responses_stream_sends_response_created_at_once(switchboard: Switchboard) -> None:
    body = {"model": "gpt", "input": "hello", "stream": True}
    event = await _first_event(switchboard, "/v1/responses", body, {"Authorization": f"Bearer {switchboard.key}"})

    assert event.startswith("event: response.created\n")
    assert '"status":"in_progress"' in event


async def test_the_native_conversation_stream_sends_start_at_once(switchboard: Switchboard) -> None:
    async with httpx.AsyncClient(base_url=switchboard.url) as http:
        created = await http.post("/api/v1/conversations", json={"model": "gpt"}, headers=switchboard.jwt)
    conversation = created.json()["id"]
    path = f"/api/v1/conversations/{conversation}/messages"
    event = await _first_event(switchboard, path, {"content": "hello", "stream": True}, switchboard.jwt)

    assert event == f'event: start\ndata: {{"conversation_id":"{conversation}"}}'
