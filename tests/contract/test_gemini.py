"""What the Gemini adapter sends (the model in the path, the key in a header, never the URL; system instruction,
merged turns, function declarations and responses, the generation config, a JSON schema) and how it reads usage.
Against the fake upstream on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from domain.llm.model import (
    ChatMessage,
    ChatRole,
    ResponseFormat,
    ResponseFormatType,
    ToolChoice,
    ToolChoiceMode,
)
from domain.shared.errors import ContextTooLong, UpstreamRateLimited
from infrastructure.llm.gemini import GeminiProvider
from tests.contract.test_llm_providers import (
    CALL,
    HELLO,
    SECRET,
    TOOL_CONVERSATION,
    collect,
    gemini_spec,
    gemini_transport,
)
from tests.fakes.upstream import FakeUpstream, context_length_exceeded, ok, rate_limited

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
async def fake_server() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
def upstream(fake_server: FakeUpstream) -> FakeUpstream:
    fake_server.reset()
    return fake_server


@pytest.fixture
async def adapter(upstream: FakeUpstream) -> AsyncIterator[GeminiProvider]:
    built = GeminiProvider(gemini_spec(max_output_tokens=40), transport=gemini_transport(upstream), api_key=SECRET)
    yield built
    await built.aclose()


async def test_the_model_goes_in_the_path_and_the_key_in_a_header(
    adapter: GeminiProvider, upstream: FakeUpstream
) -> None:
    await adapter.complete(HELLO)
    await collect(adapter.stream(HELLO))

    whole, streamed = upstream.requests
    assert whole.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert (streamed.path, streamed.query) == ("/v1beta/models/gemini-2.5-flash:streamGenerateContent", "alt=sse")
    for sent in upstream.requests:
        assert sent.headers["x-goog-api-key"] == SECRET
        assert SECRET not in sent.query


async def test_tools_calls_results_choice_and_schema_in_gemini_terms(
    adapter: GeminiProvider, upstream: FakeUpstream
) -> None:
    request = replace(TOOL_CONVERSATION, temperature=0.3, top_p=0.8, stop=("END",), max_tokens=12)
    await adapter.complete(request)

    sent = upstream.last_request.json
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent["contents"] == [
        {"role": "user", "parts": [{"text": "weather in Paris?"}]},
        {
            "role": "model",
            "parts": [{"text": "Let me look."}, {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": CALL.name, "response": {"result": "sunny"}}},
                {"text": "and tomorrow?"},
            ],
        },
    ]
    declarations = sent["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declarations] == ["get_weather", "get_time"]
    assert declarations[0]["parametersJsonSchema"]["required"] == ["city"]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert sent["generationConfig"] == {
        "maxOutputTokens": 12,
        "temperature": 0.3,
        "topP": 0.8,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
    }


async def test_one_named_tool_is_any_with_its_name_allowed(adapter: GeminiProvider, upstream: FakeUpstream) -> None:
    forced = replace(TOOL_CONVERSATION, tool_choice=ToolChoice(mode=ToolChoiceMode.REQUIRED, name="get_time"))
    completion = await adapter.complete(replace(forced, messages=HELLO.messages, response_format=None))

    config = upstream.last_request.json["toolConfig"]["functionCallingConfig"]
    assert config == {"mode": "ANY", "allowedFunctionNames": ["get_time"]}
    assert [(c.name, json.loads(c.arguments)) for c in completion.tool_calls] == [("get_time", {})]
    assert completion.tool_calls[0].id  # Gemini sends none: the adapter numbers them


async def test_a_bare_json_object_format_asks_for_json_without_a_schema(
    adapter: GeminiProvider, upstream: FakeUpstream
) -> None:
    await adapter.complete(replace(HELLO, response_format=ResponseFormat(type=ResponseFormatType.JSON_OBJECT)))

    config = upstream.last_request.json["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "responseJsonSchema" not in config


async def test_cached_content_counts_as_cache_reads_within_the_prompt(
    adapter: GeminiProvider, upstream: FakeUpstream
) -> None:
    upstream.push(ok(cached_tokens=7), ok(cached_tokens=7))
    completion = await adapter.complete(HELLO)
    _, ends = await collect(adapter.stream(HELLO))

    for usage in (completion.usage, ends[0].completion.usage):
        assert (usage.input_tokens, usage.cached_tokens) == (5 + 7, 7)


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [(context_length_exceeded(), ContextTooLong), (rate_limited(retry_after=3), UpstreamRateLimited)],
)
async def test_googles_errors_map_to_the_domains(
    adapter: GeminiProvider, upstream: FakeUpstream, behaviour: object, expected: type[Exception]
) -> None:
    upstream.push(behaviour)  # type: ignore[arg-type]
    with pytest.raises(expected):
        await adapter.complete(replace(HELLO, messages=(ChatMessage(ChatRole.USER, "long"),)))
