"""A NUL character (U+0000) in any text a client sends is refused before anything runs: 422 problem+json on the
native API, 400 in the OpenAI or Anthropic shape under ``/v1``; text that merely spells ``\\u0000`` is accepted."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Api, assert_problem

pytestmark = pytest.mark.api


def assert_nul_refused(response: httpx.Response, where: list[str]) -> None:
    body = assert_problem(response, 422, "validation_error")
    assert "NUL" in body["detail"]
    assert body["errors"][0]["loc"] == where


async def test_nul_in_native_bodies_and_forms_is_refused(api: Api) -> None:
    register = await api.http.post(
        "/api/v1/auth/register", json={"email": "a\u0000b@example.com", "password": "a long passphrase"}
    )
    assert_nul_refused(register, ["body"])
    token = await api.http.post(
        "/api/v1/auth/token",
        content=b"username=a%00b@example.com&password=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_nul_refused(token, ["body"])
    ada = await api.user("ada@example.com")
    for path, body in (
        ("/api/v1/conversations", {"title": "a\u0000"}),
        ("/api/v1/conversations", {"system_prompt": "be\u0000kind"}),
        ("/api/v1/api-keys", {"name": "\u0015 \u0000"}),
    ):
        assert_nul_refused(await api.http.post(path, json=body, headers=ada), ["body"])
    raw = await api.http.post(
        "/api/v1/conversations", content=b'{"title": "a\x00"}', headers={**ada, "content-type": "application/json"}
    )
    assert_nul_refused(raw, ["body"])
    listed = (await api.http.get("/api/v1/conversations", headers=ada)).json()
    assert listed["items"] == []


async def test_a_message_with_nul_is_refused_and_the_conversation_unchanged(api: Api) -> None:
    ada = await api.user("ada@example.com")
    cid = (await api.http.post("/api/v1/conversations", json={}, headers=ada)).json()["id"]
    posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi\u0000"}, headers=ada)
    assert_nul_refused(posted, ["body"])
    assert (await api.http.get(f"/api/v1/conversations/{cid}", headers=ada)).json()["messages"] == []
    await api.app.state.container.usage_recorder().flush()
    usage = (await api.http.get("/api/v1/usage", headers=ada)).json()
    assert usage["totals"]["requests"] == 0


async def test_nul_in_query_strings_paths_and_headers_is_refused(api: Api) -> None:
    ada = await api.user("ada@example.com")
    assert_nul_refused(await api.http.get("/api/v1/conversations?cursor=a%00b", headers=ada), ["query"])
    assert_nul_refused(await api.http.get("/api/v1/usage?model=local%00", headers=ada), ["query"])
    assert_nul_refused(await api.http.get("/api/v1/conversations/a%00b", headers=ada), ["path"])
    header = await api.http.get("/api/v1/users/me", headers={**ada, "idempotency-key": "a\x00b"})
    assert_nul_refused(header, ["header", "idempotency-key"])


async def test_text_that_only_spells_the_escape_is_accepted(api: Api) -> None:
    ada = await api.user("ada@example.com")
    spelled = await api.http.post(
        "/api/v1/conversations",
        content=b'{"title": "C string end: \\\\u0000"}',
        headers={**ada, "content-type": "application/json"},
    )
    assert spelled.status_code == 201, spelled.text
    assert spelled.json()["title"] == "C string end: \\u0000"
    form = await api.http.post("/api/v1/auth/token", data={"username": "ada@example.com", "password": "100%00 wrong"})
    assert form.status_code == 401  # "%00" typed by a person arrives encoded as %2500: not a NUL


async def test_nul_under_v1_is_a_400_in_each_apis_shape(api: Api) -> None:
    ada = await api.user("ada@example.com")
    key = (await api.http.post("/api/v1/api-keys", json={"name": "k"}, headers=ada)).json()["key"]
    auth = {"Authorization": f"Bearer {key}"}
    messages = [{"role": "user", "content": "hi\u0000"}]
    openai = await api.http.post("/v1/chat/completions", json={"model": "local", "messages": messages}, headers=auth)
    assert openai.status_code == 400, openai.text
    assert openai.json()["error"]["type"] == "invalid_request_error"
    assert "NUL" in openai.json()["error"]["message"]
    anthropic = await api.http.post(
        "/v1/messages", json={"model": "local", "max_tokens": 5, "messages": messages}, headers=auth
    )
    assert anthropic.status_code == 400, anthropic.text
    assert anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "invalid_request_error"
    model = await api.http.get("/v1/models/local%00", headers=auth)
    assert model.status_code == 400
    header = await api.http.get("/v1/models", headers={**auth, "anthropic-version": "2023\x0006-01"})
    assert header.status_code == 400
    assert header.json()["type"] == "error"
    await api.app.state.container.usage_recorder().flush()
    usage = (await api.http.get("/api/v1/usage", headers=ada)).json()
    assert usage["totals"]["requests"] == 0
