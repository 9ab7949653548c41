"""API2:2023 Broken authentication: tokens, passwords and API keys against an attacker.

JWT per RFC 8725 at the HTTP edge (unsigned, re-signed, tampered, expired, mistyped and rotated tokens), password
storage and log-in (argon2id at or above OWASP's minimum, throttling, no account enumeration by answer or time), and
API keys (256 random bits, stored hashed, shown once, compared in constant time, revocable).
"""

from __future__ import annotations

import base64
import hashlib
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from domain.auth import api_keys as api_key_material
from infrastructure.memory.unit_of_work import InMemoryUnitOfWorkFactory
from tests.api.conftest import PASSWORD, TEST_SECRET, Api, assert_problem
from tests.security.conftest import user_with_key

pytestmark = [pytest.mark.api, pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")]
ME = "/api/v1/users/me"


def _decode(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return _decode(header), _decode(payload)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _access_token(api: Api, email: str) -> str:
    await api.register(email)
    return str((await api.log_in(email))["access_token"])


async def test_forged_and_tampered_tokens_are_401(api: Api) -> None:
    token = await _access_token(api, "ada@example.com")
    header, claims = _segments(token)
    header = {k: v for k, v in header.items() if k != "alg"}  # each forgery says its own algorithm
    signature = token.rsplit(".", 1)[1]
    now = int(time.time())
    forgeries = {
        "alg none": f"{_b64(header | {'alg': 'none'})}.{_b64(claims)}.",
        "role escalated, old signature": ".".join(
            (_b64(header | {"alg": "HS256"}), _b64(claims | {"role": "admin"}), signature)
        ),
        "HS512 with the real secret": jwt.encode(claims, TEST_SECRET, algorithm="HS512", headers=header),
        "another secret": jwt.encode(claims, "x" * 48, algorithm="HS256", headers=header),
        "expired": jwt.encode(
            claims | {"exp": now - 60, "iat": now - 120, "nbf": now - 120}, TEST_SECRET, headers=header
        ),
        "not yet valid": jwt.encode(claims | {"nbf": now + 600}, TEST_SECRET, headers=header),
        "issued in the future": jwt.encode(claims | {"iat": now + 600}, TEST_SECRET, headers=header),
        "another audience": jwt.encode(claims | {"aud": "other-service"}, TEST_SECRET, headers=header),
        "another issuer": jwt.encode(claims | {"iss": "evil"}, TEST_SECRET, headers=header),
        "unknown kid": jwt.encode(claims, TEST_SECRET, headers=header | {"kid": "nope"}),
        "no exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, TEST_SECRET, headers=header),
    }
    assert (await api.http.get(ME, headers=_bearer(token))).status_code == 200
    for name, forged in forgeries.items():
        response = await api.http.get(ME, headers=_bearer(forged))
        assert response.status_code == 401, name
        assert_problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer"), name


async def test_a_refresh_token_is_not_an_access_token(api: Api) -> None:
    await api.register("ada@example.com")
    pair = await api.log_in("ada@example.com")
    assert_problem(await api.http.get(ME, headers=_bearer(pair["refresh_token"])), 401)
    refresh_with_access = await api.http.post("/api/v1/auth/refresh", json={"refresh_token": pair["access_token"]})
    assert_problem(refresh_with_access, 401)


async def test_signing_key_rotation_accepts_old_tokens_during_the_overlap_then_refuses_them(
    api_with: Callable[..., Any],
) -> None:
    old_secret, new_secret = "old-secret-" + "o" * 40, "new-secret-" + "n" * 40
    async with api_with(jwt_secret=old_secret) as before:
        old_token = await _access_token(before, "ada@example.com")
    overlap = [{"secret": old_secret, "not_after": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}]
    async with api_with(jwt_secret=new_secret, jwt_previous_keys=overlap) as during:
        await during.register("ada@example.com")  # a fresh in-memory database: the same account again
        new_token = str((await during.log_in("ada@example.com"))["access_token"])
        assert _segments(new_token)[0]["kid"] != _segments(old_token)[0]["kid"]
        # The old token names a user id this database does not have: 401 from the lookup, not from the signature.
        assert (await during.http.get(ME, headers=_bearer(new_token))).status_code == 200
        container = during.app.state.container
        assert container.tokens().decode_access(old_token).role.value == "member"
    ended = [{"secret": old_secret, "not_after": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}]
    async with api_with(jwt_secret=new_secret, jwt_previous_keys=ended) as after:
        assert_problem(await after.http.get(ME, headers=_bearer(old_token)), 401)


async def test_log_in_throttling_per_account_with_retry_after(api_with: Callable[..., Any]) -> None:
    async with api_with(login_max_failures_per_account=3) as api:
        await api.register("ada@example.com")
        for _ in range(3):
            wrong = await api.http.post(
                "/api/v1/auth/token", data={"username": "ada@example.com", "password": "x" * 12}
            )
            assert_problem(wrong, 401)
        throttled = await api.http.post(
            "/api/v1/auth/token", data={"username": "ada@example.com", "password": PASSWORD}
        )
        assert_problem(throttled, 429, "rate_limited")
        assert 800 <= int(throttled.headers["retry-after"]) <= 900
        for _ in range(3):  # an unknown account is throttled the same way: no enumeration through 429s
            await api.http.post("/api/v1/auth/token", data={"username": "nobody@example.com", "password": "x" * 12})
        unknown = await api.http.post("/api/v1/auth/token", data={"username": "nobody@example.com", "password": "x"})
        assert_problem(unknown, 429, "rate_limited")


async def test_log_in_throttling_per_client_address(api_with: Callable[..., Any]) -> None:
    async with api_with(login_max_failures_per_address=5) as api:
        for n in range(5):
            await api.http.post("/api/v1/auth/token", data={"username": f"u{n}@example.com", "password": "x" * 12})
        sprayed = await api.http.post("/api/v1/auth/token", data={"username": "u9@example.com", "password": "x" * 12})
        assert_problem(sprayed, 429, "rate_limited")


async def test_unknown_email_and_wrong_password_answer_alike_in_body_and_time(api_with: Callable[..., Any]) -> None:
    """Real argon2id cost (OWASP's minimum), so that a skipped hash would show as a time difference."""
    async with api_with(argon2_time_cost=2, argon2_memory_kib=19_456, login_max_failures_per_account=1000) as api:
        await api.register("ada@example.com")

        async def attempt(email: str) -> tuple[float, dict[str, Any], int]:
            started = time.perf_counter()
            response = await api.http.post("/api/v1/auth/token", data={"username": email, "password": "wrong" * 3})
            elapsed = time.perf_counter() - started
            body = {k: v for k, v in response.json().items() if k != "request_id"}
            return elapsed, body, response.status_code

        known = [await attempt("ada@example.com") for _ in range(7)]
        unknown = [await attempt(f"nobody{n}@example.com") for n in range(7)]
        assert {(status, json.dumps(body, sort_keys=True)) for _, body, status in known + unknown} == {
            (401, json.dumps(known[0][1], sort_keys=True))
        }
        ratio = statistics.median(t for t, _, _ in unknown) / statistics.median(t for t, _, _ in known)
        assert 0.5 < ratio < 2.0, ratio


async def test_passwords_are_stored_as_argon2id_at_or_above_owasp_minimum(api_with: Callable[..., Any]) -> None:
    async with api_with(argon2_time_cost=2, argon2_memory_kib=19_456, argon2_parallelism=1) as api:
        await api.register("ada@example.com")
        uow = api.app.state.container.uow()
        assert isinstance(uow, InMemoryUnitOfWorkFactory)
        (stored,) = uow.store.users.values()
        assert stored.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert PASSWORD not in stored.password_hash


async def test_api_keys_are_long_random_stored_hashed_and_shown_once(api: Api) -> None:
    jwt_headers = await api.user("ada@example.com")
    created = (await api.http.post("/api/v1/api-keys", json={"name": "k"}, headers=jwt_headers)).json()
    key = created["key"]
    secret = key.removeprefix(api_key_material.KEY_PREFIX)
    assert len(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))) >= 32
    listed = (await api.http.get("/api/v1/api-keys", headers=jwt_headers)).json()["items"]
    assert key not in json.dumps(listed)
    assert listed[0]["prefix"] == created["prefix"]
    assert len(created["prefix"]) < len(key) // 3
    store = api.app.state.container.uow().store
    (stored,) = store.api_keys.values()
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert secret not in repr(store.__dict__)


