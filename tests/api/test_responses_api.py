"""``/v1/responses`` on the wire, without SDKs: the response object, stored responses (owner-scoped), input items,
input tokens, the streamed event sequence, and every bad input a 400 in OpenAI's shape."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from dependency_injector import providers

from tests.api.conftest import Api
from tests.api.test_compat_api import key_headers, openai_error, scripted
from tests.fakes.llm import ScriptedProvider

pytestmark = pytest.mark.api

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def sse(text: str) -> list[dict[str, Any]]:
    events = []
    for frame in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.split("\n"))
        payload = orjson.loads(lines["data"])
        assert payload["type"] == lines["event"]
        events.append(payload)
    return events


async def test_a_response_whole_stored_read_and_deleted(api: Api) -> None:
    headers = await key_headers(api)
    body = {"model": "local", "input": "hello there", "instructions": "Be brief.", "metadata": {"k": "v"}}
    created = await api.http.post("/v1/responses", json=body, headers=headers)
    assert created.status_code == 200, created.text
    response = created.json()
    assert response["id"].startswith("resp_")
    assert response["object"] == "response"
    assert response["status"] == "completed"
    assert response["error"] is None
    assert response["instructions"] == "Be brief."
    assert response["metadata"] == {"k": "v"}
    [message] = response["output"]
    assert message["type"] == "message"
    assert message["role"] == "assistant"
    assert "hello there" in message["content"][0]["text"]
    usage = response["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert usage["input_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0}

    fetched = await api.http.get(f"/v1/responses/{response['id']}", headers=headers)
    assert fetched.json() == response
    items = (await api.http.get(f"/v1/responses/{response['id']}/input_items", headers=headers)).json()
    assert [i["content"][0]["text"] for i in items["data"]] == ["hello there"]
    deleted = await api.http.delete(f"/v1/responses/{response['id']}", headers=headers)
    assert deleted.json() == {"id": response["id"], "object": "response", "deleted": True}
    gone = await api.http.get(f"/v1/responses/{response['id']}", headers=headers)
    openai_error(gone, 404, "response_not_found")


async def test_someone_elses_response_is_not_found(api: Api) -> None:
    ada = await key_headers(api)
    jwt = await api.user("bob@example.com")
    bob_key = (await api.http.post("/api/v1/api-keys", json={"name": "b"}, headers=jwt)).json()["key"]
    bob = {"Authorization": f"Bearer {bob_key}"}
    response = (await api.http.post("/v1/responses", json={"model": "local", "input": "hi"}, headers=ada)).json()
    for call in (
        api.http.get(f"/v1/responses/{response['id']}", headers=bob),
        api.http.get(f"/v1/responses/{response['id']}/input_items", headers=bob),
        api.http.delete(f"/v1/responses/{response['id']}", headers=bob),
        api.http.post(
            "/v1/responses", json={"model": "local", "input": "x", "previous_response_id": response["id"]}, headers=bob
        ),
    ):
        openai_error(await call, 404)
    for unknown in ("resp_nothex", "resp_" + "0" * 32, "chatcmpl-1"):
        openai_error(await api.http.get(f"/v1/responses/{unknown}", headers=ada), 404)


async def test_store_false_keeps_nothing(api: Api) -> None:
    headers = await key_headers(api)
    response = (
        await api.http.post("/v1/responses", json={"model": "local", "input": "hi", "store": False}, headers=headers)
    ).json()
    assert response["store"] is False
    openai_error(await api.http.get(f"/v1/responses/{response['id']}", headers=headers), 404)


async def test_a_tool_round_trip_through_previous_response_id(api: Api) -> None:
    headers = await key_headers(api)
    first = (
        await api.http.post(
            "/v1/responses",
            json={"model": "local", "input": "weather in Paris? CALL_TOOL", "tools": [WEATHER]},
            headers=headers,
        )
    ).json()
    [call] = first["output"]
    assert call["type"] == "function_call"
    assert call["name"] == "get_weather"
    assert orjson.loads(call["arguments"]) == {"city": "test"}
    assert first["tools"][0]["name"] == "get_weather"
    assert first["tools"][0]["strict"] is True
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny, 21 C"}
    second = (
        await api.http.post(
            "/v1/responses",
            json={"model": "local", "input": [output], "tools": [WEATHER], "previous_response_id": first["id"]},
            headers=headers,
        )
    ).json()
    assert second["previous_response_id"] == first["id"]
    assert "sunny, 21 C" in second["output"][0]["content"][0]["text"]
    items = (await api.http.get(f"/v1/responses/{second['id']}/input_items", headers=headers)).json()
    assert [i["type"] for i in items["data"]] == ["function_call_output"]


async def test_input_items_in_a_list_and_paged(api: Api) -> None:
    headers = await key_headers(api)
    items = [
        {"role": "developer", "content": "Be brief."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
        {"role": "user", "content": "second"},
    ]
    response = (await api.http.post("/v1/responses", json={"model": "local", "input": items}, headers=headers)).json()
    assert "second" in response["output"][0]["content"][0]["text"]
    url = f"/v1/responses/{response['id']}/input_items"
    page = (await api.http.get(url, params={"order": "asc", "limit": 2}, headers=headers)).json()
    assert [i["role"] for i in page["data"]] == ["system", "user"]
    assert page["has_more"] is True
    rest = (await api.http.get(url, params={"order": "asc", "after": page["last_id"]}, headers=headers)).json()
    assert [i["role"] for i in rest["data"]] == ["assistant", "user"]
    assert rest["has_more"] is False
    newest = (await api.http.get(url, headers=headers)).json()
    assert newest["data"][0]["content"][0]["text"] == "second"


async def test_max_output_tokens_makes_an_incomplete_response(api: Api) -> None:
    headers = await key_headers(api)
    body = {"model": "local", "input": "a long question indeed", "max_output_tokens": 2}
    response = (await api.http.post("/v1/responses", json=body, headers=headers)).json()
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["max_output_tokens"] == 2


async def test_input_tokens_are_counted(api: Api) -> None:
    headers = await key_headers(api)
    counted = await api.http.post(
        "/v1/responses/input_tokens", json={"model": "local", "input": "count these words"}, headers=headers
    )
    assert counted.json() == {"object": "response.input_tokens", "input_tokens": 5}
    openai_error(
        await api.http.post("/v1/responses/input_tokens", json={"model": "nope", "input": "x"}, headers=headers),
        404,
        "model_not_found",
    )


async def test_a_streamed_response_has_the_event_sequence(api: Api) -> None:
    headers = await key_headers(api)
    streamed = await api.http.post(
        "/v1/responses", json={"model": "local", "input": "hi", "stream": True}, headers=headers
    )
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = sse(streamed.text)
    kinds = [e["type"] for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    final = events[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == text == events[-4]["text"]
    assert events[2]["item"]["id"] == final["output"][0]["id"]
    stored = (await api.http.get(f"/v1/responses/{final['id']}", headers=headers)).json()
    assert stored == final
    replay = await api.http.get(f"/v1/responses/{final['id']}", params={"stream": "true"}, headers=headers)
    assert sse(replay.text)[-1]["response"] == final


async def test_a_streamed_tool_call(api: Api) -> None:
    headers = await key_headers(api)
    body = {"model": "local", "input": "CALL_TOOL", "tools": [WEATHER], "stream": True}
    events = sse((await api.http.post("/v1/responses", json=body, headers=headers)).text)
    kinds = [e["type"] for e in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[4]["arguments"] == '{"city":"test"}'
    assert events[4]["name"] == "get_weather"
    assert events[-1]["response"]["output"][0]["call_id"] == events[2]["item"]["call_id"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "local"}, "input"),
        ({"model": "local", "input": 3}, "input"),
        ({"model": "local", "input": [{"type": "input_image", "image_url": "x"}]}, "input.0"),
        ({"model": "local", "input": [{"role": "user", "content": [{"type": "input_image"}]}]}, None),
        ({"model": "local", "input": [{"role": "tool", "content": "x"}]}, None),
        ({"model": "local", "input": "x", "tools": [{"type": "web_search"}]}, None),
        ({"model": "local", "input": "x", "text": {"format": {"type": "json_schema"}}}, None),
        ({"model": "local", "input": "x", "temperature": 3}, "temperature"),
        ({"model": "local", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "local", "input": "x", "tool_choice": {"type": "function", "name": "nope"}}, None),
        ({"model": "local", "input": "x", "background": True, "store": False}, None),
        ({"model": "local", "input": "x", "previous_response_id": "nope"}, None),
    ],
)
async def test_bad_input_is_a_clear_error(api: Api, body: dict[str, Any], param: str | None) -> None:
    headers = await key_headers(api)
    response = await api.http.post("/v1/responses", json=body, headers=headers)
    status = 404 if body.get("previous_response_id") else 400
    error = openai_error(response, status)
    if param is not None:
        assert error["param"] == param
    assert error["message"]
    bad_json = await api.http.post(
        "/v1/responses", content=b"{", headers=headers | {"content-type": "application/json"}
    )
    openai_error(bad_json, 400)


async def test_a_stream_that_breaks_ends_failed_with_its_partial_output_stored(api: Api) -> None:
    headers = await key_headers(api)
    broken = scripted(api, ScriptedProvider(["one ", "two ", "three"], fail_after=2))
    with api.app.state.container.model_call.override(providers.Object(broken)):
        streamed = await api.http.post(
            "/v1/responses", json={"model": "local", "input": "hi", "stream": True}, headers=headers
        )

    events = sse(streamed.text)
    assert events[-1]["type"] == "response.failed"
    failed = events[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "server_error"
    assert failed["output"][0]["content"][0]["text"] == "one two "
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    stored = (await api.http.get(f"/v1/responses/{failed['id']}", headers=headers)).json()
    assert stored == failed
