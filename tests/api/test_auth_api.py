from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.api.conftest import PASSWORD, Api, assert_problem

pytestmark = pytest.mark.api


async def test_register_then_log_in_then_me(api: Api) -> None:
    user = await api.register("Ada@Example.com")
    assert user["email"] == "ada@example.com"
    assert user["role"] == "member"
    assert "password" not in str(user)
    assert "hash" not in str(user)
    tokens = await api.log_in("ada@example.com")
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    me = await api.http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]


async def test_register_refuses_a_role_duplicates_and_weak_passwords(api: Api) -> None:
    body = {"email": "ada@example.com", "password": PASSWORD, "role": "admin"}
    assert_problem(await api.http.post("/api/v1/auth/register", json=body), 422, "validation_error")
    await api.register("ada@example.com")
    duplicate = await api.http.post("/api/v1/auth/register", json={"email": "ADA@example.com", "password": PASSWORD})
    assert_problem(duplicate, 409, "conflict")
    weak = await api.http.post("/api/v1/auth/register", json={"email": "bob@example.com", "password": "short"})
    assert_problem(weak, 422, "validation_error")  # the OpenAPI document states the policy
    bad_email = await api.http.post("/api/v1/auth/register", json={"email": "not-an-email", "password": PASSWORD})
    assert_problem(bad_email, 422)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("password1234", "breached passwords"),
        ("123456789012", "sequence"),
        ("grace.hopper@example.com", "email"),
        ("Grace.Hopper", "email"),
    ],
)
async def test_register_refuses_common_sequential_and_email_passwords(api: Api, password: str, reason: str) -> None:
    """NIST SP 800-63B: no password from a breach list, no run or repetition, not the email (nor its local part)."""
    body = {"email": "grace.hopper@example.com", "password": password}
    refused = assert_problem(await api.http.post("/api/v1/auth/register", json=body), 422, "weak_password")
    assert reason in refused["detail"]
    assert password not in refused["detail"]
    assert (
        await api.http.post("/api/v1/auth/token", data={"username": body["email"], "password": password})
    ).status_code == 401


async def test_a_logged_out_access_token_is_refused_at_once(api_with: Any) -> None:
    async with api_with(auth_cache_ttl_seconds=60) as api:  # cached for a minute: the log-out still wins
        await api.register("ada@example.com")
        tokens = await api.log_in("ada@example.com")
        other = await api.log_in("ada@example.com")
        me = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await api.http.get("/api/v1/users/me", headers=me)).status_code == 200
        logout = await api.http.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        assert logout.status_code == 204
        assert_problem(await api.http.get("/api/v1/users/me", headers=me), 401, "unauthenticated")
        assert (await api.http.get("/v1/models", headers=me)).status_code == 401  # in the OpenAI error shape
        still = {"Authorization": f"Bearer {other['access_token']}"}
        assert (await api.http.get("/api/v1/users/me", headers=still)).status_code == 200


async def test_wrong_password_and_unknown_user_answer_alike(api: Api) -> None:
    await api.register("ada@example.com")
    wrong = await api.http.post("/api/v1/auth/token", data={"username": "ada@example.com", "password": "x" * 12})
    unknown = await api.http.post("/api/v1/auth/token", data={"username": "who@example.com", "password": PASSWORD})
    for response in (wrong, unknown):
        assert_problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_refresh_rotates_and_a_reused_token_kills_the_session(api: Api) -> None:
    await api.register("ada@example.com")
    first = await api.log_in("ada@example.com")
    rotated = await api.http.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    reused = await api.http.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_problem(reused, 401)
    after = await api.http.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert_problem(after, 401)


async def test_logout_revokes_the_refresh_token(api: Api) -> None:
    await api.register("ada@example.com")
    tokens = await api.log_in("ada@example.com")
    out = await api.http.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert out.status_code == 204
    again = await api.http.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 204
    assert_problem(await api.http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer not-a-token", "Basic YWRhOnB3", "Bearer sk-sb-unknown", "Bearer eyJhbGciOiJub25lIn0.e30."],
)
async def test_missing_or_bad_credentials_are_401_with_challenge(api: Api, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = await api.http.get("/api/v1/users/me", headers=headers)
    assert_problem(response, 401, "unauthenticated")
    assert "www-authenticate" in response.headers


async def test_refresh_token_is_not_accepted_as_access_token(api: Api) -> None:
    await api.register("ada@example.com")
    tokens = await api.log_in("ada@example.com")
    response = await api.http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert_problem(response, 401)


async def test_token_endpoint_validates_its_form(api: Api) -> None:
    assert_problem(await api.http.post("/api/v1/auth/token", data={"username": "a@example.com"}), 422)
    assert_problem(await api.http.post("/api/v1/auth/token", json={"username": "a", "password": "b"}), 422)


# --- log-in throttling per client, behind proxies ---------------------------------------------------------------

PROXY = "10.0.0.1"


@asynccontextmanager
async def from_peer(api: Api, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose TCP peer address, as the app sees it, is ``peer``."""
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def wrong_password(client: httpx.AsyncClient, email: str, forwarded_for: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await client.post("/api/v1/auth/token", data={"username": email, "password": "x" * 12}, headers=headers)


async def test_behind_a_trusted_proxy_log_ins_are_throttled_per_forwarded_client(api_with: Any) -> None:
    async with (
        api_with(trusted_proxies=[PROXY], login_max_failures_per_address=3) as api,
        from_peer(api, PROXY) as proxy,
    ):
        await api.register("ada@example.com")
        for n in range(3):  # one client spraying accounts, through the proxy
            assert_problem(await wrong_password(proxy, f"u{n}@example.com", "198.51.100.7"), 401)
        assert_problem(await wrong_password(proxy, "u9@example.com", "198.51.100.7"), 429, "rate_limited")
        # Another client through the same proxy is not paying for it: the count is not the proxy's.
        assert_problem(await wrong_password(proxy, "u9@example.com", "198.51.100.8"), 401)
        # A forged hop in front of the client's does not change who the proxy says the client is.
        forged = await wrong_password(proxy, "u9@example.com", "192.0.2.1, 198.51.100.7")
        assert_problem(forged, 429, "rate_limited")
        ok = await proxy.post(
            "/api/v1/auth/token",
            data={"username": "ada@example.com", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.8"},
        )
        assert ok.status_code == 200, ok.text


async def test_from_an_untrusted_peer_a_forged_forwarded_for_does_not_evade_the_throttle(api_with: Any) -> None:
    async with (
        api_with(trusted_proxies=[PROXY], login_max_failures_per_address=3) as api,
        from_peer(api, "203.0.113.50") as attacker,
    ):
        for n in range(3):
            response = await wrong_password(attacker, f"u{n}@example.com", f"198.51.100.{n}")
            assert_problem(response, 401)
        for n in range(3, 6):  # a fresh forged address each time: still the same peer, still throttled
            response = await wrong_password(attacker, f"u{n}@example.com", f"198.51.100.{n}")
            assert_problem(response, 429, "rate_limited")
        async with from_peer(api, "203.0.113.51") as neighbour:  # the attacker's count is its own
            assert_problem(await wrong_password(neighbour, "u9@example.com"), 401)
