"""API4:2023 Unrestricted resource consumption: every size and count a client controls has a limit.

Body size, message length and count, ``max_tokens`` against the model's cap, page size, cursor length, API keys and
conversations per user, and the header values the server stores or echoes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.api.conftest import Api, assert_problem
from tests.security.conftest import conversation

pytestmark = pytest.mark.api


async def test_oversized_bodies_are_refused_before_parsing(api_with: Callable[..., Any]) -> None:
    async with api_with(max_body_bytes=4096) as api:
        headers = await api.user("ada@example.com")
        cid = await conversation(api, headers)
        big = {"content": "x" * 10_000}
        assert_problem(await api.http.post(f"/api/v1/conversations/{cid}/messages", json=big, headers=headers), 413)

        async def trickle() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
            yield b'{"content": "'
            for _ in range(100):
                yield b"x" * 100
            yield b'"}'

        chunked = await api.http.post(
            f"/api/v1/conversations/{cid}/messages",
            content=trickle(),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert_problem(chunked, 413, "payload_too_large")
        lying = await api.http.post("/api/v1/auth/register", content=b"{}", headers={"Content-Length": "not-a-number"})
        assert lying.status_code in (400, 413)


async def test_message_length_and_count_are_bounded(api_with: Callable[..., Any]) -> None:
    async with api_with(max_messages_per_conversation=4) as api:
        headers = await api.user("ada@example.com")
        cid = await conversation(api, headers)
        url = f"/api/v1/conversations/{cid}/messages"
        assert_problem(await api.http.post(url, json={"content": "x" * 100_001}, headers=headers), 422)
        for _ in range(2):
            assert (await api.http.post(url, json={"content": "hi"}, headers=headers)).status_code == 201
        full = assert_problem(await api.http.post(url, json={"content": "hi"}, headers=headers), 422)
        assert "at most 4 messages" in full["detail"]


async def test_max_tokens_above_the_models_cap_is_a_clear_422(api: Api) -> None:
    headers = await api.user("ada@example.com")
    model = (await api.http.get("/api/v1/models", headers=headers)).json()["items"][0]
    cid = await conversation(api, headers, model=model["name"])
    url = f"/api/v1/conversations/{cid}/messages"
    over = {"content": "hi", "max_tokens": model["max_output_tokens"] + 1}
    problem = assert_problem(await api.http.post(url, json=over, headers=headers), 422, "rule_violation")
    assert str(model["max_output_tokens"]) in problem["detail"]
    assert model["name"] in problem["detail"]
    at_cap = {"content": "hi", "max_tokens": model["max_output_tokens"]}
    assert (await api.http.post(url, json=at_cap, headers=headers)).status_code == 201
    assert len((await api.http.get(f"/api/v1/conversations/{cid}", headers=headers)).json()["messages"]) == 2


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"limit": -1}, {"limit": 10**12}, {"cursor": "x" * 201}]
)
async def test_page_sizes_and_cursors_are_bounded(api: Api, params: dict[str, Any]) -> None:
    headers = await api.user("ada@example.com")
    assert_problem(await api.http.get("/api/v1/conversations", params=params, headers=headers), 422)


async def test_admin_paging_is_bounded(api: Api) -> None:
    admin = await api.admin()
    for params in ({"limit": 101}, {"offset": -1}, {"offset": 10**9}):
        assert_problem(await api.http.get("/api/v1/admin/users", params=params, headers=admin), 422)


async def test_api_keys_and_conversations_per_user_are_capped(api_with: Callable[..., Any]) -> None:
    async with api_with(max_api_keys_per_user=2, max_conversations_per_user=2) as api:
        headers = await api.user("ada@example.com")
        for _ in range(2):
            assert (await api.http.post("/api/v1/api-keys", json={"name": "k"}, headers=headers)).status_code == 201
            await conversation(api, headers)
        assert_problem(await api.http.post("/api/v1/api-keys", json={"name": "k"}, headers=headers), 422)
        assert_problem(await api.http.post("/api/v1/conversations", json={}, headers=headers), 422)


async def test_header_values_the_server_keeps_are_bounded(api: Api) -> None:
    headers = await api.user("ada@example.com")
    long_id = await api.http.get("/health/live", headers={"X-Request-ID": "r" * 10_000})
    assert len(long_id.headers["x-request-id"]) <= 128
    cid = await conversation(api, headers)
    too_long_key = {**headers, "Idempotency-Key": "k" * 256}
    response = await api.http.post(
        f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=too_long_key
    )
    assert_problem(response, 422)
