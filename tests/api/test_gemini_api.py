"""A Gemini model through the native API, ``/v1/chat/completions``, ``/v1/messages`` and ``/v1/embeddings``,
against the fake upstream on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.conftest import Api, make_settings, running_api
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.api

CATALOG = """
default_model = "gemini"

[models.gemini]
provider = "gemini"
upstream_model = "gemini-2.5-flash"
base_url = "{base}/v1beta"
api_key_env = "SB_TEST_GEMINI_KEY"
input_usd_per_mtok = 0.30
output_usd_per_mtok = 2.50
timeout_seconds = 2

[models.gemini-embed]
kind = "embedding"
provider = "gemini"
upstream_model = "gemini-embedding-001"
base_url = "{base}/v1beta"
api_key_env = "SB_TEST_GEMINI_KEY"
dimensions = 16
"""


@pytest.fixture
async def upstream(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeUpstream]:
    monkeypatch.setenv("SB_TEST_GEMINI_KEY", "gemini-test-secret")
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


async def test_every_front_door_reaches_gemini(api: Api, upstream: FakeUpstream) -> None:
    headers = await key_headers(api)
    chat = {"model": "gemini", "messages": [{"role": "user", "content": "hello"}], "stream": True}
    streamed = await api.http.post("/v1/chat/completions", json=chat, headers=headers)
    assert streamed.status_code == 200, streamed.text
    assert "Echo" in streamed.text
    message = {"model": "gemini", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    answered = await api.http.post("/v1/messages", json=message, headers=headers)
    assert answered.json()["content"][0]["text"] == "Echo: hi"

    session = await api.user("bob@example.com")
    cid = (await api.http.post("/api/v1/conversations", json={}, headers=session)).json()["id"]
    posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "yo"}, headers=session)
    assert posted.status_code == 201, posted.text
    assert posted.json()["served_by"]["provider"] == "gemini"

    paths = [r.path for r in upstream.requests]
    assert paths == [
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        "/v1beta/models/gemini-2.5-flash:generateContent",
        "/v1beta/models/gemini-2.5-flash:generateContent",
    ]
    assert all(r.headers["x-goog-api-key"] == "gemini-test-secret" for r in upstream.requests)


async def test_embeddings_come_from_batch_embed_contents(api: Api, upstream: FakeUpstream) -> None:
    headers = await key_headers(api)
    response = await api.http.post(
        "/v1/embeddings", json={"model": "gemini-embed", "input": ["a", "b"]}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert [len(item["embedding"]) for item in response.json()["data"]] == [16, 16]
    assert upstream.last_request.json["requests"][0]["outputDimensionality"] == 16
