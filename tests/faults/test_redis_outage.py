"""Redis goes away for a while and comes back, in both failure modes.

What may degrade, degrades as ``SWITCHBOARD_REDIS_FAILURE_MODE`` says: rate limits and budgets are off with a
warning (``open``) or the request is a 503 with Retry-After (``closed``); the response cache is skipped either way.
What must not degrade, does not: a bad API key or token is still 401, a revoked key still refused, a wrong password
never logs anyone in, log-in throttling stays on, and nothing is a 500. When Redis is back the service recovers
without a restart.

The shared Redis server is never stopped: the app reaches it through a loopback TCP proxy that the test cuts.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio.connection import parse_url

from infrastructure.observability.logging import captured_logs
from infrastructure.redis.login_throttle import keyed_digest
from tests.api.conftest import PASSWORD, Api, assert_problem, make_settings, running_api
from tests.fakes.tcp_proxy import TcpProxy
from tests.integration.test_usage_on_redis import PRICED_CATALOG

pytestmark = pytest.mark.integration

MODES = ["open", "closed"]
WRONG = "not the password at all"
OpenApi = Callable[..., AbstractAsyncContextManager[Api]]


@pytest.fixture
async def proxy(redis_server: str) -> AsyncIterator[TcpProxy]:
    target = parse_url(redis_server)
    async with TcpProxy(target.get("host", "127.0.0.1"), target.get("port", 6379)) as running:
        yield running


@pytest.fixture
def outage_api(proxy: TcpProxy, redis_server: str, redis_prefix: str) -> OpenApi:
    """``async with outage_api(mode, **settings) as api:`` the app on Redis through ``proxy``, in ``mode``."""
    database = parse_url(redis_server).get("db", 0)

    def build(mode: str, **overrides: Any) -> AbstractAsyncContextManager[Api]:
        settings = make_settings(
            redis_url=f"redis://127.0.0.1:{proxy.port}/{database}",
            redis_key_prefix=redis_prefix,
            redis_failure_mode=mode,
            log_format="json",
            **overrides,
        )
        return running_api(settings)

    return build


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tampered(headers: dict[str, str]) -> dict[str, str]:
    """The same token with one character of its signature changed (a middle one: all six of its bits count)."""
    head, payload, signature = headers["Authorization"].removeprefix("Bearer ").split(".")
    swapped = "B" if signature[10] == "A" else "A"
    return bearer(f"{head}.{payload}.{signature[:10]}{swapped}{signature[11:]}")


async def log_in(api: Api, email: str, password: str) -> httpx.Response:
    return await api.http.post("/api/v1/auth/token", data={"username": email, "password": password})


async def timed(call: Any) -> httpx.Response:
    started = time.monotonic()
    response: httpx.Response = await call
    assert time.monotonic() - started < 2, "an unreachable Redis must fail fast"
    assert response.status_code != 500, response.text
    return response


def assert_unavailable(response: httpx.Response) -> None:
    body = assert_problem(response, 503, "dependency_unavailable")
    assert int(response.headers["retry-after"]) >= 1
    for leak in ("redis.exceptions", "127.0.0.1", "Traceback", "Connection refused"):
        assert leak not in response.text, body


def warnings_of(logs: str, dependency: str) -> list[dict[str, Any]]:
    lines = [orjson.loads(line) for line in logs.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("level") == "warning" and line.get("dependency") == dependency]


async def key_for(api: Api, jwt: dict[str, str]) -> tuple[str, dict[str, str]]:
    created = await api.http.post("/api/v1/api-keys", json={"name": "k"}, headers=jwt)
    assert created.status_code == 201, created.text
    return created.json()["id"], bearer(created.json()["key"])


@pytest.mark.parametrize("mode", MODES)
async def test_authentication_never_fails_open(outage_api: OpenApi, proxy: TcpProxy, mode: str) -> None:
    async with outage_api(mode) as api:
        email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
        jwt = await api.user(email)
        _, key = await key_for(api, jwt)
        revoked_id, revoked = await key_for(api, jwt)
        assert (await api.http.delete(f"/api/v1/api-keys/{revoked_id}", headers=jwt)).status_code == 204

        await proxy.cut()
        assert (await api.http.get("/health/live")).status_code == 200
        ready = await timed(api.http.get("/health/ready"))
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"]["status"] == "fail"
        for headers in (bearer("sk-sb-" + "x" * 43), tampered(jwt), revoked, bearer("not-a-token")):
            assert_problem(await timed(api.http.get("/api/v1/models", headers=headers)), 401, "unauthenticated")
        wrong = await timed(log_in(api, email, WRONG))
        right = await timed(log_in(api, email, PASSWORD))
        served = await timed(api.http.get("/api/v1/models", headers=key))
        if mode == "open":
            assert_problem(wrong, 401, "unauthenticated")
            assert right.status_code == 200, right.text
            assert served.status_code == 200, served.text
            assert "ratelimit" not in served.headers  # served without limits
        else:
            for refused in (wrong, right, served):
                assert_unavailable(refused)

        await proxy.restore()
        assert (await api.http.get("/health/ready")).status_code == 200
        back = await api.http.get("/api/v1/models", headers=key)
        assert back.status_code == 200, back.text
        assert "ratelimit" in back.headers  # counted again
        assert (await log_in(api, email, PASSWORD)).status_code == 200
        assert_problem(await api.http.get("/api/v1/models", headers=revoked), 401)


@pytest.mark.parametrize("mode", MODES)
async def test_log_in_throttling_stays_on_through_an_outage(
    outage_api: OpenApi, proxy: TcpProxy, redis_prefix: str, mode: str
) -> None:
    with captured_logs() as logs:
        async with outage_api(mode, login_max_failures_per_account=3) as api:
            email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
            await api.register(email)
            assert_problem(await log_in(api, email, WRONG), 401)  # counted in Redis

            await proxy.cut()
            if mode == "closed":
                for password in (WRONG, PASSWORD):
                    assert_unavailable(await timed(log_in(api, email, password)))
            else:
                for _ in range(3):  # counted in this process meanwhile
                    assert_problem(await timed(log_in(api, email, WRONG)), 401)
                throttled = await timed(log_in(api, email, PASSWORD))
                assert_problem(throttled, 429, "rate_limited")
                assert 800 <= int(throttled.headers["retry-after"]) <= 900
                [warning] = warnings_of(logs.getvalue(), "login throttle")
                assert warning["logger"] == "switchboard.auth"
                assert "fail-open" in warning["consequence"]

            await proxy.restore()
            after = await log_in(api, email, PASSWORD)
            if mode == "closed":
                assert after.status_code == 200, after.text  # one failure in Redis: under the limit
            else:
                assert_problem(after, 429, "rate_limited")  # what the outage counted still applies
                assert_problem(await log_in(api, "x" + email, WRONG), 401)  # and failures reach Redis again
                secret = api.app.state.container.settings().signing_secret()
                digest = keyed_digest(secret, "account", "x" + email)
                assert await api.app.state.container.redis().get(f"{redis_prefix}login:account:{digest}") == b"1"


@pytest.mark.parametrize("mode", MODES)
async def test_the_rate_limiter_follows_the_failure_mode(outage_api: OpenApi, proxy: TcpProxy, mode: str) -> None:
    with captured_logs() as logs:
        async with outage_api(mode, rate_limit_key_rpm=2) as api:
            _, key = await key_for(api, await api.user(f"ada-{uuid.uuid4().hex[:8]}@example.com"))
            await proxy.cut()
            responses = [await timed(api.http.get("/api/v1/models", headers=key)) for _ in range(4)]
            completion = await timed(
                api.http.post(
                    "/v1/chat/completions",
                    json={"model": "local", "messages": [{"role": "user", "content": "hi"}]},
                    headers=key,
                )
            )
            if mode == "open":
                assert [r.status_code for r in responses] == [200] * 4  # over the limit of 2, and unlimited
                assert completion.status_code == 200, completion.text
                assert warnings_of(logs.getvalue(), "rate limiter")
            else:
                for response in responses:
                    assert_unavailable(response)
                assert completion.status_code == 503, completion.text  # in the OpenAI API's own error shape
                assert int(completion.headers["retry-after"]) >= 1

            await proxy.restore()
            statuses = [(await api.http.get("/api/v1/models", headers=key)).status_code for _ in range(3)]
            assert statuses == [200, 200, 429]


@pytest.mark.parametrize("mode", MODES)
async def test_budgets_and_the_cache_degrade_as_configured(
    outage_api: OpenApi, proxy: TcpProxy, mode: str, tmp_path: Path
) -> None:
    catalog = tmp_path / "models.toml"
    catalog.write_text(PRICED_CATALOG)
    # No rate limits, so that Redis is reached first by the budget check, not by the limiter.
    no_limits = {"rate_limit_key_rpm": 0, "rate_limit_user_rpm": 0, "rate_limit_user_tpm": 0}
    with captured_logs() as logs:
        async with outage_api(mode, catalog_path=catalog, **no_limits) as api:
            jwt = await api.user(f"ada-{uuid.uuid4().hex[:8]}@example.com")
            me = (await api.http.get("/api/v1/users/me", headers=jwt)).json()
            admin = await api.admin(f"root-{uuid.uuid4().hex[:8]}@example.com")

            async def ask(content: str = "same question") -> httpx.Response:
                """In a new conversation each time, so that the same content is the same request (a cache key)."""
                cid = (await api.http.post("/api/v1/conversations", json={}, headers=jwt)).json()["id"]
                body = {"content": content, "temperature": 0}
                return await api.http.post(f"/api/v1/conversations/{cid}/messages", json=body, headers=jwt)

            assert (await ask()).headers["x-switchboard-cache"] == "miss"
            assert (await ask()).headers["x-switchboard-cache"] == "hit"
            await api.http.patch(
                f"/api/v1/admin/users/{me['id']}", json={"monthly_budget_usd": "0.00001"}, headers=admin
            )
            assert_problem(await ask("something new"), 402, "budget_exceeded")

            await proxy.cut()
            during = await timed(ask())
            if mode == "open":
                assert during.status_code == 201, during.text  # the budget is not enforced, the cache not used
                assert during.headers["x-switchboard-cache"] == "miss"
                assert warnings_of(logs.getvalue(), "spend counter")
                assert warnings_of(logs.getvalue(), "response cache")
            else:
                assert_unavailable(during)
                assert during.json()["detail"].startswith("spend counter")
            usage = await timed(api.http.get("/api/v1/usage", headers=jwt))
            assert usage.status_code == 200, usage.text  # the spend is read from the ledger instead

            await proxy.restore()
            assert_problem(await ask("something newer"), 402, "budget_exceeded")
            await api.http.patch(f"/api/v1/admin/users/{me['id']}", json={"monthly_budget_usd": None}, headers=admin)
            assert (await ask()).headers["x-switchboard-cache"] == "hit"


async def test_a_blip_is_survived_by_the_pooled_connections(outage_api: OpenApi, proxy: TcpProxy) -> None:
    """Redis connections reset and Redis back at once: dead pooled connections are replaced, nothing is refused."""
    async with outage_api("closed") as api:
        _, key = await key_for(api, await api.user(f"ada-{uuid.uuid4().hex[:8]}@example.com"))
        assert (await api.http.get("/api/v1/models", headers=key)).status_code == 200
        await proxy.cut()
        await proxy.restore()
        statuses = [(await api.http.get("/api/v1/models", headers=key)).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]


async def test_closed_mode_still_answers_the_usage_report_from_the_ledger(outage_api: OpenApi, proxy: TcpProxy) -> None:
    async with outage_api("closed") as api:  # the default rate limits: every request goes to Redis first
        jwt = await api.user(f"ada-{uuid.uuid4().hex[:8]}@example.com")
        admin = await api.admin(f"root-{uuid.uuid4().hex[:8]}@example.com")
        await proxy.cut()
        assert_unavailable(await timed(api.http.get("/api/v1/models", headers=jwt)))
        usage = await timed(api.http.get("/api/v1/usage", headers=jwt))
        assert usage.status_code == 200, usage.text
        assert usage.json()["budgets"][0]["spent_usd"] is not None
        assert (await timed(api.http.get("/api/v1/admin/usage", headers=admin))).status_code == 200


async def test_the_invalidation_listener_warns_at_most_once_per_ten_seconds(
    outage_api: OpenApi, proxy: TcpProxy
) -> None:
    with captured_logs() as logs:
        async with outage_api("open") as api:
            await api.user(f"ada-{uuid.uuid4().hex[:8]}@example.com")
            await proxy.cut()
            await asyncio.sleep(4.5)  # the listener retries every second
            await proxy.restore()
    lines = [orjson.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    about_listening = [w for w in lines if w.get("level") == "warning" and "invalidations" in str(w.get("event"))]
    assert len(about_listening) == 1, about_listening
    assert about_listening[0]["dependency"] == "invalidation channel"
