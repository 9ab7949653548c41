"""The official OpenAI and Anthropic SDKs, unchanged but for base URL and key, against Switchboard on a loopback port.

The catalog serves an OpenAI-backed, an Anthropic-backed and the local model, both upstreams being the fake
upstream server: so each SDK is also shown talking to a model of the other provider.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest
from dependency_injector import providers
from fastapi import FastAPI

from application.llm.model_call import ModelCall
from domain.llm.model import Completion, CompletionRequest, StreamEvent, TextDelta
from domain.llm.ports import LLMProvider
from infrastructure.llm.local_embeddings import embed_text
from interfaces.http.app import create_app
from tests.api.conftest import PASSWORD, make_settings
from tests.api.serving import serving
from tests.fakes import upstream as fake
from tests.fakes.llm import OneModel
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.api

CATALOG = """
default_model = "local"

[models.local]
provider = "local"
upstream_model = "local-echo"

[models.gpt]
provider = "openai"
upstream_model = "gpt-4o-mini"
base_url = "{base}/v1"
api_key_env = "SB_TEST_OPENAI_KEY"
timeout_seconds = 2
fallbacks = ["claude"]

[models.claude]
provider = "anthropic"
upstream_model = "claude-haiku-4-5"
base_url = "{base}"
api_key_env = "SB_TEST_ANTHROPIC_KEY"
timeout_seconds = 2

[models.embed]
kind = "embedding"
provider = "openai"
upstream_model = "text-embedding-3-small"
base_url = "{base}/v1"
api_key_env = "SB_TEST_OPENAI_KEY"

