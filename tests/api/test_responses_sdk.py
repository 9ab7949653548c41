"""The official OpenAI SDK's Responses API against Switchboard on a loopback port, unchanged but for base URL and
key: ``responses.create``, ``responses.stream``, ``responses.parse`` with a Pydantic model, a function tool round
trip and ``previous_response_id``, on the local model and on OpenAI- and Anthropic-backed models (the fake
upstream)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.api.test_compat_sdk import CHAT_MODELS, oai, switchboard, upstream  # noqa: F401 (fixtures)
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.api

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


class City(BaseModel):
    name: str
    population: int
    districts: list[str]
    mayor: str | None = None


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_create_on_every_provider(oai: openai.AsyncOpenAI, model: str) -> None:  # noqa: F811
    response = await oai.responses.create(model=model, instructions="Be brief.", input="hello gateway")

    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert "hello gateway" in response.output_text
    assert response.instructions == "Be brief."
    assert response.usage is not None
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert (await oai.responses.retrieve(response.id)).output_text == response.output_text


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_stream_on_every_provider(oai: openai.AsyncOpenAI, model: str) -> None:  # noqa: F811
    deltas = []
    async with oai.responses.stream(model=model, input="one two three") as stream:
        async for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = await stream.get_final_response()

    assert final.status == "completed"
    assert "".join(deltas) == final.output_text
    assert "one two three" in final.output_text


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_a_function_tool_round_trip_with_previous_response_id(
    oai: openai.AsyncOpenAI,  # noqa: F811
    model: str,
) -> None:
    first = await oai.responses.create(model=model, input="Weather in Paris? CALL_TOOL", tools=[WEATHER])

    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather"
    assert json.loads(call.arguments)["city"] == "test"

    second = await oai.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 24 degrees"}],
        tools=[WEATHER],
    )

    assert second.status == "completed"
    assert "sunny, 24 degrees" in second.output_text
    assert second.previous_response_id == first.id


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_a_tool_round_trip_without_storage(oai: openai.AsyncOpenAI, model: str) -> None:  # noqa: F811
    question: Any = [{"role": "user", "content": "Weather in Paris? CALL_TOOL"}]
    first = await oai.responses.create(model=model, input=question, tools=[WEATHER], store=False)
    [call] = [item for item in first.output if item.type == "function_call"]

    answer = {"type": "function_call_output", "call_id": call.call_id, "output": "cloudy"}
    second = await oai.responses.create(
        model=model, input=[*question, call.model_dump(exclude_none=True), answer], tools=[WEATHER], store=False
    )

    assert "cloudy" in second.output_text
    with pytest.raises(openai.NotFoundError):
        await oai.responses.retrieve(second.id)


async def test_a_streamed_tool_call(oai: openai.AsyncOpenAI) -> None:  # noqa: F811
    async with oai.responses.stream(model="local", input="CALL_TOOL", tools=[WEATHER]) as stream:
        final = await stream.get_final_response()

    [call] = final.output
    assert call.type == "function_call"
    assert json.loads(call.arguments) == {"city": "test"}


async def test_parse_with_a_pydantic_model_on_local(oai: openai.AsyncOpenAI) -> None:  # noqa: F811
    parsed = await oai.responses.parse(model="local", input="Describe a city.", text_format=City)

    city = parsed.output_parsed
    assert isinstance(city, City)
    assert city.districts
    assert city.mayor is not None  # optional properties are filled too


async def test_previous_response_id_continues_across_providers(
    oai: openai.AsyncOpenAI,  # noqa: F811
    upstream: FakeUpstream,  # noqa: F811
) -> None:
    first = await oai.responses.create(model="local", input="remember the word tangerine")
    second = await oai.responses.create(model="gpt", previous_response_id=first.id, input="what word?")

    assert second.status == "completed"
    sent = upstream.last_request.json
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert "tangerine" in sent["messages"][0]["content"]


async def test_retrieve_delete_and_input_items(oai: openai.AsyncOpenAI) -> None:  # noqa: F811
    response = await oai.responses.create(model="local", input="keep me")
    items = await oai.responses.input_items.list(response.id)
    assert [item.type for item in items.data] == ["message"]

    await oai.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        await oai.responses.retrieve(response.id)


async def test_errors_are_the_sdks_own(oai: openai.AsyncOpenAI) -> None:  # noqa: F811
    with pytest.raises(openai.NotFoundError):
        await oai.responses.create(model="no-such-model", input="hi")
    with pytest.raises(openai.BadRequestError):
        await oai.responses.create(model="local", input="hi", temperature=5)


async def test_anthropic_sdk_counts_tokens(switchboard: Any) -> None:  # noqa: F811
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=switchboard.url, api_key=switchboard.key, max_retries=0)
    switchboard.upstream.reset()
    message: Any = [{"role": "user", "content": "count these words please"}]
    try:
        counted = await client.messages.count_tokens(model="claude", system="Be brief.", messages=message)
        assert counted.input_tokens == 2 + 4  # Anthropic's own count (the fake's: a token per word)
        [asked] = switchboard.upstream.requests_to("/v1/messages/count_tokens")
        assert asked.json == {
            "model": "claude-haiku-4-5",
            "messages": [{"role": "user", "content": "count these words please"}],
            "system": "Be brief.",
        }
        on_openai = await client.messages.count_tokens(model="gpt", system="Be brief.", messages=message)
        assert on_openai.input_tokens == 2 + 4  # OpenAI's own count (/v1/responses/input_tokens)
        on_local = await client.messages.count_tokens(model="local", system="Be brief.", messages=message)
        assert on_local.input_tokens == 3 + 6  # the estimate: a token per four characters of each message
        switchboard.upstream.fail_model("claude-haiku-4-5", 500)
        try:
            broken = await client.messages.count_tokens(model="claude", system="Be brief.", messages=message)
        finally:
            switchboard.upstream.unfail_model("claude-haiku-4-5")
        assert broken.input_tokens == 3 + 6  # the provider failed: the estimate, not an error
        with pytest.raises(anthropic.NotFoundError):
            await client.messages.count_tokens(model="nope", messages=[{"role": "user", "content": "hi"}])
    finally:
        await client.close()


async def test_input_tokens_are_the_providers_own_count_where_it_has_one(
    oai: openai.AsyncOpenAI,  # noqa: F811
    upstream: FakeUpstream,  # noqa: F811
) -> None:
    tools: Any = [WEATHER]
    on_openai = await oai.responses.input_tokens.count(
        model="gpt", instructions="Be brief.", input="three words here", tools=tools
    )
    assert on_openai.input_tokens == 2 + 3
    [asked] = upstream.requests_to("/v1/responses/input_tokens")
    assert asked.json["input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "three words here"},
    ]
    assert asked.json["tools"][0]["name"] == "get_weather"
    on_claude = await oai.responses.input_tokens.count(
        model="claude", instructions="Be brief.", input="three words here"
    )
    assert on_claude.input_tokens == 2 + 3
    on_local = await oai.responses.input_tokens.count(model="local", instructions="Be brief.", input="three words here")
    assert on_local.input_tokens == 3 + 4  # the estimate


async def test_reasoning_reaches_each_provider_in_its_own_terms(
    oai: openai.AsyncOpenAI,  # noqa: F811
    upstream: FakeUpstream,  # noqa: F811
) -> None:
    on_openai = await oai.responses.create(model="gpt", input="think", reasoning={"effort": "high", "summary": "auto"})
    assert upstream.last_request.json["reasoning_effort"] == "high"
    assert on_openai.reasoning is not None
    assert on_openai.reasoning.effort == "high"

    await oai.responses.create(model="claude", input="think", max_output_tokens=4096, reasoning={"effort": "low"})
    sent = upstream.last_request.json
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert "temperature" not in sent

    await oai.chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": "think"}], reasoning_effort="minimal"
    )
    assert upstream.last_request.json["reasoning_effort"] == "minimal"

    on_local = await oai.responses.create(model="local", input="think", reasoning={"effort": "medium"})
    assert on_local.status == "completed"  # accepted; the local model has no reasoning to set
    assert on_local.reasoning is not None
    assert on_local.reasoning.effort == "medium"
    with pytest.raises(openai.BadRequestError):
        await oai.responses.create(model="local", input="x", reasoning={"effort": "enormous"})  # type: ignore[typeddict-item]


async def test_anthropic_thinking_reaches_anthropic_and_openai(switchboard: Any) -> None:  # noqa: F811
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=switchboard.url, api_key=switchboard.key, max_retries=0)
    try:
        thinking: Any = {"type": "enabled", "budget_tokens": 3000}
        message = [{"role": "user", "content": "think"}]
        await client.messages.create(model="claude", max_tokens=8000, thinking=thinking, messages=message)  # type: ignore[arg-type]
        assert switchboard.upstream.last_request.json["thinking"] == thinking
        await client.messages.create(model="gpt", max_tokens=8000, thinking=thinking, messages=message)  # type: ignore[arg-type]
        assert switchboard.upstream.last_request.json["reasoning_effort"] == "medium"
    finally:
        await client.close()
