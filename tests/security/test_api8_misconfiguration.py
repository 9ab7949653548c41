"""API8:2023 Security misconfiguration: safe headers on every response, CORS only for configured origins, docs that
can be switched off, HSTS when served over TLS, and errors that never reveal stack traces, SQL or class names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dependency_injector import providers

from tests.api.conftest import Api, assert_problem

pytestmark = pytest.mark.api
EVIL = "https://evil.example"
GOOD = "https://app.example"


def _assert_safe_headers(headers: Any, *, api: bool = True) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    if api:
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "default-src 'none'" in headers["content-security-policy"]
    assert "server" not in headers
    assert "x-powered-by" not in headers


async def test_every_kind_of_response_carries_the_safe_headers(api_with: Callable[..., Any]) -> None:
    async with api_with(max_body_bytes=1024) as api:
        headers = await api.user("ada@example.com")
        cid = (await api.http.post("/api/v1/conversations", json={}, headers=headers)).json()["id"]
        stream = await api.http.post(
            f"/api/v1/conversations/{cid}/messages", json={"content": "hi", "stream": True}, headers=headers
        )
        responses = [
            await api.http.get("/health/live"),
            await api.http.get("/api/v1/users/me", headers=headers),
            await api.http.get("/api/v1/users/me"),  # 401
            await api.http.get("/nowhere"),  # 404
            await api.http.post("/api/v1/auth/register", content=b"x" * 2048),  # 413 from the middleware
            stream,
        ]
        for response in responses:
            _assert_safe_headers(response.headers)
            assert "strict-transport-security" not in response.headers  # not behind TLS: HSTS would be a lie


async def test_hsts_when_served_over_tls(api_with: Callable[..., Any]) -> None:
    async with api_with(behind_tls=True) as api:
        for response in (await api.http.get("/health/live"), await api.http.get("/nowhere")):
            assert response.headers["strict-transport-security"].startswith("max-age=63072000")


async def test_the_docs_keep_a_policy_they_can_work_with(api: Api) -> None:
    docs = await api.http.get("/docs")
    assert docs.status_code == 200
    assert "content-security-policy" not in docs.headers  # Swagger UI needs its scripts; the API needs none
    _assert_safe_headers(docs.headers, api=False)


async def test_cors_is_off_unless_configured(api: Api) -> None:
    preflight = await api.http.options(
        "/api/v1/users/me", headers={"Origin": EVIL, "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    simple = await api.http.get("/health/live", headers={"Origin": EVIL})
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_allows_only_configured_origins_and_never_credentials(api_with: Callable[..., Any]) -> None:
    async with api_with(cors_origins=[GOOD]) as api:
        request = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
        good = await api.http.options("/api/v1/conversations", headers={"Origin": GOOD, **request})
        assert good.headers["access-control-allow-origin"] == GOOD
        assert "access-control-allow-credentials" not in good.headers
        evil = await api.http.options("/api/v1/conversations", headers={"Origin": EVIL, **request})
        assert evil.headers.get("access-control-allow-origin") != EVIL
        assert (await api.http.get("/health/live", headers={"Origin": EVIL})).headers.get(
            "access-control-allow-origin"
        ) is None


async def test_docs_and_schema_can_be_switched_off(api_with: Callable[..., Any]) -> None:
    async with api_with(docs_enabled=False) as api:
        for path in ("/docs", "/openapi.json", "/redoc", "/docs/oauth2-redirect"):
            assert_problem(await api.http.get(path), 404)


@pytest.mark.parametrize(
    "failure",
    [
        RuntimeError("boom at /srv/app/secret.py line 3"),
        KeyError("SELECT password_hash FROM users WHERE email = 'x'"),
        ValueError("<class 'sqlalchemy.exc.ProgrammingError'> Traceback (most recent call last)"),
    ],
)
async def test_unexpected_errors_reveal_nothing(api: Api, failure: Exception) -> None:
    class Exploding:
        async def execute(self, *_: object) -> None:
            raise failure

    headers = await api.user("ada@example.com")
    with api.app.state.container.list_conversations.override(providers.Object(Exploding())):
        response = await api.http.get("/api/v1/conversations", headers=headers)
    body = assert_problem(response, 500, "internal_error")
    assert body["detail"] == "an unexpected error occurred"
    for leak in ("Traceback", "SELECT", "sqlalchemy", "secret.py", "RuntimeError", "KeyError", "ValueError", "class"):
        assert leak not in response.text
    _assert_safe_headers(response.headers)


async def test_validation_errors_echo_no_input(api: Api) -> None:
    secret = "my-secret-password-value"
    response = await api.http.post("/api/v1/auth/register", json={"email": 42, "password": [secret]})
    assert_problem(response, 422, "validation_error")
    assert secret not in response.text


async def test_production_refuses_unsafe_configuration() -> None:
    from infrastructure.settings import SettingsError, load_settings

    with pytest.raises(SettingsError):
        load_settings(_env_file=None, environment="production")  # no JWT secret
    with pytest.raises(SettingsError):
        load_settings(_env_file=None, environment="production", jwt_secret="s" * 40, argon2_memory_kib=1024)


PRODUCTION = {"environment": "production", "argon2_time_cost": 2, "argon2_memory_kib": 19_456}
METRICS_TOKEN = "scrape-" + "m" * 24


async def test_production_hides_the_docs_and_closes_metrics_by_default(api_with: Callable[..., Any]) -> None:
    async with api_with(**PRODUCTION) as api:
        for path in ("/docs", "/openapi.json"):
            assert_problem(await api.http.get(path), 404)
        metrics = await api.http.get("/metrics")
        assert_problem(metrics, 401, "unauthenticated")
        assert "SWITCHBOARD_METRICS_TOKEN" in metrics.json()["detail"]
    async with api_with(**PRODUCTION, metrics_token=METRICS_TOKEN, docs_enabled=True) as api:
        assert (await api.http.get("/openapi.json")).status_code == 200
        assert_problem(await api.http.get("/metrics"), 401)
        scraped = await api.http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert scraped.status_code == 200
    async with api_with(**PRODUCTION, metrics_public=True) as api:  # the explicit opt-out
        assert (await api.http.get("/metrics")).status_code == 200


async def test_development_keeps_docs_and_open_metrics(api_with: Callable[..., Any]) -> None:
    async with api_with(environment="development") as api:
        assert (await api.http.get("/openapi.json")).status_code == 200
        assert (await api.http.get("/metrics")).status_code == 200
