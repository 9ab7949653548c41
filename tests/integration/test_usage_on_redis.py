"""Limits, budgets and the cache on PostgreSQL + Redis, shared by several app instances; and Redis going away."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from infrastructure.observability.logging import captured_logs
from tests.api.conftest import PASSWORD, Api, assert_problem, make_settings, running_api

pytestmark = pytest.mark.integration


PRICED_CATALOG = """
default_model = "local"

[models.local]
provider = "local"
upstream_model = "local-echo"
input_usd_per_mtok = 1.0
output_usd_per_mtok = 2.0
"""


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(PRICED_CATALOG)
    return path


def settings(postgres_url: str, redis_url: str, redis_prefix: str, **overrides: Any) -> Any:
    return make_settings(database_url=postgres_url, redis_url=redis_url, redis_key_prefix=redis_prefix, **overrides)


def cost(answer: dict[str, Any]) -> int:
    usage = answer["usage"]
    return int(usage["input_tokens"] + 2 * usage["output_tokens"])


async def _user_with_key(api: Api) -> tuple[dict[str, str], dict[str, str]]:
    jwt = await api.user(f"ada-{uuid.uuid4().hex[:8]}@example.com")
    body = (
        await api.http.post("/api/v1/api-keys", json={"name": "k", "scopes": ["chat", "models"]}, headers=jwt)
    ).json()
    return jwt, {"Authorization": f"Bearer {body['key']}"}


async def _post(api: Api, auth: dict[str, str], content: str = "hi", **body: Any) -> Any:
    cid = (await api.http.post("/api/v1/conversations", json={}, headers=auth)).json()["id"]
    return await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": content, **body}, headers=auth)


async def test_two_instances_on_one_redis_never_admit_more_than_the_limit_together(
    postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    config = settings(postgres_url, redis_url, redis_prefix, rate_limit_key_rpm=25)
    async with running_api(config) as one, running_api(config) as two:
        assert one.app.state.container.redis() is not two.app.state.container.redis()  # separate connections
        _, key = await _user_with_key(one)

        async def hammer(api: Api) -> list[int]:
            responses = await asyncio.gather(*(api.http.get("/api/v1/models", headers=key) for _ in range(40)))
            return [r.status_code for r in responses]

        first, second = await asyncio.gather(hammer(one), hammer(two))
        statuses = Counter(first + second)
        assert statuses == {200: 25, 429: 55}


async def test_a_budget_spent_on_one_instance_is_enforced_on_the_other(
    postgres_url: str, redis_url: str, redis_prefix: str, catalog: Path
) -> None:
    # Both instances cache the caller for a minute: a limit change reaches the other one through Redis.
    config = settings(postgres_url, redis_url, redis_prefix, catalog_path=catalog, auth_cache_ttl_seconds=60)
    async with running_api(config) as one, running_api(config) as two:
        jwt, _ = await _user_with_key(one)
        me = (await one.http.get("/api/v1/users/me", headers=jwt)).json()
        admin = await one.admin(f"root-{uuid.uuid4().hex[:8]}@example.com")
        await one.http.patch(f"/api/v1/admin/users/{me['id']}", json={"monthly_budget_usd": "0.00003"}, headers=admin)
        while (response := await _post(one, jwt, max_tokens=3)).status_code == 201:  # each holds ~8 micro-dollars
            pass
        assert_problem(response, 402, "budget_exceeded")
        assert_problem(await _eventually(two, jwt, 402), 402, "budget_exceeded")  # the other instance knows the spend
        await one.http.patch(f"/api/v1/admin/users/{me['id']}", json={"monthly_budget_usd": None}, headers=admin)
        assert (await _post(one, jwt)).status_code == 201
        assert (await _eventually(two, jwt, 201)).status_code == 201


async def test_fifty_concurrent_calls_on_two_instances_overshoot_a_budget_by_at_most_one_call(
    postgres_url: str, redis_url: str, redis_prefix: str, catalog: Path
) -> None:
    config = settings(postgres_url, redis_url, redis_prefix, catalog_path=catalog, auth_cache_ttl_seconds=60)
    async with running_api(config) as one, running_api(config) as two:
        jwt, key = await _user_with_key(one)
        me = (await one.http.get("/api/v1/users/me", headers=jwt)).json()
        admin = await one.admin(f"root-{uuid.uuid4().hex[:8]}@example.com")
        budget = 100  # micro-dollars: a call of at most 20 output tokens holds ~45, and costs a little less
        patch = {"monthly_budget_usd": "0.0001"}
        assert (await one.http.patch(f"/api/v1/admin/users/{me['id']}", json=patch, headers=admin)).status_code == 200
        body = {"model": "local", "max_tokens": 20, "messages": [{"role": "user", "content": "tell me a story"}]}

        async def call(api: Api) -> Any:
            return await api.http.post("/v1/chat/completions", json=body, headers=key)

        answers = await asyncio.gather(*(call(one if i % 2 else two) for i in range(50)))
        served = [a.json() for a in answers if a.status_code == 200]
        refused = [a for a in answers if a.status_code != 200]
        assert served
        assert all(a.status_code == 429 and a.json()["error"]["code"] == "insufficient_quota" for a in refused)
        spent = sum(u["prompt_tokens"] + 2 * u["completion_tokens"] for u in (a["usage"] for a in served))
        most_of_one_call = max(u["prompt_tokens"] + 2 * u["completion_tokens"] for u in (a["usage"] for a in served))
        assert spent <= budget + most_of_one_call  # before holds, all 50 were answered: 9.4 times the budget here


async def _eventually(api: Api, auth: dict[str, str], status: int) -> Any:
    """A message posted until it gets ``status`` (an invalidation crosses Redis in milliseconds), for up to 1 s."""
    for _ in range(50):
        response = await _post(api, auth)
        if response.status_code == status:
            break
        await asyncio.sleep(0.02)
    return response


async def test_a_key_revoked_on_one_instance_is_refused_at_once_by_the_other(
    postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    """Both instances cache the caller for a minute: the revocation reaches the other one through Redis, not the TTL."""
    config = settings(postgres_url, redis_url, redis_prefix, auth_cache_ttl_seconds=60)
    async with running_api(config) as one, running_api(config) as two:
        jwt, key = await _user_with_key(one)
        assert (await two.http.get("/v1/models", headers=key)).status_code == 200  # now in two's cache
        key_id = (await one.http.get("/api/v1/api-keys", headers=jwt)).json()["items"][0]["id"]
        assert (await one.http.delete(f"/api/v1/api-keys/{key_id}", headers=jwt)).status_code == 204
        for _ in range(100):
            refused = await two.http.get("/v1/models", headers=key)
            if refused.status_code == 401:
                break
            await asyncio.sleep(0.01)
        assert refused.status_code == 401


async def test_the_redis_cache_serves_an_answer_given_by_another_instance(
    postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    config = settings(postgres_url, redis_url, redis_prefix)
    async with running_api(config) as one, running_api(config) as two:
        jwt, _ = await _user_with_key(one)
        first = await _post(one, jwt, "same question", temperature=0)
        second = await _post(two, jwt, "same question", temperature=0)
        assert first.headers["x-switchboard-cache"] == "miss"
        assert second.headers["x-switchboard-cache"] == "hit"
        await two.app.state.container.usage_recorder().flush()
        await one.app.state.container.usage_recorder().flush()
        report = (await one.http.get("/api/v1/usage", headers=jwt)).json()["totals"]
        assert report["requests"] == 2
        assert report["cached_requests"] == 1


async def test_spend_is_counted_across_instances_and_a_lost_counter_is_seeded_again_from_the_ledger(
    postgres_url: str, redis_url: str, redis_prefix: str, catalog: Path
) -> None:
    config = settings(postgres_url, redis_url, redis_prefix, catalog_path=catalog)
    async with running_api(config) as one, running_api(config) as two:
        jwt, _ = await _user_with_key(one)
        spent = 0
        for api in (one, two, one):
            answer = await _post(api, jwt, "count me")
            assert answer.status_code == 201
            spent += cost(answer.json())
        budgets = (await two.http.get("/api/v1/usage", headers=jwt)).json()["budgets"]
        assert budgets[0]["spent_micros"] == spent
        for api in (one, two):
            await api.app.state.container.usage_recorder().flush()
        redis = one.app.state.container.redis()
        await redis.delete(*[key async for key in redis.scan_iter(match=redis_prefix + "spend:*")])
        reseeded = (await one.http.get("/api/v1/usage", headers=jwt)).json()
        assert reseeded["budgets"][0]["spent_micros"] == spent == reseeded["totals"]["cost_micros"]


DOWN = "redis://127.0.0.1:1/0"  # nothing listens there


async def test_redis_down_fail_open_serves_and_still_records(sqlite_url: str) -> None:
    config = make_settings(
        database_url=sqlite_url, redis_url=DOWN, redis_failure_mode="open", rate_limit_user_tpm=100, log_format="json"
    )
    with captured_logs() as logs:
        async with running_api(config) as api:
            jwt = await api.user(f"ada-{uuid.uuid4().hex[:8]}@example.com")
            assert (await api.http.get("/api/v1/models", headers=jwt)).status_code == 200
            posted = await _post(api, jwt, temperature=0)
            assert posted.status_code == 201
            assert posted.headers["x-switchboard-cache"] == "miss"
            assert "ratelimit" not in posted.headers
            await api.app.state.container.usage_recorder().flush()
            report = await api.http.get("/api/v1/usage", headers=jwt)
            assert report.status_code == 200  # spend read from the ledger instead of the counters
            assert report.json()["totals"]["requests"] == 1
    assert "unavailable" in logs.getvalue()  # the fail-open warning reached the log


async def test_redis_down_fail_closed_refuses_with_503(sqlite_url: str) -> None:
    config = make_settings(database_url=sqlite_url, redis_url=DOWN, redis_failure_mode="closed")
    async with running_api(config) as api:
        email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
        jwt = await api.signed_in(email)
        refused = await api.http.get("/api/v1/models", headers=jwt)
        body = assert_problem(refused, 503, "dependency_unavailable")
        assert "Redis" in body["detail"]
        assert refused.headers["retry-after"] == "1"
        log_in = await api.http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
        assert_problem(log_in, 503, "dependency_unavailable")  # no throttle, no log-in
        assert log_in.headers["retry-after"] == "1"
        assert (await api.http.get("/health/live")).status_code == 200
