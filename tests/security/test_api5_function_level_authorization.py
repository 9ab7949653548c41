"""API5:2023 Broken function level authorization: administrative functions need the admin role, and an API key
never holds more than its scopes and its owner's current role allow."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import Api, assert_problem
from tests.security.conftest import conversation, user_with_key

pytestmark = pytest.mark.api


async def test_members_cannot_call_admin_functions(api: Api) -> None:
    member, member_key = await user_with_key(api, "ada@example.com")
    for headers in (member, member_key):
        assert_problem(await api.http.get("/api/v1/admin/users", headers=headers), 403, "forbidden")
        patch = await api.http.patch(f"/api/v1/admin/users/{uuid.uuid4()}", json={"role": "admin"}, headers=headers)
        assert_problem(patch, 403, "forbidden")


async def test_an_admins_key_without_the_admin_scope_is_not_admin(api: Api) -> None:
    admin = await api.admin()
    created = await api.http.post("/api/v1/api-keys", json={"name": "ci", "scopes": ["chat"]}, headers=admin)
    chat_only = {"Authorization": f"Bearer {created.json()['key']}"}
    assert_problem(await api.http.get("/api/v1/admin/users", headers=chat_only), 403)
    admin_key = await api.http.post("/api/v1/api-keys", json={"name": "ops", "scopes": ["admin"]}, headers=admin)
    admin_by_key = {"Authorization": f"Bearer {admin_key.json()['key']}"}
    assert (await api.http.get("/api/v1/admin/users", headers=admin_by_key)).status_code == 200


async def test_scopes_limit_what_a_key_can_do(api: Api) -> None:
    jwt, models_only = await user_with_key(api, "ada@example.com", scopes=["models"])
    assert (await api.http.get("/api/v1/models", headers=models_only)).status_code == 200
    assert_problem(await api.http.post("/api/v1/conversations", json={}, headers=models_only), 403)
    assert_problem(await api.http.get("/api/v1/conversations", headers=models_only), 403)
    assert_problem(await api.http.get("/api/v1/api-keys", headers=models_only), 403)
    assert_problem(await api.http.post("/api/v1/api-keys", json={"name": "more"}, headers=models_only), 403)
    cid = await conversation(api, jwt)
    post = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=models_only)
    assert_problem(post, 403)


async def test_a_key_cannot_mint_a_key_with_more_scopes(api: Api) -> None:
    _, keys_and_chat = await user_with_key(api, "ada@example.com", scopes=["keys", "chat"])
    wider = await api.http.post("/api/v1/api-keys", json={"name": "w", "scopes": ["models"]}, headers=keys_and_chat)
    assert_problem(wider, 403, "forbidden")
    same = await api.http.post("/api/v1/api-keys", json={"name": "s", "scopes": ["chat"]}, headers=keys_and_chat)
    assert same.status_code == 201


async def test_a_demoted_admin_loses_admin_at_once_even_with_live_credentials(api: Api) -> None:
    root = await api.admin("root@example.com")
    other = await api.admin("other@example.com")
    other_id = (await api.http.get("/api/v1/users/me", headers=other)).json()["id"]
    other_key = await api.http.post("/api/v1/api-keys", json={"name": "k", "scopes": ["admin"]}, headers=other)
    other_by_key = {"Authorization": f"Bearer {other_key.json()['key']}"}
    demoted = await api.http.patch(f"/api/v1/admin/users/{other_id}", json={"role": "member"}, headers=root)
    assert demoted.status_code == 200
    for headers in (other, other_by_key):  # the access token still says "admin": the stored role decides
        assert_problem(await api.http.get("/api/v1/admin/users", headers=headers), 403)


async def test_admins_cannot_demote_or_deactivate_themselves(api: Api) -> None:
    root = await api.admin()
    me = (await api.http.get("/api/v1/users/me", headers=root)).json()["id"]
    for change in ({"role": "member"}, {"is_active": False}):
        assert_problem(await api.http.patch(f"/api/v1/admin/users/{me}", json=change, headers=root), 422)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/v1/users/me"),
        ("DELETE", "/api/v1/admin/users"),
        ("TRACE", "/api/v1/models"),
        ("PUT", "/api/v1/conversations"),
    ],
)
async def test_undeclared_methods_are_405(api: Api, method: str, path: str) -> None:
    headers = await api.user("ada@example.com")
    assert_problem(await api.http.request(method, path, headers=headers), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/api-keys", "GET, POST"),
        ("PUT", "/api/v1/conversations/0190c9e4-0000-7000-8000-000000000000", "DELETE, GET, PATCH"),
        ("POST", "/api/v1/conversations/0190c9e4-0000-7000-8000-000000000000", "DELETE, GET, PATCH"),
        ("DELETE", "/api/v1/conversations", "GET, POST"),
        ("GET", "/api/v1/auth/register", "POST"),
    ],
)
async def test_405_lists_every_method_of_the_path(api: Api, method: str, path: str, allowed: str) -> None:
    headers = await api.user("ada@example.com")
    response = await api.http.request(method, path, headers=headers)
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allowed
