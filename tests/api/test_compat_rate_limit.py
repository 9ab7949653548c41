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
