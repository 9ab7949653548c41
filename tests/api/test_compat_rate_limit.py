"""The real rate limiter, seen through the official SDKs: a 429 they raise as ``RateLimitError``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import httpx
import openai
import pytest

from interfaces.http.app import create_app
from tests.api.conftest import PASSWORD, make_settings
from tests.api.serving import serving

pytestmark = pytest.mark.api
KEY_RPM = 3


@pytest.fixture
async def limited() -> AsyncIterator[tuple[str, str]]:
    """A server whose API keys may make ``KEY_RPM`` requests a minute; yields its URL and a fresh key."""
    app = create_app(make_settings(rate_limit_key_rpm=KEY_RPM))
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        await http.post("/api/v1/auth/register", json={"email": "rl@example.com", "password": PASSWORD})
        token = (
            await http.post("/api/v1/auth/token", data={"username": "rl@example.com", "password": PASSWORD})
        ).json()
        jwt = {"Authorization": f"Bearer {token['access_token']}"}
        key = (await http.post("/api/v1/api-keys", json={"name": "rl"}, headers=jwt)).json()["key"]
        yield url, key


async def test_openai_sdk_sees_the_rate_limiter_as_rate_limit_error(limited: tuple[str, str]) -> None:
    url, key = limited
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as client:
        for _ in range(KEY_RPM):
            await client.chat.completions.create(model="local", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.RateLimitError) as raised:
            await client.chat.completions.create(model="local", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 429
    assert int(raised.value.response.headers["retry-after"]) >= 1
    assert "ratelimit-policy" in raised.value.response.headers


async def test_anthropic_sdk_sees_the_rate_limiter_as_rate_limit_error(limited: tuple[str, str]) -> None:
    url, key = limited
    async with anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0) as client:
        for _ in range(KEY_RPM):
            await client.messages.create(model="local", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(anthropic.RateLimitError) as raised:
            await client.messages.create(model="local", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.type == "rate_limit_error"
    assert int(raised.value.response.headers["retry-after"]) >= 1


async def test_x_api_key_requests_count_against_the_limit_too(limited: tuple[str, str]) -> None:
    url, key = limited
    async with httpx.AsyncClient(base_url=url) as http:
        statuses = [(await http.get("/v1/models", headers={"x-api-key": key})).status_code for _ in range(KEY_RPM + 1)]
    assert statuses == [200] * KEY_RPM + [429]


CHAT = {"model": "local", "messages": [{"role": "user", "content": "hi"}]}


async def test_a_model_call_route_counts_every_request_whatever_it_answers(limited: tuple[str, str]) -> None:
    """The model-call routes leave the request's count to the model call's admission (one Redis round trip for both):
    a request that never reaches a model call (a body refused, an idempotent replay) is counted all the same."""
    url, key = limited
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url) as http:
        refused_body = await http.post("/v1/chat/completions", json={"model": "local"}, headers=auth)
        assert refused_body.status_code == 400
        keyed = auth | {"Idempotency-Key": "rl-1"}
        first = await http.post("/v1/chat/completions", json=CHAT, headers=keyed)
        assert first.status_code == 200
        assert first.headers["ratelimit"].startswith('"key";r=1;')  # the refused body took one, this one another
        replayed = await http.post("/v1/chat/completions", json=CHAT, headers=keyed)
        assert replayed.status_code == 200
        assert replayed.headers["idempotent-replayed"] == "true"
        assert replayed.headers["ratelimit"].startswith('"key";r=0;')
        limited_out = [
            await http.post("/v1/chat/completions", json=CHAT, headers=keyed),  # a replay is refused too
            await http.post("/v1/chat/completions", json={"model": "local"}, headers=auth),  # 429 before 400
            await http.post("/v1/embeddings", json={"model": "local-embed", "input": "hi"}, headers=auth),
            await http.post("/v1/messages", json=CHAT | {"max_tokens": 5}, headers=auth),
            await http.post("/v1/responses", json={"model": "local", "input": "hi"}, headers=auth),
            await http.post("/v1/chat/completions", json=CHAT | {"stream": True}, headers=auth),
        ]
        usage = await http.get("/api/v1/usage", headers=auth)
    assert [r.status_code for r in limited_out] == [429] * len(limited_out)
    assert all(int(r.headers["retry-after"]) >= 1 for r in limited_out)
    assert usage.status_code == 429  # the key's minute is spent on every route
