"""API1:2023 Broken object level authorization: one user can never reach another's objects by their ids.

Someone else's conversation or key answers exactly like one that does not exist (404, same body), whichever
credential (access token or API key) and whichever verb, including the SSE stream and forged page cursors.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api, assert_problem
from tests.security.conftest import conversation, user_with_key

pytestmark = pytest.mark.api


def _comparable(response: httpx.Response) -> tuple[int, dict[str, Any]]:
    body = response.json()
    return response.status_code, {k: v for k, v in body.items() if k not in ("request_id", "instance")}


async def _attempts(api: Api, cid: str, headers: dict[str, str]) -> list[httpx.Response]:
    base = f"/api/v1/conversations/{cid}"
    return [
        await api.http.get(base, headers=headers),
        await api.http.patch(base, json={"title": "mine now"}, headers=headers),
        await api.http.post(f"{base}/messages", json={"content": "hi"}, headers=headers),
        await api.http.post(f"{base}/messages", json={"content": "hi", "stream": True}, headers=headers),
        await api.http.post(f"{base}/messages", json={"content": "hi"}, headers={**headers, "Idempotency-Key": "x"}),
        await api.http.delete(base, headers=headers),
    ]


@pytest.mark.parametrize("credential", ["jwt", "api_key"])
async def test_anothers_conversation_is_indistinguishable_from_a_missing_one(api: Api, credential: str) -> None:
    ada_jwt, _ = await user_with_key(api, "ada@example.com")
    bob_jwt, bob_key = await user_with_key(api, "bob@example.com")
    bob = bob_jwt if credential == "jwt" else bob_key
    cid = await conversation(api, ada_jwt, title="Ada's secrets", system_prompt="internal notes")
    theirs = await _attempts(api, cid, bob)
    missing = await _attempts(api, str(uuid.uuid4()), bob)
    for attempt, control in zip(theirs, missing, strict=True):
        assert_problem(attempt, 404, "not_found")
        assert _comparable(attempt) == _comparable(control)
        assert "secrets" not in attempt.text
    detail = (await api.http.get(f"/api/v1/conversations/{cid}", headers=ada_jwt)).json()
    assert detail["title"] == "Ada's secrets"
    assert detail["messages"] == []


async def test_listing_shows_only_the_callers_conversations_even_with_a_forged_cursor(api: Api) -> None:
    ada, _ = await user_with_key(api, "ada@example.com")
    bob, _ = await user_with_key(api, "bob@example.com")
    ada_ids = {await conversation(api, ada, title=f"a{n}") for n in range(3)}
    bob_id = await conversation(api, bob)
    far_future = base64.urlsafe_b64encode(f"2999-01-01T00:00:00+00:00|{uuid.UUID(int=2**128 - 1)}".encode()).decode()
    for cursor in (None, far_future.rstrip("=")):
        params = {"limit": 100} | ({"cursor": cursor} if cursor else {})
        items = (await api.http.get("/api/v1/conversations", params=params, headers=bob)).json()["items"]
        assert {c["id"] for c in items} == {bob_id}
        assert not ada_ids & {c["id"] for c in items}


async def test_anothers_api_key_cannot_be_seen_or_revoked(api: Api) -> None:
    ada, ada_key = await user_with_key(api, "ada@example.com")
    bob, _ = await user_with_key(api, "bob@example.com")
    ada_key_id = (await api.http.get("/api/v1/api-keys", headers=ada)).json()["items"][0]["id"]
    listed = (await api.http.get("/api/v1/api-keys", headers=bob)).json()["items"]
    assert ada_key_id not in {k["id"] for k in listed}
    revoke = await api.http.delete(f"/api/v1/api-keys/{ada_key_id}", headers=bob)
    assert _comparable(revoke) == _comparable(await api.http.delete(f"/api/v1/api-keys/{uuid.uuid4()}", headers=bob))
    assert (await api.http.get("/api/v1/users/me", headers=ada_key)).status_code == 200  # still works


async def test_an_idempotency_key_never_replays_another_users_answer(api: Api) -> None:
    ada, _ = await user_with_key(api, "ada@example.com")
    bob, _ = await user_with_key(api, "bob@example.com")
    ada_cid, bob_cid = await conversation(api, ada), await conversation(api, bob)
    key = {"Idempotency-Key": "order-42"}
    first = await api.http.post(
        f"/api/v1/conversations/{ada_cid}/messages", json={"content": "ada's question"}, headers=ada | key
    )
    assert first.status_code == 201
    bobs = await api.http.post(f"/api/v1/conversations/{bob_cid}/messages", json={"content": "hi"}, headers=bob | key)
    assert bobs.status_code == 201
    assert "idempotent-replayed" not in bobs.headers
    assert "ada's question" not in bobs.text


async def test_ids_in_the_path_are_validated_not_interpreted(api: Api) -> None:
    bob, _ = await user_with_key(api, "bob@example.com")
    for probe in ("1 OR 1=1", "..%2Fusers%2Fme", "%00", "00000000-0000-0000-0000-000000000000'--"):
        response = await api.http.get(f"/api/v1/conversations/{probe}", headers=bob)
        assert response.status_code in (404, 422), probe
        assert response.headers["content-type"].startswith("application/problem+json")
