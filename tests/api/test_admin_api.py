from __future__ import annotations

import pytest

from tests.api.conftest import Api, assert_problem

pytestmark = pytest.mark.api


async def test_members_get_403_on_admin_routes(api: Api) -> None:
    ada = await api.user("ada@example.com")
    me = (await api.http.get("/api/v1/users/me", headers=ada)).json()
    assert_problem(await api.http.get("/api/v1/admin/users", headers=ada), 403, "forbidden")
    assert_problem(await api.http.patch(f"/api/v1/admin/users/{me['id']}", json={"role": "admin"}, headers=ada), 403)


async def test_admin_lists_promotes_and_deactivates(api: Api) -> None:
    root = await api.admin()
    ada = await api.user("ada@example.com")
    ada_id = (await api.http.get("/api/v1/users/me", headers=ada)).json()["id"]
    listed = (await api.http.get("/api/v1/admin/users", headers=root)).json()
    assert listed["total"] == 2
    assert {u["email"] for u in listed["items"]} == {"root@example.com", "ada@example.com"}

    promoted = await api.http.patch(f"/api/v1/admin/users/{ada_id}", json={"role": "admin"}, headers=root)
    assert promoted.json()["role"] == "admin"
    assert (await api.http.get("/api/v1/admin/users", headers=ada)).status_code == 200

    off = await api.http.patch(f"/api/v1/admin/users/{ada_id}", json={"is_active": False}, headers=root)
    assert off.json()["is_active"] is False
    assert_problem(await api.http.get("/api/v1/users/me", headers=ada), 401)


async def test_admin_update_validation(api: Api) -> None:
    root = await api.admin()
    me = (await api.http.get("/api/v1/users/me", headers=root)).json()
    missing = "/api/v1/admin/users/0190a0a0-0000-7000-8000-000000000000"
    assert_problem(await api.http.patch(missing, json={"role": "admin"}, headers=root), 404)
    assert_problem(await api.http.patch(f"/api/v1/admin/users/{me['id']}", json={"role": "god"}, headers=root), 422)
    assert_problem(await api.http.patch(f"/api/v1/admin/users/{me['id']}", json={"email": "x@y.z"}, headers=root), 422)
    assert_problem(await api.http.patch(f"/api/v1/admin/users/{me['id']}", json={"role": "member"}, headers=root), 422)
