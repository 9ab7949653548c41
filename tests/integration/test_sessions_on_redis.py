"""Log-outs on PostgreSQL + Redis, seen by every instance at once, and what happens while Redis is away."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from domain.shared.errors import DependencyUnavailable
from domain.shared.ids import new_id
from infrastructure.redis.client import create_redis
from infrastructure.redis.session_revocations import RedisSessionRevocations
from tests.api.conftest import Api, assert_problem, make_settings, running_api

pytestmark = pytest.mark.integration
DOWN = "redis://127.0.0.1:1/0"  # nothing listens there


def _settings(postgres_url: str, redis_url: str, redis_prefix: str, **overrides: Any) -> Any:
    # Both instances cache the caller for a minute: only the denylist can refuse a logged-out token on the other.
    return make_settings(
        database_url=postgres_url,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        auth_cache_ttl_seconds=60,
        **overrides,
    )


async def _signed_in(api: Api) -> tuple[dict[str, Any], dict[str, str]]:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    await api.register(email)
    tokens = await api.log_in(email)
    return tokens, {"Authorization": f"Bearer {tokens['access_token']}"}


async def _refused_soon(api: Api, auth: dict[str, str]) -> int:
    """The status of ``/users/me`` once it is no longer 200, or 200 after a second (a message crosses Redis in ms)."""
    for _ in range(100):
        status = (await api.http.get("/api/v1/users/me", headers=auth)).status_code
        if status != 200:
            return status
        await asyncio.sleep(0.01)
    return status


async def test_a_log_out_on_one_instance_refuses_the_access_token_on_the_other_at_once(
    postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    config = _settings(postgres_url, redis_url, redis_prefix)
    async with running_api(config) as one, running_api(config) as two:
        tokens, auth = await _signed_in(one)
        _, other_session = await _signed_in(two)
        assert (await two.http.get("/api/v1/users/me", headers=auth)).status_code == 200  # now in two's cache
        logout = await one.http.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        assert logout.status_code == 204
        assert await _refused_soon(two, auth) == 401
        assert (await two.http.get("/api/v1/users/me", headers=other_session)).status_code == 200
        async with running_api(config) as three:  # started after the log-out: it reads the denylist's keys
            assert_problem(await three.http.get("/api/v1/users/me", headers=auth), 401, "unauthenticated")


async def test_denylist_keys_expire_with_the_longest_lived_access_token(
    postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    config = _settings(postgres_url, redis_url, redis_prefix, access_token_ttl_seconds=120)
    async with running_api(config) as api:
        tokens, _ = await _signed_in(api)
        await api.http.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        redis = api.app.state.container.redis()
        [key] = [key async for key in redis.scan_iter(match=redis_prefix + "revoked-session:*")]
        assert 120_000 < await redis.pttl(key) <= 131_000  # the lifetime, the decoder's leeway and a second


@pytest.mark.parametrize("fail_open", [True, False])
async def test_while_redis_is_down_revocations_follow_the_failure_mode(fail_open: bool) -> None:
    redis = create_redis(DOWN, timeout_seconds=0.2)
    sessions = RedisSessionRevocations(ttl_seconds=60, redis=redis, prefix="t:", fail_open=fail_open)
    try:
        await sessions.start()
        assert not sessions.in_sync
        unknown, logged_out = new_id(), new_id()
        assert not sessions.is_revoked(unknown)  # served on what this instance knows, in either mode
        if fail_open:
            await sessions.revoke(logged_out)
        else:  # the others cannot be told: 503, and the log-out can be retried
            with pytest.raises(DependencyUnavailable):
                await sessions.revoke(logged_out)
        assert sessions.is_revoked(logged_out)  # this instance refuses the session's tokens all the same
    finally:
        await sessions.aclose()
        await redis.aclose()


async def test_a_listener_that_comes_back_catches_up_on_what_it_missed(redis_url: str, redis_prefix: str) -> None:
    redis = create_redis(redis_url, timeout_seconds=1)
    writer = RedisSessionRevocations(ttl_seconds=60, redis=redis, prefix=redis_prefix, fail_open=False)
    reader = RedisSessionRevocations(ttl_seconds=60, redis=redis, prefix=redis_prefix, fail_open=False)
    try:
        missed = new_id()
        await writer.revoke(missed)  # nobody listening yet: pub/sub drops it, the key stays
        await reader.start()
        assert reader.in_sync
        assert reader.is_revoked(missed)
        heard = new_id()
        await writer.revoke(heard)
        for _ in range(100):
            if reader.is_revoked(heard):
                break
            await asyncio.sleep(0.01)
        assert reader.is_revoked(heard)
    finally:
        await reader.aclose()
        await redis.aclose()
