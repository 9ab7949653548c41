"""API3:2023 Broken object property level authorization: no mass assignment, no excessive data exposure.

Request schemas forbid unknown properties, so a client cannot set its role, owner, activity or ids; responses carry
only what the caller may see (never password or key hashes, provider keys or base URLs).
"""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import PASSWORD, Api, assert_problem
from tests.security.conftest import conversation, user_with_key

pytestmark = pytest.mark.api
SECRET_FIELDS = ("password_hash", "key_hash", "api_key_env", "base_url", "secret", PASSWORD)


async def test_registration_cannot_choose_role_activity_or_id(api: Api) -> None:
    for extra in ({"role": "admin"}, {"is_active": False}, {"id": "00000000-0000-0000-0000-000000000001"}):
        body = {"email": "eve@example.com", "password": PASSWORD, **extra}
        assert_problem(await api.http.post("/api/v1/auth/register", json=body), 422, "validation_error")
    created = await api.register("eve@example.com")
    assert created["role"] == "member"


async def test_conversation_fields_owned_by_the_server_cannot_be_written(api: Api) -> None:
    ada, _ = await user_with_key(api, "ada@example.com")
    bob, _ = await user_with_key(api, "bob@example.com")
    bob_id = (await api.http.get("/api/v1/users/me", headers=bob)).json()["id"]
    cid = await conversation(api, ada)
    for extra in ({"owner_id": bob_id}, {"id": bob_id}, {"created_at": "2000-01-01T00:00:00Z"}):
        assert_problem(await api.http.post("/api/v1/conversations", json=extra, headers=ada), 422)
        assert_problem(await api.http.patch(f"/api/v1/conversations/{cid}", json=extra, headers=ada), 422)
    forged_turn = {"content": "hi", "role": "system"}
    assert_problem(await api.http.post(f"/api/v1/conversations/{cid}/messages", json=forged_turn, headers=ada), 422)
    assert (await api.http.get("/api/v1/conversations", headers=bob)).json()["items"] == []


async def test_a_member_cannot_grant_itself_admin_through_a_key_or_the_admin_route(api: Api) -> None:
    jwt, _ = await user_with_key(api, "eve@example.com")
    me = (await api.http.get("/api/v1/users/me", headers=jwt)).json()
    admin_key = await api.http.post("/api/v1/api-keys", json={"name": "x", "scopes": ["admin"]}, headers=jwt)
    assert_problem(admin_key, 403, "forbidden")
    promote = await api.http.patch(f"/api/v1/admin/users/{me['id']}", json={"role": "admin"}, headers=jwt)
    assert_problem(promote, 403, "forbidden")
    assert (await api.http.get("/api/v1/users/me", headers=jwt)).json()["role"] == "member"


async def test_admin_updates_accept_only_role_and_activity(api: Api) -> None:
    admin = await api.admin()
    user = await api.register("ada@example.com")
    for extra in ({"password_hash": "x"}, {"email": "other@example.com"}, {"id": user["id"]}):
        assert_problem(await api.http.patch(f"/api/v1/admin/users/{user['id']}", json=extra, headers=admin), 422)


async def test_no_response_exposes_secrets_or_internals(api: Api) -> None:
    admin = await api.admin()
    jwt, key = await user_with_key(api, "ada@example.com")
    cid = await conversation(api, key, system_prompt="be brief")
    await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=key)
    bodies = [
        (await api.http.get("/api/v1/users/me", headers=jwt)).text,
        (await api.http.get("/api/v1/api-keys", headers=jwt)).text,
        (await api.http.get("/api/v1/admin/users", headers=admin)).text,
        (await api.http.get("/api/v1/models", headers=key)).text,
        (await api.http.get(f"/api/v1/conversations/{cid}", headers=key)).text,
        (await api.http.get("/api/v1/conversations", headers=key)).text,
    ]
    for body in bodies:
        for field in SECRET_FIELDS:
            assert field not in body, (field, body)
    user_fields = set(json.loads(bodies[0]))
    assert user_fields == {"id", "email", "role", "is_active", "created_at", "updated_at", "limits"}