[models.local-embed]
kind = "embedding"
provider = "local"
upstream_model = "local-hash-embed"
dimensions = 64
"""
WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_ANTHROPIC: dict[str, Any] = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CHAT_MODELS = ["local", "gpt", "claude"]


@dataclass
class Switchboard:
    url: str
    app: FastAPI
    key: str
    upstream: FakeUpstream


@pytest.fixture(scope="module")
async def switchboard(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Switchboard]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SB_TEST_OPENAI_KEY", "sk-test-openai-secret")
        env.setenv("SB_TEST_ANTHROPIC_KEY", "sk-ant-test-secret")
        async with FakeUpstream() as upstream:
            catalog = tmp_path_factory.mktemp("compat") / "models.toml"
            catalog.write_text(CATALOG.format(base=upstream.base_url))
            settings = make_settings(
                catalog_path=catalog,
                upstream_max_attempts=1,
                upstream_backoff_base_seconds=0.001,
                upstream_backoff_max_seconds=0.01,
            )
            app = create_app(settings)
            async with serving(app) as url:
                key = await _api_key(url)
                yield Switchboard(url=url, app=app, key=key, upstream=upstream)


async def _api_key(url: str) -> str:
    async with httpx.AsyncClient(base_url=url) as http:
        account = {"email": "sdk@example.com", "password": PASSWORD}
        assert (await http.post("/api/v1/auth/register", json=account)).status_code == 201
        token = (
            await http.post("/api/v1/auth/token", data={"username": account["email"], "password": PASSWORD})
        ).json()
        jwt = {"Authorization": f"Bearer {token['access_token']}"}
        created = await http.post("/api/v1/api-keys", json={"name": "sdk"}, headers=jwt)
        return str(created.json()["key"])


@pytest.fixture
def upstream(switchboard: Switchboard) -> FakeUpstream:
    switchboard.upstream.reset()
    return switchboard.upstream


@pytest.fixture(scope="module")
async def oai(switchboard: Switchboard) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=f"{switchboard.url}/v1", api_key=switchboard.key, max_retries=0, timeout=10)
    yield client
    await client.close()


@pytest.fixture(scope="module")
async def ant(switchboard: Switchboard) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=switchboard.url, api_key=switchboard.key, max_retries=0, timeout=10)
    yield client
    await client.close()


# ---- OpenAI SDK --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_openai_sdk_completion_from_every_provider(oai: openai.AsyncOpenAI, model: str) -> None:
    completion = await oai.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello gateway"}],
        temperature=0,
        user="end-user-1",
    )

    assert completion.model == model
    assert completion.object == "chat.completion"
    [choice] = completion.choices
    assert "hello gateway" in (choice.message.content or "")
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


@pytest.mark.parametrize("model", ["gpt", "claude"])
async def test_openai_sdk_streams_with_usage(oai: openai.AsyncOpenAI, upstream: FakeUpstream, model: str) -> None:
    upstream.push(fake.delay(0, chunk_delay=0.01))  # chunks spaced in time: each is forwarded on its own
    stream = await oai.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "one two three four"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three four"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 4
    assert {c.model for c in chunks} == {model}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert chunks[-1].choices == []
    assert usage is not None
    assert usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])
    path = "/v1/chat/completions" if model == "gpt" else "/v1/messages"
    assert upstream.last_request.path == path


@pytest.mark.parametrize("model", ["gpt", "claude", "local"])
async def test_openai_sdk_tool_round_trip(oai: openai.AsyncOpenAI, model: str) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris? CALL_TOOL"}]

    first = await oai.chat.completions.create(model=model, messages=messages, tools=[WEATHER])

    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "test"}

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 degrees"},
    ]
    final = await oai.chat.completions.create(model=model, messages=messages, tools=[WEATHER])

    assert final.choices[0].finish_reason == "stop"
    assert "sunny, 24 degrees" in (final.choices[0].message.content or "")
    assert not final.choices[0].message.tool_calls


@pytest.mark.parametrize("model", ["gpt", "claude"])
async def test_openai_sdk_streams_a_tool_call(oai: openai.AsyncOpenAI, model: str) -> None:
    async with oai.chat.completions.stream(
        model=model,
        messages=[{"role": "user", "content": "weather? CALL_TOOL"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    ) as stream:
        final = await stream.get_final_completion()

    [call] = final.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "test"}
    assert final.choices[0].finish_reason == "tool_calls"


async def test_openai_sdk_max_tokens_and_stop_give_their_finish_reasons(oai: openai.AsyncOpenAI) -> None:
    messages: Any = [{"role": "user", "content": "alpha beta gamma delta"}]
    cut = await oai.chat.completions.create(model="claude", messages=messages, max_completion_tokens=2)
    stopped = await oai.chat.completions.create(model="claude", messages=messages, stop=["gamma"])

    assert cut.choices[0].finish_reason == "length"
    assert cut.usage is not None
    assert cut.usage.completion_tokens == 2
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == "Echo: alpha beta "


@pytest.mark.parametrize(("model", "size"), [("local-embed", 64), ("embed", 1536)])
async def test_openai_sdk_embeddings(oai: openai.AsyncOpenAI, model: str, size: int) -> None:
    # The SDK asks for base64 unless told otherwise, and decodes it; ask both ways.
    default = await oai.embeddings.create(model=model, input=["the cat sat", "a dog"])
    floats = await oai.embeddings.create(model=model, input="the cat sat", encoding_format="float")

    assert default.model == model
    assert [d.index for d in default.data] == [0, 1]
    assert [len(d.embedding) for d in default.data] == [size, size]
    assert floats.data[0].embedding == pytest.approx(default.data[0].embedding, abs=1e-6)
    assert default.usage.prompt_tokens > 0
    if model == "local-embed":
        assert floats.data[0].embedding == pytest.approx(embed_text("the cat sat", 64), abs=1e-6)


async def test_openai_sdk_lists_and_retrieves_models(oai: openai.AsyncOpenAI) -> None:
    listed = [model.id async for model in oai.models.list()]
    one = await oai.models.retrieve("claude")

    assert listed == ["local", "gpt", "claude", "embed", "local-embed"]
    assert (one.id, one.object, one.owned_by) == ("claude", "model", "switchboard")
    with pytest.raises(openai.NotFoundError):
        await oai.models.retrieve("no-such-model")


async def test_openai_sdk_sees_a_wrong_key_as_authentication_error(switchboard: Switchboard) -> None:
    client = openai.AsyncOpenAI(base_url=f"{switchboard.url}/v1", api_key="sk-sb-wrong", max_retries=0)
    async with client:
        with pytest.raises(openai.AuthenticationError) as raised:
            await client.chat.completions.create(model="local", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"


async def test_openai_sdk_sees_an_unknown_model_as_not_found(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        await oai.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.code == "model_not_found"
    assert raised.value.param == "model"
    with pytest.raises(openai.NotFoundError):
        await oai.embeddings.create(model="gpt", input="a chat model cannot embed")


async def test_openai_sdk_sees_a_bad_request_as_bad_request_error(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        await oai.chat.completions.create(model="local", messages=[{"role": "user", "content": "hi"}], temperature=5)
    assert raised.value.param == "temperature"


async def test_openai_sdk_gets_the_fallbacks_answer_when_the_model_is_down(
    oai: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    upstream.fail_model("gpt-4o-mini", 503)

    completion = await oai.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "still there?"}])

    assert completion.choices[0].message.content == "Echo: still there?"
    assert [r.path for r in upstream.requests] == ["/v1/chat/completions", "/v1/messages"]


async def test_openai_sdk_raises_when_the_upstream_breaks_mid_stream(
    oai: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    upstream.push(fake.drop_stream_after(3))
    stream = await oai.chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": "one two three four five"}], stream=True
    )
    received: list[str] = []

    async def read() -> None:
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError, match="cut the response short"):
        await read()
    assert "".join(received).startswith("Echo:")


# ---- Anthropic SDK -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_anthropic_sdk_message_from_every_provider(ant: anthropic.AsyncAnthropic, model: str) -> None:
    message = await ant.messages.create(
        model=model,
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello gateway"}],
        metadata={"user_id": "end-user-1"},
    )

    assert message.model == model
    assert message.role == "assistant"
    [block] = message.content
    assert block.type == "text"
    assert "hello gateway" in block.text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["claude", "gpt"])
async def test_anthropic_sdk_streams_its_event_sequence(
    ant: anthropic.AsyncAnthropic, upstream: FakeUpstream, model: str
) -> None:
    upstream.push(fake.delay(0, chunk_delay=0.01))  # chunks spaced in time: each is forwarded on its own
    async with ant.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "one two three four"}]
    ) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()

    assert "".join(texts) == "Echo: one two three four"
    assert len(texts) >= 4
    assert final.model == model
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 5
    assert final.usage.input_tokens == 4
    path = "/v1/chat/completions" if model == "gpt" else "/v1/messages"
    assert upstream.last_request.path == path


@pytest.mark.parametrize("model", ["gpt", "claude", "local"])
async def test_anthropic_sdk_tool_round_trip(ant: anthropic.AsyncAnthropic, model: str) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris? CALL_TOOL"}]

    first = await ant.messages.create(model=model, max_tokens=100, messages=messages, tools=[WEATHER_ANTHROPIC])

    assert first.stop_reason == "tool_use"
    [call] = [block for block in first.content if block.type == "tool_use"]
    assert call.name == "get_weather"
    assert call.input == {"city": "test"}

    messages += [
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 24 degrees"}]},
    ]
    final = await ant.messages.create(model=model, max_tokens=100, messages=messages, tools=[WEATHER_ANTHROPIC])

    assert final.stop_reason == "end_turn"
    assert final.content[0].type == "text"
    assert "sunny, 24 degrees" in final.content[0].text


@pytest.mark.parametrize("model", ["gpt", "claude"])
async def test_anthropic_sdk_streams_a_tool_call(ant: anthropic.AsyncAnthropic, model: str) -> None:
    async with ant.messages.stream(
        model=model,
        max_tokens=100,
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_ANTHROPIC],
        tool_choice={"type": "any"},
    ) as stream:
        final = await stream.get_final_message()

    assert final.stop_reason == "tool_use"
    [call] = final.content
    assert call.type == "tool_use"
    assert (call.name, call.input) == ("get_weather", {"city": "test"})


async def test_anthropic_sdk_max_tokens_and_stop_sequences_give_their_stop_reasons(
    ant: anthropic.AsyncAnthropic,
) -> None:
    messages: Any = [{"role": "user", "content": "alpha beta gamma delta"}]
    cut = await ant.messages.create(model="gpt", max_tokens=2, messages=messages)
    stopped = await ant.messages.create(model="claude", max_tokens=50, messages=messages, stop_sequences=["gamma"])

    assert cut.stop_reason == "max_tokens"
    assert cut.usage.output_tokens == 2
    assert stopped.stop_reason == "stop_sequence"
    assert stopped.stop_sequence == "gamma"


async def test_anthropic_sdk_lists_models(ant: anthropic.AsyncAnthropic) -> None:
    listed = [model.id async for model in ant.models.list()]
    one = await ant.models.retrieve("gpt")

    assert listed == ["local", "gpt", "claude"]  # chat models only: the Messages API cannot call an embedder
    assert (one.id, one.type, one.display_name) == ("gpt", "model", "gpt")


async def test_anthropic_sdk_errors_are_its_usual_classes(
    switchboard: Switchboard, ant: anthropic.AsyncAnthropic
) -> None:
    wrong = anthropic.AsyncAnthropic(base_url=switchboard.url, api_key="sk-sb-wrong", max_retries=0)
    async with wrong:
        with pytest.raises(anthropic.AuthenticationError) as unauthenticated:
            await wrong.messages.create(model="local", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.NotFoundError) as not_found:
        await ant.messages.create(model="claude-9", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.BadRequestError) as bad:
        await ant.messages.create(model="local", max_tokens=0, messages=[{"role": "user", "content": "hi"}])

    assert unauthenticated.value.type == "authentication_error"
    assert not_found.value.type == "not_found_error"
    assert bad.value.type == "invalid_request_error"
    assert not_found.value.request_id == not_found.value.response.headers["x-request-id"]


async def test_anthropic_sdk_sees_an_unavailable_model_as_overloaded(
    ant: anthropic.AsyncAnthropic, upstream: FakeUpstream
) -> None:
    upstream.fail_model("claude-haiku-4-5", 503)
    with pytest.raises(anthropic.OverloadedError) as raised:
        await ant.messages.create(model="claude", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 529


async def test_anthropic_sdk_raises_when_the_upstream_breaks_mid_stream(
    ant: anthropic.AsyncAnthropic, upstream: FakeUpstream
) -> None:
    upstream.push(fake.stream_error_after(4))
    received: list[str] = []

    async def read() -> None:
        messages: Any = [{"role": "user", "content": "one two three four five"}]
        async with ant.messages.stream(model="gpt", max_tokens=100, messages=messages) as stream:
            async for text in stream.text_stream:
                received.append(text)

    with pytest.raises(anthropic.APIStatusError) as raised:
        await read()
    assert raised.value.type == "overloaded_error"
    assert "".join(received).startswith("Echo:")


async def test_the_anthropic_x_api_key_header_is_accepted(switchboard: Switchboard) -> None:
    body = {"model": "local", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=switchboard.url) as http:
        good = await http.post("/v1/messages", json=body, headers={"x-api-key": switchboard.key})
        bad = await http.post("/v1/messages", json=body, headers={"x-api-key": "sk-sb-wrong"})
        missing = await http.post("/v1/messages", json=body)

    assert good.status_code == 200
    assert good.json()["type"] == "message"
    for refused in (bad, missing):
        assert refused.status_code == 401
        assert refused.json()["type"] == "error"
        assert refused.json()["error"]["type"] == "authentication_error"


class EndlessProvider(LLMProvider):
    """Talks until told to stop; says when its stream was closed."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def complete(self, request: CompletionRequest) -> Completion:
        raise NotImplementedError

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        try:
            while True:
                yield TextDelta("word ")
                await asyncio.sleep(0.01)
        finally:
            self.closed.set()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "local", "stream": True, "messages": [{"role": "user", "content": "hi"}]}),
        (
            "/v1/messages",
            {"model": "local", "stream": True, "max_tokens": 9, "messages": [{"role": "user", "content": "x"}]},
        ),
    ],
)
async def test_a_client_leaving_mid_stream_closes_the_upstream_call(
    switchboard: Switchboard, path: str, body: dict[str, Any]
) -> None:
    provider = EndlessProvider()
    headers = {"Authorization": f"Bearer {switchboard.key}"}
    container = switchboard.app.state.container
    model_call = ModelCall(models=OneModel(provider), catalog=container.catalog())
    with container.model_call.override(providers.Object(model_call)):
        async with (
            httpx.AsyncClient(base_url=switchboard.url) as http,
            http.stream("POST", path, json=body, headers=headers) as response,
        ):
            assert response.status_code == 200
            async for chunk in response.aiter_text():
                if "word" in chunk:
                    break
        await asyncio.wait_for(provider.closed.wait(), 5)
