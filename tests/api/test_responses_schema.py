"""The Responses API's wire output checked against OpenAI's published schema: the ``openai`` SDK's models are
generated from OpenAI's OpenAPI document, so every streamed event is validated as a ``ResponseStreamEvent`` and
every response object as a ``Response``, and the events' order and ``sequence_number`` are checked against the
documented sequence. On the local model and on OpenAI- and Anthropic-backed ones (the fake upstream), over a real
loopback server."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from tests.api.test_compat_sdk import CHAT_MODELS, Switchboard, switchboard  # noqa: F401 (fixtures)
from tests.fakes import upstream as fake

pytestmark = pytest.mark.api

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}

# The documented sequence: the response created and in progress, then each output item (a message with one text
# part, or a function call) opened, filled and closed, then the response's last event.
TEXT_ITEM = (
    r"response\.output_item\.added response\.content_part\.added (response\.output_text\.delta )+"
    r"response\.output_text\.done response\.content_part\.done response\.output_item\.done "
)
CALL_ITEM = (
    r"response\.output_item\.added (response\.function_call_arguments\.delta )*"
    r"response\.function_call_arguments\.done response\.output_item\.done "
)
SEQUENCE = re.compile(
    rf"response\.created (response\.queued )?response\.in_progress ({TEXT_ITEM}|{CALL_ITEM})*"
    r"response\.(completed|incomplete|failed) "
)


def validated_events(text: str) -> list[Any]:
    """Every event of an SSE body, validated; their types must follow the documented sequence, numbered 0, 1, ..."""
    events = []
    for frame in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.split("\n"))
        payload = json.loads(fields["data"])
        assert payload["type"] == fields["event"]
        events.append(EVENTS.validate_python(payload))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert SEQUENCE.fullmatch("".join(f"{e.type} " for e in events)), [e.type for e in events]
    for event in events:
        if hasattr(event, "response"):
            Response.model_validate(event.response.model_dump())
    return events


@pytest.fixture
async def http(switchboard: Switchboard) -> Any:  # noqa: F811
    switchboard.upstream.reset()
    headers = {"Authorization": f"Bearer {switchboard.key}"}
    async with httpx.AsyncClient(base_url=f"{switchboard.url}/v1", headers=headers, timeout=10) as client:
        yield client


@pytest.mark.parametrize("model", CHAT_MODELS)
@pytest.mark.parametrize(
    "extra",
    [
        {"input": "one two three"},
        {"input": "CALL_TOOL", "tools": [TOOL]},
        {"input": "a b c d e f", "max_output_tokens": 2},
    ],
    ids=["text", "tool call", "incomplete"],
)
async def test_streamed_events_follow_the_published_schema(http: httpx.AsyncClient, model: str, extra: Any) -> None:
    streamed = await http.post("/responses", json={"model": model, "stream": True, **extra})
    events = validated_events(streamed.text)

    final = events[-1].response
    stored = Response.model_validate((await http.get(f"/responses/{final.id}")).json())
    assert stored == final
    replayed = validated_events((await http.get(f"/responses/{final.id}", params={"stream": "true"})).text)
    assert replayed[-1].response == final


async def test_a_stream_broken_mid_way_fails_by_the_schema(switchboard: Switchboard, http: httpx.AsyncClient) -> None:  # noqa: F811
    switchboard.upstream.push(fake.drop_stream_after(3))
    streamed = await http.post("/responses", json={"model": "gpt", "input": "a b c d e f g", "stream": True})
    events = validated_events(streamed.text)
    assert events[-1].type == "response.failed"
    assert events[-1].response.error is not None


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_whole_queued_and_cancelled_responses_follow_the_published_schema(
    http: httpx.AsyncClient, model: str
) -> None:
    whole = Response.model_validate((await http.post("/responses", json={"model": model, "input": "hi"})).json())
    assert whole.status == "completed"
    queued = (await http.post("/responses", json={"model": model, "input": "hi", "background": True})).json()
    assert Response.model_validate(queued).status == "queued"
    for _ in range(200):
        polled = Response.model_validate((await http.get(f"/responses/{queued['id']}")).json())
        if polled.status == "completed":
            break
        await asyncio.sleep(0.02)
    assert polled.status == "completed"
    assert polled.output_text == whole.output_text  # the same answer, made by a job


def frames_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.split("\n") if line.startswith("data: ")]


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_a_streamed_background_response_follows_the_schema_and_resumes_where_asked(
    http: httpx.AsyncClient, model: str
) -> None:
    body = {"model": model, "input": "one two three four", "background": True, "stream": True}
    streamed = await http.post("/responses", json=body)
    events = validated_events(streamed.text)
    assert [e.type for e in events[:3]] == ["response.created", "response.queued", "response.in_progress"]
    assert events[0].response.status == "queued"
    assert events[-1].type == "response.completed"
    final = events[-1].response
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == final.output_text

    resumed = await http.get(f"/responses/{final.id}", params={"stream": "true", "starting_after": "2"})
    assert frames_of(resumed.text) == frames_of(streamed.text)[3:]  # the same events, under the same numbers
    replayed = await http.get(f"/responses/{final.id}", params={"stream": "true"})
    assert frames_of(replayed.text) == frames_of(streamed.text)


async def test_a_stored_responses_replay_starts_after_the_sequence_number_asked(http: httpx.AsyncClient) -> None:
    whole = (await http.post("/responses", json={"model": "local", "input": "a b c"})).json()
    every = frames_of((await http.get(f"/responses/{whole['id']}", params={"stream": "true"})).text)
    later = frames_of(
        (await http.get(f"/responses/{whole['id']}", params={"stream": "true", "starting_after": "3"})).text
    )
    assert later == every[4:]
    refused = await http.get(f"/responses/{whole['id']}", params={"stream": "true", "starting_after": "x"})
    assert refused.status_code == 400
