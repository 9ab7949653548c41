from __future__ import annotations

import pytest

from tests.api.conftest import Api, assert_problem

pytestmark = pytest.mark.api


async def test_conversation_lifecycle(api: Api) -> None:
    ada = await api.user("ada@example.com")
    created = await api.http.post(
        "/api/v1/conversations", json={"title": "Plans", "system_prompt": "Be brief."}, headers=ada
    )
    assert created.status_code == 201
    conversation = created.json()
    assert conversation["model"] == "local"
    cid = conversation["id"]

    posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "Hello there"}, headers=ada)
    assert posted.status_code == 201, posted.text
    answer = posted.json()
    assert answer["user_message"]["content"] == "Hello there"
    assert "Hello there" in answer["assistant_message"]["content"]
    assert answer["assistant_message"]["status"] == "complete"
    assert answer["usage"]["total_tokens"] == answer["usage"]["input_tokens"] + answer["usage"]["output_tokens"]
    assert answer["served_by"] == {
        "model": "local",
        "provider": "local",
        "upstream_model": "local-echo",
        "variant": None,
        "fallbacks": [],
    }

    detail = (await api.http.get(f"/api/v1/conversations/{cid}", headers=ada)).json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]

    patched = await api.http.patch(f"/api/v1/conversations/{cid}", json={"title": "Renamed"}, headers=ada)
    assert patched.json()["title"] == "Renamed"
    assert patched.json()["system_prompt"] == "Be brief."
    cleared = await api.http.patch(f"/api/v1/conversations/{cid}", json={"system_prompt": None}, headers=ada)
    assert cleared.json()["system_prompt"] is None

    assert (await api.http.delete(f"/api/v1/conversations/{cid}", headers=ada)).status_code == 204
    assert_problem(await api.http.get(f"/api/v1/conversations/{cid}", headers=ada), 404)


async def test_pagination_with_cursor(api: Api) -> None:
    ada = await api.user("ada@example.com")
    ids = [
        (await api.http.post("/api/v1/conversations", json={"title": f"c{i}"}, headers=ada)).json()["id"]
        for i in range(5)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.http.get("/api/v1/conversations", params=params, headers=ada)).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert_problem(await api.http.get("/api/v1/conversations", params={"cursor": "garbage"}, headers=ada), 422)
    assert_problem(await api.http.get("/api/v1/conversations", params={"limit": 0}, headers=ada), 422)
    assert_problem(await api.http.get("/api/v1/conversations", params={"limit": 101}, headers=ada), 422)


async def test_another_users_conversation_is_404_everywhere(api: Api) -> None:
    ada = await api.user("ada@example.com")
    bob = await api.user("bob@example.com")
    cid = (await api.http.post("/api/v1/conversations", json={}, headers=ada)).json()["id"]
    path = f"/api/v1/conversations/{cid}"
    assert_problem(await api.http.get(path, headers=bob), 404)
    assert_problem(await api.http.patch(path, json={"title": "x"}, headers=bob), 404)
    assert_problem(await api.http.delete(path, headers=bob), 404)
    assert_problem(await api.http.post(f"{path}/messages", json={"content": "hi"}, headers=bob), 404)
    assert (await api.http.get("/api/v1/conversations", headers=bob)).json()["items"] == []
    assert (await api.http.get(path, headers=ada)).status_code == 200


async def test_bad_conversation_input(api: Api) -> None:
    ada = await api.user("ada@example.com")
    assert_problem(await api.http.post("/api/v1/conversations", json={"model": "gpt-99"}, headers=ada), 422)
    assert_problem(await api.http.post("/api/v1/conversations", json={"title": "x" * 201}, headers=ada), 422)
    assert_problem(await api.http.post("/api/v1/conversations", json={"colour": "red"}, headers=ada), 422)
    cid = (await api.http.post("/api/v1/conversations", json={}, headers=ada)).json()["id"]
    messages = f"/api/v1/conversations/{cid}/messages"
    for body in ({}, {"content": ""}, {"content": 5}, {"content": "hi", "temperature": 3}, {"content": "   "}):
        assert_problem(await api.http.post(messages, json=body, headers=ada), 422)
    assert_problem(await api.http.get("/api/v1/conversations/123", headers=ada), 422)


async def test_models_are_listed(api: Api) -> None:
    ada = await api.user("ada@example.com")
    response = await api.http.get("/api/v1/models", headers=ada)
    assert response.status_code == 200
    body = response.json()
    assert body["default_model"] == "local"
    assert [(m["name"], m["kind"]) for m in body["items"]] == [("local", "chat"), ("local-embed", "embedding")]
    assert body["items"][1]["dimensions"] == 256
    assert_problem(await api.http.get("/api/v1/models"), 401)
