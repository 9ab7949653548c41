"""API6:2023 Unrestricted access to sensitive business flows: the flows that cost money or grant access cannot be
abused by repetition. Retried model calls are not paid twice, stolen refresh tokens burn their session, log-out is
final, and sign-up cannot take over an existing account."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.api.conftest import PASSWORD, Api, assert_problem
from tests.fakes import upstream as fake
from tests.fakes.upstream import FakeUpstream
from tests.security.conftest import conversation

pytestmark = pytest.mark.api


async def test_a_retried_model_call_is_answered_once_and_paid_once(
    api_on_upstream: Callable[..., Any], upstream: FakeUpstream
) -> None:
    async with api_on_upstream() as api:
        headers = await api.user("ada@example.com")
        cid = await conversation(api, headers, model="solo")
        url = f"/api/v1/conversations/{cid}/messages"
        keyed = {**headers, "Idempotency-Key": "checkout-1"}
        upstream.push(fake.delay(0.3))
        results = await asyncio.gather(*(api.http.post(url, json={"content": "hi"}, headers=keyed) for _ in range(5)))
        statuses = sorted(r.status_code for r in results)
        assert statuses.count(201) == 1
        assert set(statuses) <= {201, 409}
        retried = await api.http.post(url, json={"content": "hi"}, headers=keyed)
        assert retried.headers["idempotent-replayed"] == "true"
        assert len(upstream.requests_to("/v1/chat/completions")) == 1
        stored = (await api.http.get(f"/api/v1/conversations/{cid}", headers=headers)).json()["messages"]
        assert len(stored) == 2


async def test_a_stolen_refresh_token_replayed_after_use_burns_the_whole_session(api: Api) -> None:
    await api.register("ada@example.com")
    stolen = (await api.log_in("ada@example.com"))["refresh_token"]
    legit = await api.http.post("/api/v1/auth/refresh", json={"refresh_token": stolen})
    assert legit.status_code == 200
    assert_problem(await api.http.post("/api/v1/auth/refresh", json={"refresh_token": stolen}), 401)
    newer = legit.json()["refresh_token"]
    assert_problem(await api.http.post("/api/v1/auth/refresh", json={"refresh_token": newer}), 401)


async def test_concurrent_refreshes_of_one_token_mint_at_most_one_session(api: Api) -> None:
    await api.register("ada@example.com")
    token = (await api.log_in("ada@example.com"))["refresh_token"]
    results = await asyncio.gather(
        *(api.http.post("/api/v1/auth/refresh", json={"refresh_token": token}) for _ in range(5))
    )
    assert sum(r.status_code == 200 for r in results) <= 1


async def test_logging_out_ends_the_session(api: Api) -> None:
    await api.register("ada@example.com")
    pair = await api.log_in("ada@example.com")
    assert (
        await api.http.post("/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    ).status_code == 204
    assert_problem(await api.http.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}), 401)


async def test_sign_up_cannot_take_over_an_existing_account(api: Api) -> None:
    await api.register("ada@example.com")
    for variant in ("ADA@example.com", " ada@example.com ", "Ada@Example.Com"):
        again = await api.http.post("/api/v1/auth/register", json={"email": variant, "password": "another passphrase"})
        assert_problem(again, 409, "conflict")
    assert (await api.log_in("ada@example.com"))["access_token"]
    hijack = await api.http.post(
        "/api/v1/auth/token", data={"username": "ada@example.com", "password": "another passphrase"}
    )
    assert_problem(hijack, 401)
    assert PASSWORD not in hijack.text
