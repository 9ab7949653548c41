from __future__ import annotations

import pytest

from tests.api.conftest import Api, assert_problem

pytestmark = pytest.mark.api


async def test_key_is_shown_once_works_as_bearer_and_stops_working_when_revoked(api: Api) -> None:
    jwt = await api.user("ada@example.com")
    created = await api.http.post("/api/v1/api-keys", json={"name": "laptop"}, headers=jwt)
    assert created.status_code == 201
    body = created.json()
    key = body["key"]
    assert key.startswith("sk-sb-")
    assert key.startswith(body["prefix"])
    assert sorted(body["scopes"]) == ["chat", "models"]

    listed = await api.http.get("/api/v1/api-keys", headers=jwt)
    assert listed.status_code == 200
    assert key not in listed.text
    assert [k["prefix"] for k in listed.json()["items"]] == [body["prefix"]]

    as_key = {"Authorization": f"Bearer {key}"}
    conversation = await api.http.post("/api/v1/conversations", json={}, headers=as_key)
    assert conversation.status_code == 201
    # A chat-scoped key cannot manage keys.
    assert_problem(await api.http.get("/api/v1/api-keys", headers=as_key), 403, "forbidden")

    assert (await api.http.delete(f"/api/v1/api-keys/{body['id']}", headers=jwt)).status_code == 204
    assert_problem(await api.http.get("/api/v1/users/me", headers=as_key), 401)
    assert (await api.http.get("/api/v1/api-keys", headers=jwt)).json()["items"][0]["revoked_at"] is not None


async def test_someone_elses_key_is_404(api: Api) -> None:
    ada = await api.user("ada@example.com")
    bob = await api.user("bob@example.com")
    key_id = (await api.http.post("/api/v1/api-keys", json={"name": "k"}, headers=ada)).json()["id"]
    assert_problem(await api.http.delete(f"/api/v1/api-keys/{key_id}", headers=bob), 404, "not_found")
    assert (await api.http.get("/api/v1/api-keys", headers=bob)).json()["items"] == []


async def test_key_creation_is_validated(api: Api) -> None:
    jwt = await api.user("ada@example.com")
    cases = [
        {"name": ""},
        {"name": "k", "scopes": ["root"]},
        {"name": "k", "scopes": []},
        {"name": "k", "expires_at": "2020-01-01T00:00:00Z"},
        {"name": "k", "expires_at": "2030-01-01T00:00:00"},  # no timezone
        {"name": "k", "owner_id": "00000000-0000-0000-0000-000000000000"},
    ]
    for body in cases:
        response = await api.http.post("/api/v1/api-keys", json=body, headers=jwt)
        assert_problem(response, 422)
    assert_problem(await api.http.post("/api/v1/api-keys", json={"name": "k", "scopes": ["admin"]}, headers=jwt), 403)
    assert_problem(await api.http.delete("/api/v1/api-keys/not-a-uuid", headers=jwt), 422)


async def test_expired_key_is_refused(api: Api) -> None:
    jwt = await api.user("ada@example.com")
    created = await api.http.post(
        "/api/v1/api-keys", json={"name": "k", "expires_at": "2099-01-01T00:00:00+00:00"}, headers=jwt
    )
    assert created.status_code == 201
    assert created.json()["expires_at"].startswith("2099-01-01")
