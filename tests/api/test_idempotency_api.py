"""Idempotency-Key on message creation: a retry replays the stored answer without a second model call."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api, assert_problem, make_settings, running_api
from tests.api.test_providers_api import catalog_text, fast_retries
from tests.fakes import upstream as fake
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.api
COMPLETIONS = "/v1/chat/completions"


@pytest.fixture
async def upstream(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeUpstream]:
    monkeypatch.setenv("SB_TEST_OPENAI_KEY", "sk-test-openai-secret")
    monkeypatch.setenv("SB_TEST_ANTHROPIC_KEY", "sk-ant-test-secret")
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
async def api(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Api]:
    path = tmp_path / "models.toml"
    path.write_text(catalog_text(upstream.base_url))
    async with running_api(make_settings(catalog_path=path, **fast_retries(upstream_max_attempts=1))) as running:
        yield running


async def _conversation(api: Api, model: str = "solo") -> tuple[dict[str, str], str]:
    headers = await api.user("ada@example.com")
    cid = (await api.http.post("/api/v1/conversations", json={"model": model}, headers=headers)).json()["id"]
    return headers, cid


async def _post(api: Api, cid: str, headers: dict[str, str], key: str, **body: Any) -> httpx.Response:
    return await api.http.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"content": "hi", **body},
        headers={**headers, "Idempotency-Key": key},
    )


async def _messages(api: Api, cid: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    return (await api.http.get(f"/api/v1/conversations/{cid}", headers=headers)).json()["messages"]  # type: ignore[no-any-return]


async def test_a_replay_returns_the_stored_answer_without_calling_the_model_again(
    api: Api, upstream: FakeUpstream
) -> None:
    headers, cid = await _conversation(api)
    first = await _post(api, cid, headers, "order-1")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await api.http.post(
        f"/api/v1/conversations/{cid}/messages",
        content=b'{ "content" : "hi" }',  # the same request, written differently
        headers={**headers, "Idempotency-Key": "order-1", "Content-Type": "application/json"},
    )
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(upstream.requests_to(COMPLETIONS)) == 1
    assert len(await _messages(api, cid, headers)) == 2


async def test_the_same_key_with_another_body_is_422(api: Api, upstream: FakeUpstream) -> None:
    headers, cid = await _conversation(api)
    assert (await _post(api, cid, headers, "k")).status_code == 201
    assert_problem(await _post(api, cid, headers, "k", content="something else"), 422, "idempotency_key_reused")
    _, other = await _conversation_for(api, headers)
    assert_problem(await _post(api, other, headers, "k"), 422, "idempotency_key_reused")  # another path
    assert len(upstream.requests_to(COMPLETIONS)) == 1


async def _conversation_for(api: Api, headers: dict[str, str]) -> tuple[dict[str, str], str]:
    cid = (await api.http.post("/api/v1/conversations", json={"model": "solo"}, headers=headers)).json()["id"]
    return headers, cid


async def test_keys_are_per_user(api: Api, upstream: FakeUpstream) -> None:
    headers, cid = await _conversation(api)
    bob = await api.user("bob@example.com")
    _, bobs = await _conversation_for(api, bob)
    assert (await _post(api, cid, headers, "shared-key")).status_code == 201
    bobs_answer = await _post(api, bobs, bob, "shared-key")
    assert bobs_answer.status_code == 201
    assert "idempotent-replayed" not in bobs_answer.headers
    assert len(upstream.requests_to(COMPLETIONS)) == 2


async def test_a_concurrent_duplicate_is_409_and_runs_nothing(api: Api, upstream: FakeUpstream) -> None:
    headers, cid = await _conversation(api)
    upstream.push(fake.delay(0.5))
    first = asyncio.ensure_future(_post(api, cid, headers, "slow"))
    while not upstream.requests_to(COMPLETIONS):
        await asyncio.sleep(0.01)
    assert_problem(await _post(api, cid, headers, "slow"), 409, "idempotency_key_in_use")
    assert (await first).status_code == 201
    assert len(upstream.requests_to(COMPLETIONS)) == 1
    assert (await _post(api, cid, headers, "slow")).headers["idempotent-replayed"] == "true"


async def test_a_failed_request_frees_its_key_for_the_retry(api: Api, upstream: FakeUpstream) -> None:
    headers, cid = await _conversation(api)
    upstream.push(fake.server_error(503))
    assert_problem(await _post(api, cid, headers, "retry"), 503, "upstream_unavailable")
    retried = await _post(api, cid, headers, "retry")
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert len(await _messages(api, cid, headers)) == 2


async def test_a_streamed_request_is_replayed_as_its_final_result_in_json(api: Api, upstream: FakeUpstream) -> None:
    headers, cid = await _conversation(api)
    streamed = await _post(api, cid, headers, "stream-1", content="one two three", stream=True)
    assert streamed.headers["content-type"].startswith("text/event-stream")
    done = streamed.text.strip().split("\n\n")[-1]
    assert done.startswith("event: done")
    replay = await _post(api, cid, headers, "stream-1", content="one two three", stream=True)
    assert replay.status_code == 201
    assert replay.headers["content-type"] == "application/json"
    assert replay.json()["assistant_message"]["content"] == "Echo: one two three"
    assert done.endswith(replay.text)
    assert len(upstream.requests_to(COMPLETIONS)) == 1


async def test_a_stream_cut_mid_way_is_replayed_as_its_problem_with_the_partial(
    api: Api, upstream: FakeUpstream
) -> None:
    """The partial answer was stored (and used tokens): a retry must not run it again."""
    headers, cid = await _conversation(api)
    upstream.push(fake.drop_stream_after(3))
    body = {"content": "one two three four five", "stream": True}
    streamed = await _post(api, cid, headers, "cut", **body)
    assert streamed.text.strip().split("\n\n")[-1].startswith("event: error")
    replay = await _post(api, cid, headers, "cut", **body)
    assert replay.status_code == 502
    assert replay.headers["content-type"] == "application/problem+json"
    problem = replay.json()
    assert problem["code"] == "upstream_bad_response"
    assert problem["request_id"] == streamed.headers["x-request-id"]  # the original request's answer, replayed
    assert problem["result"]["assistant_message"]["status"] == "incomplete"
    assert len(upstream.requests_to(COMPLETIONS)) == 1
    assert len(await _messages(api, cid, headers)) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "with space"])
async def test_malformed_keys_are_422(api: Api, key: str) -> None:
    headers, cid = await _conversation(api)
    assert_problem(await _post(api, cid, headers, key), 422, "validation_error")


# ---- the compatible endpoints ----------------------------------------------------------------------------------

MESSAGES = "/v1/messages"


async def _compat_key(api: Api) -> tuple[dict[str, str], dict[str, str]]:
    """An API key's headers (for /v1) and the same user's session headers (for the usage report)."""
    session = await api.user("ada@example.com")
    created = await api.http.post("/api/v1/api-keys", json={"name": "compat"}, headers=session)
    return {"Authorization": f"Bearer {created.json()['key']}"}, session


async def _usage_requests(api: Api, session: dict[str, str]) -> int:
    await api.app.state.container.usage_recorder().flush()
    report = (await api.http.get("/api/v1/usage", headers=session)).json()
    return int(report["totals"]["requests"])


def _chat(**extra: Any) -> dict[str, Any]:
    return {"model": "solo", "messages": [{"role": "user", "content": "one two three"}], **extra}


async def test_a_compat_replay_is_the_same_bytes_without_a_second_call_or_usage_record(
    api: Api, upstream: FakeUpstream
) -> None:
    key, session = await _compat_key(api)
    headers = {**key, "Idempotency-Key": "c-1"}
    first = await api.http.post(COMPLETIONS, json=_chat(), headers=headers)
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    again = await api.http.post(COMPLETIONS, json=_chat(), headers=headers)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content  # the same id, the same answer
    assert len(upstream.requests_to(COMPLETIONS)) == 1
    assert await _usage_requests(api, session) == 1


async def test_a_compat_key_with_another_body_is_400_in_openais_shape_or_422_and_a_duplicate_409(
    api: Api, upstream: FakeUpstream
) -> None:
    key, _ = await _compat_key(api)
    headers = {**key, "Idempotency-Key": "c-2"}
    assert (await api.http.post(COMPLETIONS, json=_chat(), headers=headers)).status_code == 200
    reused = await api.http.post(COMPLETIONS, json=_chat(temperature=0.5), headers=headers)
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"

    upstream.push(fake.delay(0.5))
    slow = {**key, "Idempotency-Key": "c-3"}
    first = asyncio.ensure_future(api.http.post(COMPLETIONS, json=_chat(), headers=slow))
    while len(upstream.requests_to(COMPLETIONS)) < 2:
        await asyncio.sleep(0.01)
    duplicate = await api.http.post(COMPLETIONS, json=_chat(), headers=slow)
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "idempotency_key_in_use"
    assert (await first).status_code == 200
    assert len(upstream.requests_to(COMPLETIONS)) == 2

    malformed = await api.http.post(COMPLETIONS, json=_chat(), headers={**key, "Idempotency-Key": "with space"})
    assert malformed.status_code == 400


async def test_a_compat_stream_replay_streams_the_stored_answer_again(api: Api, upstream: FakeUpstream) -> None:
    key, session = await _compat_key(api)
    headers = {**key, "Idempotency-Key": "s-1"}
    body = _chat(stream=True, stream_options={"include_usage": True})
    streamed = await api.http.post(COMPLETIONS, json=body, headers=headers)
    assert streamed.headers["content-type"].startswith("text/event-stream")
    replay = await api.http.post(COMPLETIONS, json=body, headers=headers)
    assert replay.headers["content-type"].startswith("text/event-stream")
    assert replay.headers["idempotent-replayed"] == "true"

    def read(text: str) -> tuple[str, dict[str, Any]]:
        lines = [line[6:] for line in text.split("\n") if line.startswith("data: ")]
        assert lines[-1] == "[DONE]"
        chunks = [json.loads(line) for line in lines[:-1]]
        content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        return content, chunks[-1]["usage"]

    assert read(replay.text) == read(streamed.text)
    assert len(upstream.requests_to(COMPLETIONS)) == 1
    assert await _usage_requests(api, session) == 1


async def test_an_anthropic_stream_cut_mid_way_frees_its_key_for_the_retry(api: Api, upstream: FakeUpstream) -> None:
    key, _ = await _compat_key(api)
    headers = {**key, "Idempotency-Key": "m-1"}
    body = {"model": "solo", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "a b c d e"}]}
    upstream.push(fake.drop_stream_after(3))
    cut = await api.http.post(MESSAGES, json=body, headers=headers)
    assert "event: error" in cut.text
    for _ in range(100):  # the key is released in the background once the stream has ended
        retried = await api.http.post(MESSAGES, json=body, headers=headers)
        if retried.status_code != 409:
            break
        await asyncio.sleep(0.02)
    assert retried.status_code == 200
    assert "idempotent-replayed" not in retried.headers
    assert "event: message_stop" in retried.text
    assert len(upstream.requests_to(COMPLETIONS)) == 2


RESPONSES = "/v1/responses"


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.split("\n") if line.startswith("data: ")]


async def test_a_streamed_response_replay_streams_the_response_it_ended_with(api: Api, upstream: FakeUpstream) -> None:
    key, session = await _compat_key(api)
    headers = {**key, "Idempotency-Key": "r-1"}
    body = {"model": "solo", "input": "one two three", "stream": True}
    streamed = await api.http.post(RESPONSES, json=body, headers=headers)
    assert "idempotent-replayed" not in streamed.headers
    replay = await api.http.post(RESPONSES, json=body, headers=headers)
    assert replay.headers["content-type"].startswith("text/event-stream")
    assert replay.headers["idempotent-replayed"] == "true"

    first, again = _events(streamed.text), _events(replay.text)
    assert first[-1]["type"] == again[-1]["type"] == "response.completed"
    assert again[-1]["response"] == first[-1]["response"]  # the same id, output and usage
    assert [e["sequence_number"] for e in again] == list(range(len(again)))
    assert len(upstream.requests_to(COMPLETIONS)) == 1
    assert await _usage_requests(api, session) == 1

    reused = await api.http.post(RESPONSES, json={**body, "input": "other"}, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"


async def test_a_streamed_response_cut_mid_way_frees_its_key(api: Api, upstream: FakeUpstream) -> None:
    key, _ = await _compat_key(api)
    headers = {**key, "Idempotency-Key": "r-2"}
    body = {"model": "solo", "input": "a b c d e", "stream": True}
    upstream.push(fake.drop_stream_after(3))
    cut = await api.http.post(RESPONSES, json=body, headers=headers)
    assert _events(cut.text)[-1]["type"] == "response.failed"
    for _ in range(100):  # the key is released in the background once the stream has ended
        retried = await api.http.post(RESPONSES, json=body, headers=headers)
        if retried.status_code != 409:
            break
        await asyncio.sleep(0.02)
    assert retried.status_code == 200
    assert "idempotent-replayed" not in retried.headers
    assert _events(retried.text)[-1]["type"] == "response.completed"
    assert len(upstream.requests_to(COMPLETIONS)) == 2


async def test_a_background_response_replay_is_the_queued_response(api: Api, upstream: FakeUpstream) -> None:
    key, _ = await _compat_key(api)
    headers = {**key, "Idempotency-Key": "r-3"}
    body = {"model": "solo", "input": "later", "background": True}
    first = await api.http.post(RESPONSES, json=body, headers=headers)
    again = await api.http.post(RESPONSES, json=body, headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert first.json()["status"] == "queued"