async def test_api_keys_are_compared_in_constant_time(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    _, key_headers = await user_with_key(api, "ada@example.com")
    compared: list[tuple[str, str]] = []
    real = api_key_material.hmac.compare_digest

    def recording(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(api_key_material.hmac, "compare_digest", recording)
    assert (await api.http.get(ME, headers=key_headers)).status_code == 200
    assert compared
    assert all(len(a) == len(b) == 64 for a, b in compared)


async def test_revoked_expired_and_guessed_api_keys_are_401(api: Api) -> None:
    jwt_headers, key_headers = await user_with_key(api, "ada@example.com")
    key_id = (await api.http.get("/api/v1/api-keys", headers=jwt_headers)).json()["items"][0]["id"]
    assert (await api.http.delete(f"/api/v1/api-keys/{key_id}", headers=jwt_headers)).status_code == 204
    assert_problem(await api.http.get(ME, headers=key_headers), 401)
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    expiring = (
        await api.http.post("/api/v1/api-keys", json={"name": "e", "expires_at": soon}, headers=jwt_headers)
    ).json()
    time.sleep(1.1)
    assert_problem(await api.http.get(ME, headers=_bearer(expiring["key"])), 401)
    for guess in ("sk-sb-" + "A" * 43, "sk-sb-' OR '1'='1", "sk-sb-", expiring["key"][:-1]):
        assert_problem(await api.http.get(ME, headers=_bearer(guess)), 401)


async def test_a_deactivated_users_credentials_all_stop_working(api: Api) -> None:
    admin = await api.admin()
    ada_jwt, ada_key = await user_with_key(api, "ada@example.com")
    ada_id = (await api.http.get(ME, headers=ada_jwt)).json()["id"]
    deactivated = await api.http.patch(f"/api/v1/admin/users/{ada_id}", json={"is_active": False}, headers=admin)
    assert deactivated.status_code == 200
    for headers in (ada_jwt, ada_key):
        assert_problem(await api.http.get(ME, headers=headers), 401)
    log_in = await api.http.post("/api/v1/auth/token", data={"username": "ada@example.com", "password": PASSWORD})
    assert_problem(log_in, 401)
    assert log_in.json()["detail"] == "incorrect email or password"


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Basic YWRhOnB3", "Bearer a.b.c", "Bearer ' OR 1=1 --", "Bearer " + "x" * 5000],
)
async def test_malformed_credentials_are_401(api: Api, authorization: str) -> None:
    assert_problem(await api.http.get(ME, headers={"Authorization": authorization}), 401)
