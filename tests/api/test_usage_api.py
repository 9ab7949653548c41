"""Usage, budgets, rate limits and the response cache through the HTTP API, on the embedded defaults."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Api, assert_problem, make_settings, running_api

pytestmark = pytest.mark.api

PRICED_CATALOG = """
default_model = "local"

[models.local]
provider = "local"
upstream_model = "local-echo"
input_usd_per_mtok = 1.0      # one micro-dollar per input token
output_usd_per_mtok = 2.0     # two per output token
"""

ApiFactory = Callable[..., AbstractAsyncContextManager[Api]]


@pytest.fixture
def priced(tmp_path: Path) -> ApiFactory:
    path = tmp_path / "models.toml"
    path.write_text(PRICED_CATALOG)
    return lambda **overrides: running_api(make_settings(catalog_path=path, **overrides))


@pytest.fixture
async def api(priced: ApiFactory) -> AsyncIterator[Api]:
    async with priced() as running:
        yield running


async def flushed(api: Api) -> None:
    await api.app.state.container.usage_recorder().flush()


async def conversation(api: Api, headers: dict[str, str]) -> str:
    response = await api.http.post("/api/v1/conversations", json={}, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def post(
    api: Api, auth: dict[str, str], content: str = "hello", *, extra: dict[str, str] | None = None, **body: Any
) -> Any:
    cid = await conversation(api, auth)
    return await api.http.post(
        f"/api/v1/conversations/{cid}/messages", json={"content": content, **body}, headers={**auth, **(extra or {})}
    )


async def key_for(api: Api, headers: dict[str, str], name: str = "laptop") -> tuple[str, dict[str, str]]:
    body = (
        await api.http.post("/api/v1/api-keys", json={"name": name, "scopes": ["chat", "usage"]}, headers=headers)
    ).json()
    return body["id"], {"Authorization": f"Bearer {body['key']}"}


async def test_every_call_is_in_the_callers_usage_report_with_its_cost(api: Api) -> None:
    ada = await api.user("ada@example.com")
    key_id, key = await key_for(api, ada)
    answers = [(await post(api, ada)).json(), (await post(api, key, "hello again")).json()]
    await flushed(api)
    report = (await api.http.get("/api/v1/usage", headers=ada)).json()
    usage = [a["usage"] for a in answers]
    expected_cost = sum(u["input_tokens"] + 2 * u["output_tokens"] for u in usage)
    assert report["totals"]["requests"] == 2
    assert report["totals"]["input_tokens"] == sum(u["input_tokens"] for u in usage)
    assert report["totals"]["cost_micros"] == expected_cost
    assert Decimal(report["totals"]["cost_usd"]) == Decimal(expected_cost) / 1_000_000

    by_key = (await api.http.get("/api/v1/usage", params={"group_by": "key"}, headers=ada)).json()["groups"]
    assert sorted((g["group"] or "session", g["requests"]) for g in by_key) == sorted([(key_id, 1), ("session", 1)])
    only_key = (await api.http.get("/api/v1/usage", params={"api_key_id": key_id}, headers=ada)).json()
    assert only_key["totals"]["requests"] == 1
    by_day = (await api.http.get("/api/v1/usage", params={"group_by": "day"}, headers=ada)).json()["groups"]
    assert len(by_day) == 1
    assert by_day[0]["requests"] == 2

    bob = await api.user("bob@example.com")
    assert (await api.http.get("/api/v1/usage", headers=bob)).json()["totals"]["requests"] == 0


async def test_the_admin_report_spans_users(api: Api) -> None:
    ada, bob = await api.user("ada@example.com"), await api.user("bob@example.com")
    await post(api, ada)
    await post(api, bob)
    await flushed(api)
    admin = await api.admin()
    by_user = (await api.http.get("/api/v1/admin/usage", params={"group_by": "user"}, headers=admin)).json()
    assert by_user["totals"]["requests"] == 2
    assert len(by_user["groups"]) == 2
    assert_problem(await api.http.get("/api/v1/admin/usage", headers=ada), 403, "forbidden")
    assert_problem(await api.http.get("/api/v1/usage", params={"group_by": "user"}, headers=ada), 422)


async def test_an_admin_sets_a_budget_and_a_call_over_it_is_refused_with_402(api: Api) -> None:
    ada = await api.user("ada@example.com")
    me = (await api.http.get("/api/v1/users/me", headers=ada)).json()
    admin = await api.admin()
    patched = await api.http.patch(
        f"/api/v1/admin/users/{me['id']}", json={"monthly_budget_usd": "0.00002"}, headers=admin
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["limits"]["monthly_budget_usd"] == "0.00002"
    # 20 micro-dollars last a few calls of at most 5 output tokens (each holds its prompt and 5 tokens' worth)
    while (response := await post(api, ada, max_tokens=5)).status_code == 201:
        pass
    body = assert_problem(response, 402, "budget_exceeded")
    assert "the user's monthly budget of 0.00002 USD" in body["detail"]
    too_long = await post(api, ada, max_tokens=1_000)  # what a 1,000-token answer may cost is more than is left
    assert "has no room for this call" in assert_problem(too_long, 402, "budget_exceeded")["detail"]
    budgets = (await api.http.get("/api/v1/usage", headers=ada)).json()["budgets"]
    [user_budget] = budgets
    assert user_budget["scope"] == "user"
    assert user_budget["monthly_budget_usd"] == "0.00002"
    assert float(user_budget["remaining_usd"]) < 0.00002

    cleared = await api.http.patch(f"/api/v1/admin/users/{me['id']}", json={"monthly_budget_usd": None}, headers=admin)
    assert cleared.json()["limits"]["monthly_budget_usd"] is None
    assert (await post(api, ada)).status_code == 201


async def test_a_key_budget_is_set_by_an_admin_never_by_its_owner(api: Api) -> None:
    ada = await api.user("ada@example.com")
    key_id, key = await key_for(api, ada)
    owner_try = await api.http.patch(f"/api/v1/admin/api-keys/{key_id}", json={"monthly_budget_usd": 100}, headers=ada)
    assert_problem(owner_try, 403, "forbidden")
    admin = await api.admin()
    patched = await api.http.patch(
        f"/api/v1/admin/api-keys/{key_id}", json={"monthly_budget_usd": 0, "requests_per_minute": 50}, headers=admin
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["limits"] == {"monthly_budget_usd": "0", "requests_per_minute": 50, "tokens_per_minute": None}
    assert_problem(await post(api, key), 402, "budget_exceeded")
    assert (await post(api, ada)).status_code == 201  # the owner's own budget is untouched
    listed = (await api.http.get("/api/v1/api-keys", headers=ada)).json()["items"]
    assert listed[0]["limits"]["monthly_budget_usd"] == "0"
    missing = await api.http.patch(
        "/api/v1/admin/api-keys/00000000-0000-0000-0000-000000000000", json={"tokens_per_minute": 5}, headers=admin
    )
    assert_problem(missing, 404)


async def test_requests_per_minute_give_429_with_retry_after_and_every_response_carries_the_limit_headers(
    priced: ApiFactory,
) -> None:
    async with priced(rate_limit_user_rpm=3, rate_limit_key_rpm=0) as api:
        ada = await api.user("ada@example.com")
        statuses = []
        for _ in range(4):
            response = await api.http.get("/api/v1/models", headers=ada)
            statuses.append(response.status_code)
            assert response.headers["ratelimit-policy"] == '"user";q=3;w=60'
        assert statuses == [200, 200, 200, 429]
        assert_problem(response, 429, "rate_limited")
        assert 1 <= int(response.headers["retry-after"]) <= 61
        assert response.headers["ratelimit"].startswith('"user";r=0;t=')
        other = await api.user("bob@example.com")
        fine = await api.http.get("/api/v1/conversations", headers=other)
        assert fine.status_code == 200
        assert fine.headers["ratelimit"].startswith('"user";r=2;t=')


async def test_an_admin_override_replaces_the_default_rate(priced: ApiFactory) -> None:
    async with priced(rate_limit_user_rpm=100, rate_limit_key_rpm=100) as api:
        ada = await api.user("ada@example.com")
        key_id, key = await key_for(api, ada)
        admin = await api.admin()
        await api.http.patch(f"/api/v1/admin/api-keys/{key_id}", json={"requests_per_minute": 1}, headers=admin)
        first = await api.http.get("/api/v1/models", headers=key)
        assert first.headers["ratelimit-policy"] == '"key";q=1;w=60, "user";q=100;w=60'
        assert_problem(await api.http.get("/api/v1/models", headers=key), 429, "rate_limited")


async def test_tokens_per_minute_refuse_a_model_call_with_429(priced: ApiFactory) -> None:
    async with priced(rate_limit_user_tpm=60) as api:
        ada = await api.user("ada@example.com")
        assert (await post(api, ada, max_tokens=20)).status_code == 201
        assert (await post(api, ada, max_tokens=20)).status_code == 201
        refused = await post(api, ada, max_tokens=50)
        assert_problem(refused, 429, "rate_limited")
        assert '"user-tokens";q=60;qu="tokens";w=60' in refused.headers["ratelimit-policy"]
        assert "retry-after" in refused.headers


async def test_a_deterministic_repeat_is_served_from_the_cache_for_free(api: Api) -> None:
    ada = await api.user("ada@example.com")
    first = await post(api, ada, temperature=0)
    second = await post(api, ada, temperature=0)
    assert first.headers["x-switchboard-cache"] == "miss"
    assert second.headers["x-switchboard-cache"] == "hit"
    assert second.json()["assistant_message"]["content"] == first.json()["assistant_message"]["content"]
    bypassed = await post(api, ada, temperature=0, extra={"Cache-Control": "no-store"})
    assert bypassed.headers["x-switchboard-cache"] == "bypass"
    assert (await post(api, ada, temperature=1)).headers["x-switchboard-cache"] == "bypass"
    opted_in = await post(api, ada, "warm", temperature=1, extra={"Cache-Control": "max-age=600"})
    assert opted_in.headers["x-switchboard-cache"] == "miss"
    await flushed(api)
    totals = (await api.http.get("/api/v1/usage", headers=ada)).json()["totals"]
    assert totals["requests"] == 5
    assert totals["cached_requests"] == 1

    bob = await api.user("bob@example.com")
    assert (await post(api, bob, temperature=0)).headers["x-switchboard-cache"] == "miss"  # never ada's answer


async def test_a_cached_answer_can_be_streamed(api: Api) -> None:
    ada = await api.user("ada@example.com")
    await post(api, ada, "stream me", temperature=0)
    cid = await conversation(api, ada)
    body = {"content": "stream me", "temperature": 0, "stream": True}
    async with api.http.stream("POST", f"/api/v1/conversations/{cid}/messages", json=body, headers=ada) as response:
        assert response.headers["x-switchboard-cache"] == "hit"
        raw = "".join([chunk async for chunk in response.aiter_text()])
    assert raw.count("event: delta") == 1
    assert "event: done" in raw
