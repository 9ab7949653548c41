"""The fake upstream must speak the real wire formats: prove it with the official SDKs."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
import pytest_asyncio

from tests.fakes import upstream as fake
from tests.fakes.upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.unit

GPT = "gpt-4o"
CLAUDE = "claude-sonnet-4-6"
WEATHER_TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"},
    },
    "required": ["city", "unit"],
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
def up(server: FakeUpstream) -> FakeUpstream:
    server.reset()
    return server


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def oai(server: FakeUpstream) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=f"{server.base_url}/v1", api_key="sk-test", max_retries=0, timeout=5)
    yield client
    await client.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ant(server: FakeUpstream) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=server.base_url, api_key="ak-test", max_retries=0, timeout=5)
    yield client
    await client.close()


def user(text: str) -> Any:
    """A one-message conversation (typed ``Any``: both SDKs type messages as TypedDict unions)."""
    return [{"role": "user", "content": text}]


async def read_openai_stream(
    client: openai.AsyncOpenAI, text: str, into: list[Any] | None = None, **kwargs: Any
) -> list[Any]:
    """Stream a chat completion to the end, collecting the chunks (also into ``into`` if given)."""
    chunks = into if into is not None else []
    stream = await client.chat.completions.create(model=GPT, messages=user(text), stream=True, **kwargs)
    async for chunk in stream:
        chunks.append(chunk)
    return chunks


# ---------------------------------------------------------------------------------------------- OpenAI


async def test_openai_completion(up: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    result = await oai.chat.completions.create(
        model=GPT,
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello big world"}],
    )

    assert result.object == "chat.completion"
    assert result.model == GPT
    assert result.id.startswith("chatcmpl-")
    assert result.choices[0].message.role == "assistant"
    assert result.choices[0].message.content == "Echo: hello big world"
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens) == (
        5,
        4,
        9,
    )
    assert result.usage.prompt_tokens_details is not None
    assert result.usage.prompt_tokens_details.cached_tokens == 0

    sent = up.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.api_key == "sk-test"
    assert sent.model == GPT
    assert sent.json["messages"][0] == {"role": "system", "content": "be brief"}
    assert up.completions_served == 1


async def test_openai_stream_with_usage(up: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model=GPT, messages=user("one two three"), stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 4  # one word per chunk
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (3, 4)
    assert all(c.usage is None for c in chunks[:-1])
    assert up.completions_served == 1


async def test_openai_stream_raw_sse_without_usage(up: FakeUpstream) -> None:
    body = {"model": GPT, "messages": user("hi"), "stream": True}
    async with httpx.AsyncClient(base_url=up.base_url) as client:
        response = await client.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer k"})
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.split("\n") if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    payloads = [json.loads(line[6:]) for line in lines[:-1]]
    assert all("usage" not in p for p in payloads)
    assert payloads[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}


async def test_openai_tool_call(up: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_TOOL_SCHEMA}}]
    result = await oai.chat.completions.create(model=GPT, messages=user("CALL_TOOL please"), tools=tools)

    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "test", "unit": "celsius"}

    # The tool result goes back: the answer is text again.
    history: Any = [
        *user("CALL_TOOL please"),
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    follow_up = await oai.chat.completions.create(model=GPT, tools=tools, messages=history)
    assert follow_up.choices[0].message.content == "Tool result: sunny"
    assert follow_up.choices[0].finish_reason == "stop"


async def test_openai_tool_call_stream(up: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_TOOL_SCHEMA}}]
    stream = await oai.chat.completions.create(model=GPT, messages=user("CALL_TOOL"), tools=tools, stream=True)
    chunks = [chunk async for chunk in stream]

    first_call = chunks[0].choices[0].delta.tool_calls
    assert first_call is not None
    assert first_call[0].id is not None
    assert first_call[0].function is not None
    assert first_call[0].function.name == "get_weather"
    arguments = ""
    for chunk in chunks[1:]:
        for delta in chunk.choices[0].delta.tool_calls or []:
            assert delta.index == 0
            assert delta.function is not None
            arguments += delta.function.arguments or ""
    assert json.loads(arguments) == {"city": "test", "unit": "celsius"}
    assert len(chunks) > 3
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_openai_max_tokens_and_stop(up: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    cut = await oai.chat.completions.create(model=GPT, messages=user("a b c d e f"), max_completion_tokens=3)
    assert cut.choices[0].message.content == "Echo: a b"
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage is not None
    assert cut.usage.completion_tokens == 3

    legacy = await oai.chat.completions.create(model=GPT, messages=user("a b c d e f"), max_tokens=2)
    assert legacy.choices[0].finish_reason == "length"

    stopped = await oai.chat.completions.create(model=GPT, messages=user("a b STOP c"), stop=["STOP"])
    assert stopped.choices[0].message.content == "Echo: a b "
    assert stopped.choices[0].finish_reason == "stop"


async def test_openai_embeddings(up: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    default = await oai.embeddings.create(model="text-embedding-3-small", input=["hello", "world"])
    assert up.last_request.json["encoding_format"] == "base64"  # the SDK asks for base64 by default
    floats = await oai.embeddings.create(model="text-embedding-3-small", input="hello", encoding_format="float")
    small = await oai.embeddings.create(model="text-embedding-3-small", input="hello", dimensions=8)

    assert [d.index for d in default.data] == [0, 1]
    assert len(default.data[0].embedding) == 1536
    assert default.data[0].embedding == floats.data[0].embedding  # deterministic, both encodings agree
    assert default.data[0].embedding != default.data[1].embedding
    assert sum(v * v for v in small.data[0].embedding) == pytest.approx(1.0, abs=1e-5)
    assert len(small.data[0].embedding) == 8
    assert default.usage.prompt_tokens == 2
    assert up.embeddings_served == 3


async def test_openai_models(up: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    models = [m.id async for m in oai.models.list()]
    assert GPT in models
    assert (await oai.models.retrieve(GPT)).id == GPT
    with pytest.raises(openai.NotFoundError):
        await oai.models.retrieve("gpt-nope")


# ------------------------------------------------------------------------------------------- Anthropic


async def test_anthropic_message(up: FakeUpstream, ant: anthropic.AsyncAnthropic) -> None:
    result = await ant.messages.create(
        model=CLAUDE, max_tokens=100, system="be brief", messages=user("hello big world")
    )

    assert result.type == "message"
    assert result.role == "assistant"
    assert result.model == CLAUDE
    assert result.id.startswith("msg_")
    assert result.content[0].type == "text"
    assert result.content[0].text == "Echo: hello big world"
    assert result.stop_reason == "end_turn"
    assert result.stop_sequence is None
    assert (result.usage.input_tokens, result.usage.output_tokens) == (5, 4)
    assert result.usage.cache_read_input_tokens == 0
    assert result.usage.cache_creation_input_tokens == 0

    sent = up.last_request
    assert sent.path == "/v1/messages"
    assert sent.api_key == "ak-test"
    assert "anthropic-version" in sent.headers
    assert sent.json["system"] == "be brief"
    assert sent.json["max_tokens"] == 100
    assert up.completions_served == 1


async def test_anthropic_stream(up: FakeUpstream, ant: anthropic.AsyncAnthropic) -> None:
    async with ant.messages.stream(model=CLAUDE, max_tokens=100, messages=user("one two three")) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()

    assert pieces == ["Echo:", " one", " two", " three"]
    assert final.content[0].type == "text"
    assert final.content[0].text == "Echo: one two three"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (3, 4)
    assert up.completions_served == 1


async def test_anthropic_raw_event_order(up: FakeUpstream) -> None:
    body = {"model": CLAUDE, "max_tokens": 50, "messages": user("a b"), "stream": True}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=up.base_url) as client:
        response = await client.post("/v1/messages", json=body, headers=headers)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [block.split("\n") for block in response.text.strip().split("\n\n")]
    names = [lines[0].removeprefix("event: ") for lines in events]
    datas = [json.loads(lines[1].removeprefix("data: ")) for lines in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert [d["type"] for d in datas] == names
    assert datas[0]["message"]["usage"]["input_tokens"] == 2
    assert datas[3]["delta"] == {"type": "text_delta", "text": "Echo:"}
    assert datas[7]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert datas[7]["usage"] == {"output_tokens": 3}


async def test_anthropic_tool_use(up: FakeUpstream, ant: anthropic.AsyncAnthropic) -> None:
    tools: Any = [{"name": "get_weather", "description": "weather", "input_schema": WEATHER_TOOL_SCHEMA}]
    result = await ant.messages.create(model=CLAUDE, max_tokens=100, tools=tools, messages=user("CALL_TOOL now"))

    assert result.stop_reason == "tool_use"
    block = result.content[0]
    assert block.type == "tool_use"
    assert block.id.startswith("toolu_")
    assert block.name == "get_weather"
    assert block.input == {"city": "test", "unit": "celsius"}

    history: Any = [
        *user("CALL_TOOL now"),
        {"role": "assistant", "content": [block.model_dump()]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "sunny"}]},
    ]
    follow_up = await ant.messages.create(model=CLAUDE, max_tokens=100, tools=tools, messages=history)
    assert follow_up.stop_reason == "end_turn"
    assert follow_up.content[0].type == "text"
    assert follow_up.content[0].text == "Tool result: sunny"


async def test_anthropic_tool_use_stream(up: FakeUpstream, ant: anthropic.AsyncAnthropic) -> None:
    tools: Any = [{"name": "get_weather", "input_schema": WEATHER_TOOL_SCHEMA}]
    async with ant.messages.stream(model=CLAUDE, max_tokens=100, tools=tools, messages=user("CALL_TOOL")) as stream:
        deltas = [e.delta.type async for e in stream if e.type == "content_block_delta"]
        final = await stream.get_final_message()

    assert set(deltas) == {"input_json_delta"}
    assert len(deltas) > 1
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == {"city": "test", "unit": "celsius"}


async def test_anthropic_max_tokens_and_stop_sequences(up: FakeUpstream, ant: anthropic.AsyncAnthropic) -> None:
    cut = await ant.messages.create(model=CLAUDE, max_tokens=2, messages=user("a b c d"))
    assert cut.stop_reason == "max_tokens"
    assert cut.content[0].type == "text"
    assert cut.content[0].text == "Echo: a"
    assert cut.usage.output_tokens == 2

    stopped = await ant.messages.create(
        model=CLAUDE, max_tokens=100, stop_sequences=["END"], messages=user("a b END c")
    )
    assert stopped.stop_reason == "stop_sequence"
    assert stopped.stop_sequence == "END"
    assert stopped.content[0].type == "text"
    assert stopped.content[0].text == "Echo: a b "


async def test_anthropic_system_role_message(up: FakeUpstream, ant: anthropic.AsyncAnthropic) -> None:
    # anthropic 2.x types allow {"role": "system"} entries in `messages`; the old API refused them.
    messages: Any = [{"role": "system", "content": "be brief"}, *user("hi")]
    accepted = await ant.messages.create(model=CLAUDE, max_tokens=10, messages=messages)
    assert accepted.content[0].type == "text"
    assert accepted.content[0].text == "Echo: hi"

    up.reject_anthropic_system_role = True
    try:
        with pytest.raises(anthropic.BadRequestError, match="top-level `system` parameter"):
            await ant.messages.create(model=CLAUDE, max_tokens=10, messages=messages)
    finally:
        up.reject_anthropic_system_role = False


async def test_anthropic_models_and_count_tokens(up: FakeUpstream, ant: anthropic.AsyncAnthropic) -> None:
    models = [m.id async for m in ant.models.list()]
    assert CLAUDE in models
    counted = await ant.messages.count_tokens(model=CLAUDE, system="be brief", messages=user("a b c"))
    assert counted.input_tokens == 5


# -------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("behaviour", "exception", "code"),
    [
        (fake.rate_limited(retry_after=7), openai.RateLimitError, "rate_limit_exceeded"),
        (fake.server_error(500), openai.InternalServerError, None),
        (fake.server_error(503), openai.InternalServerError, None),
        (fake.auth_error(), openai.AuthenticationError, "invalid_api_key"),
        (fake.context_length_exceeded(), openai.BadRequestError, "context_length_exceeded"),
    ],
)
async def test_openai_errors(
    up: FakeUpstream,
    oai: openai.AsyncOpenAI,
    behaviour: Behaviour,
    exception: type[Exception],
    code: str | None,
) -> None:
    up.push(behaviour)
    with pytest.raises(exception) as caught:
        await oai.chat.completions.create(model=GPT, messages=user("hi"))
    err = caught.value
    assert isinstance(err, openai.APIStatusError)
    assert err.status_code == behaviour.status
    assert err.code == code
    assert isinstance(err.body, dict)
    assert set(err.body) == {"message", "type", "param", "code"}
    if behaviour.status == 429:
        assert err.response.headers["retry-after"] == "7"
    if code == "context_length_exceeded":
        assert err.message.startswith("Error code: 400 - This model's maximum context length is")
    assert up.completions_served == 0


@pytest.mark.parametrize(
    ("behaviour", "exception", "error_type"),
    [
        (fake.rate_limited(retry_after=7), anthropic.RateLimitError, "rate_limit_error"),
        (fake.server_error(500), anthropic.InternalServerError, "api_error"),
        (fake.overloaded(), anthropic.OverloadedError, "overloaded_error"),
        (fake.auth_error(), anthropic.AuthenticationError, "authentication_error"),
        (fake.context_length_exceeded(), anthropic.BadRequestError, "invalid_request_error"),
    ],
)
async def test_anthropic_errors(
    up: FakeUpstream,
    ant: anthropic.AsyncAnthropic,
    behaviour: Behaviour,
    exception: type[Exception],
    error_type: str,
) -> None:
    up.push(behaviour)
    with pytest.raises(exception) as caught:
        await ant.messages.create(model=CLAUDE, max_tokens=10, messages=user("hi"))
    err = caught.value
    assert isinstance(err, anthropic.APIStatusError)
    assert err.status_code == behaviour.status
    assert err.type == error_type
    assert err.request_id is not None
    assert isinstance(err.body, dict)
    assert err.body["type"] == "error"
    if behaviour.status == 400:
        assert err.api_message is not None
        assert err.api_message.startswith("prompt is too long")


async def test_errors_are_popped_in_order_then_success(up: FakeUpstream) -> None:
    up.push(fake.rate_limited(retry_after_ms=10), fake.error(500, retry_after=0.01))
    client = openai.AsyncOpenAI(base_url=f"{up.base_url}/v1", api_key="sk-test", max_retries=2)
    result = await client.chat.completions.create(model=GPT, messages=user("hi"))
    await client.close()
    assert result.choices[0].message.content == "Echo: hi"
    assert [r.headers["x-stainless-retry-count"] for r in up.requests] == ["0", "1", "2"]
    assert up.completions_served == 1
    assert up.pending == []


async def test_fail_model_for_fallbacks(up: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    up.fail_model("gpt-broken", 503)
    up.push(fake.ok("scripted answer"))
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await oai.chat.completions.create(model="gpt-broken", messages=user("hi"))
    result = await oai.chat.completions.create(model=GPT, messages=user("hi"))
    assert result.choices[0].message.content == "scripted answer"  # the failing model did not pop it
    assert [r.model for r in up.requests] == ["gpt-broken", "gpt-broken", GPT]


async def test_missing_api_key_is_401(up: FakeUpstream) -> None:
    async with httpx.AsyncClient(base_url=up.base_url) as client:
        no_key = await client.post("/v1/chat/completions", json={"model": GPT, "messages": user("hi")})
        no_version = await client.post(
            "/v1/messages",
            json={"model": CLAUDE, "max_tokens": 5, "messages": user("hi")},
            headers={"x-api-key": "k"},
        )
    assert no_key.status_code == 401
    assert no_key.json()["error"]["message"].startswith("You didn't provide an API key")
    assert no_version.status_code == 400
    assert no_version.json()["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }


# ---------------------------------------------------------------------------------------------- faults


async def test_drop_stream_raises(up: FakeUpstream, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic) -> None:
    up.push(fake.drop_stream_after(2))
    received: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        await read_openai_stream(oai, "a b c d", into=received)
    assert len(received) == 2

    # anthropic 2.x does not wrap transport errors raised while iterating a stream.
    up.push(fake.drop_stream_after(4))
    with pytest.raises(httpx2.RemoteProtocolError):
        async with ant.messages.stream(model=CLAUDE, max_tokens=50, messages=user("a b c")) as stream:
            await stream.get_final_message()
    assert up.completions_served == 0


async def test_hang_times_out(up: FakeUpstream, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic) -> None:
    up.push(fake.hang(), fake.hang())
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await oai.with_options(timeout=0.1).chat.completions.create(model=GPT, messages=user("hi"))
    with pytest.raises(anthropic.APITimeoutError):
        await ant.with_options(timeout=0.1).messages.create(model=CLAUDE, max_tokens=5, messages=user("hi"))
    assert time.monotonic() - started < 2


async def test_stall_mid_stream_times_out(up: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    up.push(fake.hang(after_chunks=2))
    received: list[Any] = []
    with pytest.raises(openai.APITimeoutError):
        await read_openai_stream(oai.with_options(timeout=0.1), "a b c", into=received)
    assert len(received) == 2


async def test_stop_with_a_hanging_request_is_clean() -> None:
    up = FakeUpstream()
    await up.start()
    up.push(fake.hang())
    client = openai.AsyncOpenAI(base_url=f"{up.base_url}/v1", api_key="k", max_retries=0, timeout=30)
    call = asyncio.create_task(client.chat.completions.create(model=GPT, messages=user("hi")))
    while not up.requests:
        await asyncio.sleep(0.005)
    started = time.monotonic()
    await up.stop()
    assert time.monotonic() - started < 1
    with pytest.raises(openai.APIConnectionError):
        await call
    await client.close()


async def test_delay_and_chunk_delay(up: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    up.push(fake.delay(0.1))
    started = time.monotonic()
    await oai.chat.completions.create(model=GPT, messages=user("hi"))
    assert time.monotonic() - started >= 0.1

    up.push(fake.delay(0, chunk_delay=0.02))
    stream = await oai.chat.completions.create(model=GPT, messages=user("a b"), stream=True)
    arrivals = [time.monotonic() async for _ in stream]
    assert len(arrivals) == 5
    # 4 gaps of 0.02 s; a loaded machine may read the first chunk late and the rest together, so allow one gap less
    assert arrivals[-1] - arrivals[0] >= 0.02 * 3
    assert up.completions_served == 2


async def test_mid_stream_error_event(up: FakeUpstream, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic) -> None:
    up.push(fake.stream_error_after(2))
    with pytest.raises(openai.APIError, match="Overloaded"):
        await read_openai_stream(oai, "a b")

    # anthropic raises a bare APIStatusError carrying the stream's HTTP status (200), not OverloadedError.
    up.push(fake.stream_error_after(3))
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with ant.messages.stream(model=CLAUDE, max_tokens=50, messages=user("a b")) as stream:
            await stream.get_final_message()
    assert caught.value.type == "overloaded_error"
    assert caught.value.status_code == 200


async def test_malformed_and_missing_fields(up: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    # Neither SDK wraps a JSON decoding failure: the raw json error escapes.
    up.push(fake.malformed())
    with pytest.raises(json.JSONDecodeError):
        await oai.chat.completions.create(model=GPT, messages=user("hi"))

    up.push(fake.malformed())
    with pytest.raises(json.JSONDecodeError):
        await read_openai_stream(oai, "hi")

    # No strict validation: missing fields come back as None.
    up.push(fake.missing_fields())
    result = await oai.chat.completions.create(model=GPT, messages=user("hi"))
    assert result.choices is None
    assert result.usage is None
    assert up.completions_served == 0


async def test_html_error_page(up: FakeUpstream, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic) -> None:
    up.push(fake.html_error(), fake.html_error(503))
    with pytest.raises(openai.InternalServerError) as openai_error:
        await oai.chat.completions.create(model=GPT, messages=user("hi"))
    assert openai_error.value.status_code == 502
    assert openai_error.value.response.headers["content-type"].startswith("text/html")
    assert isinstance(openai_error.value.body, str)
    assert "502 Bad Gateway" in openai_error.value.body

    with pytest.raises(anthropic.ServiceUnavailableError):
        await ant.messages.create(model=CLAUDE, max_tokens=5, messages=user("hi"))


async def test_huge_body(up: FakeUpstream, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic) -> None:
    up.push(fake.huge_body(200_000), fake.huge_body(100_000))
    result = await oai.chat.completions.create(model=GPT, messages=user("hi"))
    assert len(result.choices[0].message.content or "") >= 199_000
    async with ant.messages.stream(model=CLAUDE, max_tokens=5, messages=user("hi")) as stream:
        text = await stream.get_final_text()
    assert len(text) >= 99_000
    assert up.completions_served == 2


async def test_redirect_is_followed(up: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    up.push(fake.redirect("/v1/chat/completions"))
    result = await oai.chat.completions.create(model=GPT, messages=user("hi"))
    assert result.choices[0].message.content == "Echo: hi"
    assert [r.path for r in up.requests] == ["/v1/chat/completions"] * 2
    assert up.requests[1].json == up.requests[0].json  # 307 keeps the method and body


async def test_disconnect_before_response(up: FakeUpstream, ant: anthropic.AsyncAnthropic) -> None:
    up.push(fake.disconnect())
    with pytest.raises(anthropic.APIConnectionError):
        await ant.messages.create(model=CLAUDE, max_tokens=5, messages=user("hi"))


async def test_ok_overrides_and_cache_tokens(up: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    up.push(fake.ok("fixed text", cached_tokens=40))
    result = await oai.chat.completions.create(model=GPT, messages=user("a b"))
    assert result.choices[0].message.content == "fixed text"
    assert result.usage is not None
    assert result.usage.prompt_tokens == 42
    assert result.usage.prompt_tokens_details is not None
    assert result.usage.prompt_tokens_details.cached_tokens == 40


# ------------------------------------------------------------------------------------- other run modes


def test_behaviour_round_trips_through_dict() -> None:
    behaviour = fake.error(429, retry_after=2, should_retry=False)
    assert Behaviour.from_dict(json.loads(json.dumps(behaviour.to_dict()))) == behaviour


def test_run_in_thread() -> None:
    with FakeUpstream.run_in_thread() as handle:
        handle.push(fake.server_error(500))
        client = openai.OpenAI(base_url=f"{handle.base_url}/v1", api_key="k", max_retries=0)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model=GPT, messages=user("hi"))
        result = client.chat.completions.create(model=GPT, messages=user("hi"))
        client.close()
        assert result.choices[0].message.content == "Echo: hi"
        assert handle.completions_served == 1
        assert len(handle.requests) == 2


def test_main_entry_point_and_control_endpoints() -> None:
    command = [sys.executable, "-m", "tests.fakes.upstream", "--port", "0", "--delay-ms", "0", "--record"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().strip()
            assert base_url.startswith("http://127.0.0.1:")
            with httpx.Client(base_url=base_url) as control:
                behaviours = [fake.error(429, retry_after=1).to_dict()]
                assert control.post("/_fake/push", json={"behaviours": behaviours}).status_code == 200
                with anthropic.Anthropic(base_url=base_url, api_key="k", max_retries=0) as client:
                    with pytest.raises(anthropic.RateLimitError):
                        client.messages.create(model=CLAUDE, max_tokens=5, messages=user("hi"))
                    answer = client.messages.create(model=CLAUDE, max_tokens=5, messages=user("hi"))
                assert answer.stop_reason == "end_turn"
                stats = control.get("/_fake/stats").json()
                assert (stats["completions_served"], stats["served_by_path"]) == (1, {"/v1/messages": 1})
                assert [r["path"] for r in control.get("/_fake/requests").json()] == ["/v1/messages"] * 2
        finally:
            process.terminate()
            assert process.wait(timeout=5) == 0


def _floats(b64: str) -> tuple[float, ...]:
    raw = base64.b64decode(b64)
    return struct.unpack(f"<{len(raw) // 4}f", raw)


async def test_answers_are_counted_per_path_failures_are_not_and_requests_in_flight_are(
    up: FakeUpstream, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    await oai.chat.completions.create(model=GPT, messages=user("hi"))
    await read_openai_stream(oai, "hi there")
    await ant.messages.create(model=CLAUDE, max_tokens=5, messages=user("hi"))
    await oai.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    up.push(fake.server_error(), fake.drop_stream_after(2))
    with pytest.raises(openai.InternalServerError):
        await oai.chat.completions.create(model=GPT, messages=user("hi"))
    with pytest.raises(openai.APIError):
        await read_openai_stream(oai, "one two three four")

    assert up.served == {"/v1/chat/completions": 2, "/v1/messages": 1, "/v1/embeddings": 1}
    assert (up.completions_served, up.embeddings_served) == (3, 1)
    assert up.in_flight == 0
    up.push(fake.hang())
    waiting = asyncio.create_task(oai.chat.completions.create(model=GPT, messages=user("hi")))
    while up.in_flight == 0:
        await asyncio.sleep(0.01)
    waiting.cancel()
    while up.in_flight:
        await asyncio.sleep(0.01)
    up.reset()
    assert up.served == {}


async def test_embeddings_base64_wire_format(up: FakeUpstream) -> None:
    body = {"model": "text-embedding-3-small", "input": "hi", "encoding_format": "base64", "dimensions": 4}
    async with httpx.AsyncClient(base_url=up.base_url) as client:
        response = await client.post("/v1/embeddings", json=body, headers={"authorization": "Bearer k"})
        floats = await client.post(
            "/v1/embeddings", json={**body, "encoding_format": "float"}, headers={"authorization": "Bearer k"}
        )
    data = response.json()
    assert data["object"] == "list"
    assert data["data"][0]["object"] == "embedding"
    assert list(_floats(data["data"][0]["embedding"])) == floats.json()["data"][0]["embedding"]
