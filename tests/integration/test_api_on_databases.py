"""The whole HTTP story on the real databases: SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import PASSWORD, make_settings, running_api

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


async def test_register_key_chat_and_isolation(database_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    async with running_api(make_settings(database_url=database_url)) as api:
        ada = await api.user(f"ada-{tag}@example.com")
        key = (await api.http.post("/api/v1/api-keys", json={"name": "k"}, headers=ada)).json()["key"]
        as_key = {"Authorization": f"Bearer {key}"}
        cid = (await api.http.post("/api/v1/conversations", json={"system_prompt": "Be kind."}, headers=as_key)).json()[
            "id"
        ]
        for text in ("first", "second"):
            posted = await api.http.post(
                f"/api/v1/conversations/{cid}/messages", json={"content": text}, headers=as_key
            )
            assert posted.status_code == 201, posted.text
        detail = (await api.http.get(f"/api/v1/conversations/{cid}", headers=as_key)).json()
        assert [m["content"] for m in detail["messages"] if m["role"] == "user"] == ["first", "second"]
        assert [m["role"] for m in detail["messages"]] == ["user", "assistant", "user", "assistant"]

        bob = await api.user(f"bob-{tag}@example.com")
        assert (await api.http.get(f"/api/v1/conversations/{cid}", headers=bob)).status_code == 404
        duplicate = await api.http.post(
            "/api/v1/auth/register", json={"email": f"ADA-{tag}@example.com", "password": PASSWORD}
        )
        assert duplicate.status_code == 409
        assert (await api.http.get("/health/ready")).status_code == 200


async def test_readiness_fails_when_the_database_is_unreachable() -> None:
    unreachable = "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"
    async with running_api(make_settings(database_url=unreachable)) as api:
        ready = await api.http.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"]["status"] == "fail"
        assert (await api.http.get("/health/live")).status_code == 200
