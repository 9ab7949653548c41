"""The LLMProvider port, one contract run against every adapter; then what each adapter sends and how it fails.

The OpenAI and Anthropic adapters run twice, once per client (``direct``: pooled aiohttp; ``sdk``: the official
SDK), against the fake upstream on loopback: nothing is mocked, and no real provider is ever called. Both clients
must send the same requests and fail the same way.
"""

from __future__ import annotations

import abc
import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest
from botocore.credentials import Credentials

from domain.llm.model import (
    ChatMessage,
    ChatRole,
    Completion,
    CompletionRequest,
    FinishReason,
    ModelSpec,
    ResponseFormat,
    ResponseFormatType,
    StreamEnd,
    StreamOpened,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
    UpstreamEvent,
    partial_completion,
)
from domain.llm.ports import LLMProvider
from domain.shared.errors import (
    ContextTooLong,
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from infrastructure.llm.anthropic import AnthropicBase, AnthropicProvider
from infrastructure.llm.anthropic_sdk import AnthropicSDKProvider
from infrastructure.llm.azure_openai import AzureOpenAIProvider
from infrastructure.llm.bedrock import BedrockProvider
from infrastructure.llm.gemini import GeminiProvider
from infrastructure.llm.local import LocalProvider
from infrastructure.llm.openai import NO_KEY, OpenAIBase, OpenAIProvider
from infrastructure.llm.openai_sdk import OpenAISDKProvider
from infrastructure.llm.transport import Transport
from tests.fakes.upstream import (
    Behaviour,
    FakeUpstream,
    auth_error,
    context_length_exceeded,
    delay,
    disconnect,
    drop_stream_after,
    error,
    hang,
    html_error,
    malformed,
    missing_fields,
    ok,
    overloaded,
    rate_limited,
    redirect,
    server_error,
    stream_error_after,
)
from tests.fakes.upstream.bedrock_routes import ACCESS_KEY as BEDROCK_ACCESS_KEY
from tests.fakes.upstream.bedrock_routes import REGION as BEDROCK_REGION
from tests.fakes.upstream.bedrock_routes import SECRET_KEY as BEDROCK_SECRET_KEY

pytestmark = pytest.mark.contract

SECRET = "sk-test-0123456789abcdef"


def ask(*turns: tuple[ChatRole, str], **options: object) -> CompletionRequest:
    messages = tuple(ChatMessage(role, text) for role, text in turns)
    return CompletionRequest(model="m", messages=messages, **options)  # type: ignore[arg-type]


HELLO = ask((ChatRole.USER, "hello there my dear friend"))
WEATHER = ToolDefinition(
    name="get_weather",
    description="The weather in a city",
    parameters_json='{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},'
    '"required":["city"]}',
)
CLOCK = ToolDefinition(name="get_time", parameters_json='{"type":"object","properties":{}}')
# Both the local model and the fake upstream call the first tool when the user says CALL_TOOL.
WANTS_TOOL = replace(ask((ChatRole.USER, "what is the weather in Paris? CALL_TOOL")), tools=(WEATHER, CLOCK))


def answered(request: CompletionRequest, call: ToolCall, result: str) -> CompletionRequest:
    """``request`` continued with the assistant's tool call and the tool's result."""
    turns = (
        ChatMessage(ChatRole.ASSISTANT, "", tool_calls=(call,)),
        ChatMessage(ChatRole.TOOL, result, tool_call_id=call.id),
    )
    return replace(request, messages=(*request.messages, *turns))


async def collect(
    events: AsyncIterator[UpstreamEvent], deltas: list[TextDelta] | None = None
) -> tuple[list[TextDelta], list[StreamEnd]]:
    """Drains an adapter's stream, checking it opens with one ``StreamOpened`` before anything else and nothing
    follows its end; ``deltas`` keeps what came before a failure."""
    deltas = [] if deltas is None else deltas
    ends: list[StreamEnd] = []
    opened = False
    async for event in events:
        assert not ends, "nothing may follow the StreamEnd"
        if isinstance(event, StreamOpened):
            assert not opened, "a stream opens once"
            opened = True
            continue
        assert opened, f"{event!r} came before the StreamOpened"
        if isinstance(event, TextDelta):
            deltas.append(event)
        else:
            ends.append(event)
    return deltas, ends


OPENAI_CLIENTS: dict[str, type[OpenAIBase]] = {"direct": OpenAIProvider, "sdk": OpenAISDKProvider}
ANTHROPIC_CLIENTS: dict[str, type[AnthropicBase]] = {"direct": AnthropicProvider, "sdk": AnthropicSDKProvider}


@pytest.fixture(params=["direct", "sdk"])
def client(request: pytest.FixtureRequest) -> str:
    """Which client the OpenAI and Anthropic adapters of a test use."""
    return str(request.param)


@pytest.fixture(scope="module")
async def fake_server() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
def upstream(fake_server: FakeUpstream) -> FakeUpstream:
    fake_server.reset()
    return fake_server


def openai_spec(**changes: object) -> ModelSpec:
    spec = ModelSpec(name="m", provider="openai", upstream_model="gpt-4o-mini", max_output_tokens=64)
    return replace(spec, **changes)  # type: ignore[arg-type]


def anthropic_spec(**changes: object) -> ModelSpec:
    spec = ModelSpec(name="m", provider="anthropic", upstream_model="claude-haiku-4-5", max_output_tokens=64)
    return replace(spec, **changes)  # type: ignore[arg-type]


def azure_spec(**changes: object) -> ModelSpec:
    spec = ModelSpec(name="m", provider="azure_openai", upstream_model="gpt-4o-mini", max_output_tokens=64)
    return replace(spec, **changes)  # type: ignore[arg-type]


def azure_transport(up: FakeUpstream, timeout: float = 2.0, **changes: object) -> Transport:
    transport = Transport(
        base_url=up.base_url, api_key_env="AZURE_OPENAI_API_KEY", timeout_seconds=timeout, auth="api-key"
    )
    return replace(transport, **changes)  # type: ignore[arg-type]


def gemini_spec(**changes: object) -> ModelSpec:
    spec = ModelSpec(name="m", provider="gemini", upstream_model="gemini-2.5-flash", max_output_tokens=64)
    return replace(spec, **changes)  # type: ignore[arg-type]


def gemini_transport(up: FakeUpstream, timeout: float = 2.0) -> Transport:
    return Transport(base_url=f"{up.base_url}/v1beta", api_key_env="GEMINI_API_KEY", timeout_seconds=timeout)


def bedrock_adapter(up: FakeUpstream, timeout: float = 2.0, **changes: object) -> BedrockProvider:
    spec = ModelSpec(
        name="m", provider="bedrock", upstream_model="anthropic.claude-3-5-haiku-20241022-v1:0", max_output_tokens=64
    )
    return BedrockProvider(
        replace(spec, **changes),  # type: ignore[arg-type]
        transport=Transport(base_url=up.base_url, timeout_seconds=timeout, region=BEDROCK_REGION),
        credentials=Credentials(BEDROCK_ACCESS_KEY, BEDROCK_SECRET_KEY),
        region=BEDROCK_REGION,
    )


def openai_transport(up: FakeUpstream, timeout: float = 2.0) -> Transport:
    return Transport(base_url=f"{up.base_url}/v1", api_key_env="OPENAI_API_KEY", timeout_seconds=timeout)


def anthropic_transport(up: FakeUpstream, timeout: float = 2.0) -> Transport:
    return Transport(base_url=up.base_url, api_key_env="ANTHROPIC_API_KEY", timeout_seconds=timeout)


# ---- the contract ------------------------------------------------------------------------------------------------


class LLMProviderContract(abc.ABC):
    """What every LLMProvider promises. Subclasses provide the ``provider`` fixture."""

    @abc.abstractmethod
    def provider(self) -> LLMProvider: ...

    async def test_complete_returns_content_usage_finish_reason_and_served_by(self, provider: LLMProvider) -> None:
        completion = await provider.complete(HELLO)

        assert "hello there my dear friend" in completion.content
        assert completion.finish_reason is FinishReason.STOP
        assert completion.usage.input_tokens > 0
        assert completion.usage.output_tokens > 0
        assert not completion.usage.estimated
        assert completion.served_by.model == "m"
        assert completion.served_by.upstream_model

    async def test_stream_yields_deltas_then_exactly_one_end_whose_content_is_the_deltas(
        self, provider: LLMProvider
    ) -> None:
        deltas, ends = await collect(provider.stream(HELLO))

        assert deltas
        assert len(ends) == 1
        completion = ends[0].completion
        assert completion.content == "".join(d.text for d in deltas)
        assert completion.finish_reason is FinishReason.STOP
        assert completion.usage.output_tokens > 0
        assert completion.served_by.model == "m"

    async def test_stream_and_complete_agree(self, provider: LLMProvider) -> None:
        completion = await provider.complete(HELLO)
        _, ends = await collect(provider.stream(HELLO))

        assert ends[0].completion.content == completion.content
        assert ends[0].completion.usage.input_tokens == completion.usage.input_tokens

    async def test_max_tokens_cuts_the_answer_with_finish_reason_length(self, provider: LLMProvider) -> None:
        short = replace(HELLO, max_tokens=2)

        completion = await provider.complete(short)
        _, ends = await collect(provider.stream(short))

        assert completion.finish_reason is FinishReason.LENGTH
        assert ends[0].completion.finish_reason is FinishReason.LENGTH
        assert len(completion.content) < len((await provider.complete(HELLO)).content)

    async def test_system_prompt_is_sent_to_the_model(self, provider: LLMProvider) -> None:
        with_system = ask((ChatRole.SYSTEM, "you answer in five long careful words"), (ChatRole.USER, "hi"))
        without = ask((ChatRole.USER, "hi"))

        assert (await provider.complete(with_system)).usage.input_tokens > (
            await provider.complete(without)
        ).usage.input_tokens

    async def test_stop_sequence_ends_the_answer_before_it(self, provider: LLMProvider) -> None:
        completion = await provider.complete(replace(HELLO, stop=("dear",)))

        assert "dear" not in completion.content
        assert "hello" in completion.content
        assert completion.finish_reason is FinishReason.STOP

    async def test_a_stream_closed_early_ends_cleanly(self, provider: LLMProvider) -> None:
        events = provider.stream(HELLO)
        assert isinstance(await anext(events), StreamOpened)
        assert isinstance(await anext(events), TextDelta)

        await asyncio.wait_for(events.aclose(), 1)  # type: ignore[attr-defined]

    async def test_a_tool_round_trip_calls_the_tool_then_answers_from_its_result(self, provider: LLMProvider) -> None:
        first = await provider.complete(WANTS_TOOL)

        assert first.finish_reason is FinishReason.TOOL_CALLS
        [call] = first.tool_calls
        assert call.name == "get_weather"
        assert call.id
        arguments = json.loads(call.arguments)  # an example of the schema: its required properties at least
        assert arguments["city"] == "test"
        assert set(arguments) <= {"city", "days"}

        second = await provider.complete(answered(WANTS_TOOL, call, "sunny and 24 degrees"))

        assert second.finish_reason is FinishReason.STOP
        assert second.tool_calls == ()
        assert "sunny and 24 degrees" in second.content

    async def test_a_streamed_tool_call_comes_in_deltas_that_join_to_the_call(self, provider: LLMProvider) -> None:
        events = [event async for event in provider.stream(WANTS_TOOL)]

        deltas = [e for e in events if isinstance(e, ToolCallDelta)]
        assert not any(isinstance(e, TextDelta) and e.text for e in events)
        end = events[-1]
        assert isinstance(end, StreamEnd)
        [call] = end.completion.tool_calls
        assert end.completion.finish_reason is FinishReason.TOOL_CALLS
        assert (deltas[0].index, deltas[0].id, deltas[0].name) == (0, call.id, "get_weather")
        assert all(d.id is None and d.index == 0 for d in deltas[1:])
        assert "".join(d.arguments for d in deltas) == call.arguments

    async def test_tool_choice_forces_a_tool_or_forbids_any(self, provider: LLMProvider) -> None:
        plain = replace(WANTS_TOOL, messages=HELLO.messages)
        forced = await provider.complete(
            replace(plain, tool_choice=ToolChoice(mode=ToolChoiceMode.REQUIRED, name="get_time"))
        )
        required = await provider.complete(replace(plain, tool_choice=ToolChoice(mode=ToolChoiceMode.REQUIRED)))
        forbidden = await provider.complete(replace(WANTS_TOOL, tool_choice=ToolChoice(mode=ToolChoiceMode.NONE)))

        assert [(c.name, c.arguments) for c in forced.tool_calls] == [("get_time", "{}")]
        assert [c.name for c in required.tool_calls] == ["get_weather"]
        assert forbidden.tool_calls == ()
        assert forbidden.finish_reason is FinishReason.STOP


class TestLocalProvider(LLMProviderContract):
    @pytest.fixture
    def provider(self) -> LLMProvider:
        return LocalProvider(ModelSpec(name="m", provider="local", upstream_model="local-echo"))


class TestOpenAIProvider(LLMProviderContract):
    @pytest.fixture
    async def provider(self, upstream: FakeUpstream, client: str) -> AsyncIterator[LLMProvider]:
        adapter = OPENAI_CLIENTS[client](openai_spec(), transport=openai_transport(upstream), api_key=SECRET)
        yield adapter
        await adapter.aclose()


class TestOpenAICompatibleProvider(LLMProviderContract):
    @pytest.fixture
    async def provider(self, upstream: FakeUpstream, client: str) -> AsyncIterator[LLMProvider]:
        spec = openai_spec(provider="openai_compatible", upstream_model="llama3")
        adapter = OPENAI_CLIENTS[client](spec, transport=replace(openai_transport(upstream), api_key_env=None))
        yield adapter
        await adapter.aclose()


class TestAzureOpenAIProvider(LLMProviderContract):
    @pytest.fixture
    async def provider(self, upstream: FakeUpstream) -> AsyncIterator[LLMProvider]:
        adapter = AzureOpenAIProvider(azure_spec(), transport=azure_transport(upstream), api_key=SECRET)
        yield adapter
        await adapter.aclose()


class TestGeminiProvider(LLMProviderContract):
    @pytest.fixture
    async def provider(self, upstream: FakeUpstream) -> AsyncIterator[LLMProvider]:
        adapter = GeminiProvider(gemini_spec(), transport=gemini_transport(upstream), api_key=SECRET)
        yield adapter
        await adapter.aclose()


class TestBedrockProvider(LLMProviderContract):
    @pytest.fixture
    async def provider(self, upstream: FakeUpstream) -> AsyncIterator[LLMProvider]:
        adapter = bedrock_adapter(upstream)
        yield adapter
        await adapter.aclose()


class TestAnthropicProvider(LLMProviderContract):
    @pytest.fixture
    async def provider(self, upstream: FakeUpstream, client: str) -> AsyncIterator[LLMProvider]:
        adapter = ANTHROPIC_CLIENTS[client](anthropic_spec(), transport=anthropic_transport(upstream), api_key=SECRET)
        yield adapter
        await adapter.aclose()


# ---- what the adapters send ------------------------------------------------------------------------------------

CONVERSATION = ask(
    (ChatRole.SYSTEM, "Be brief."),
    (ChatRole.USER, "first"),
    (ChatRole.USER, "second"),
    (ChatRole.ASSISTANT, "an answer"),
    (ChatRole.SYSTEM, "Be kind."),
    (ChatRole.USER, "third"),
    temperature=0.5,
    top_p=0.9,
    stop=("END",),
)


async def test_openai_sends_the_upstream_model_the_key_and_every_option(upstream: FakeUpstream, client: str) -> None:
    adapter = OPENAI_CLIENTS[client](openai_spec(), transport=openai_transport(upstream), api_key=SECRET)
    try:
        await adapter.complete(replace(CONVERSATION, max_tokens=7))
    finally:
        await adapter.aclose()

    sent = upstream.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.model == "gpt-4o-mini"
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert sent.json["messages"][0] == {"role": "system", "content": "Be brief."}
    assert [m["role"] for m in sent.json["messages"]] == ["system", "user", "user", "assistant", "system", "user"]
    assert sent.json["max_completion_tokens"] == 7
    assert "max_tokens" not in sent.json
    assert sent.json["temperature"] == 0.5
    assert sent.json["top_p"] == 0.9
    assert sent.json["stop"] == ["END"]
    if client == "sdk":
        assert sent.headers["x-stainless-retry-count"] == "0"  # the SDK's own retries are off


async def test_openai_stream_asks_for_usage(upstream: FakeUpstream, client: str) -> None:
    adapter = OPENAI_CLIENTS[client](openai_spec(), transport=openai_transport(upstream), api_key=SECRET)
    try:
        await collect(adapter.stream(HELLO))
    finally:
        await adapter.aclose()

    assert upstream.last_request.json["stream"] is True
    assert upstream.last_request.json["stream_options"] == {"include_usage": True}


async def test_openai_compatible_sends_max_tokens_and_never_the_process_openai_key(
    upstream: FakeUpstream, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-real-openai-key")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    spec = openai_spec(provider="openai_compatible", upstream_model="llama3")
    adapter = OPENAI_CLIENTS[client](spec, transport=replace(openai_transport(upstream), api_key_env=None))
    try:
        await adapter.complete(replace(HELLO, max_tokens=5))
    finally:
        await adapter.aclose()

    sent = upstream.last_request
    assert sent.api_key == NO_KEY
    assert sent.json["max_tokens"] == 5
    assert "max_completion_tokens" not in sent.json


async def test_openai_reports_cached_prompt_tokens_within_the_input(upstream: FakeUpstream, client: str) -> None:
    upstream.push(ok(cached_tokens=3), ok(cached_tokens=3))
    adapter = OPENAI_CLIENTS[client](openai_spec(), transport=openai_transport(upstream), api_key=SECRET)
    try:
        completion = await adapter.complete(HELLO)
        _, ends = await collect(adapter.stream(HELLO))
    finally:
        await adapter.aclose()

    for usage in (completion.usage, ends[0].completion.usage):
        assert usage.cached_tokens == 3
        assert usage.input_tokens == 5 + 3


async def test_anthropic_puts_system_on_top_merges_turns_and_always_sends_max_tokens(
    upstream: FakeUpstream, client: str
) -> None:
    adapter = ANTHROPIC_CLIENTS[client](
        anthropic_spec(max_output_tokens=33), transport=anthropic_transport(upstream), api_key=SECRET
    )
    try:
        await adapter.complete(CONVERSATION)
    finally:
        await adapter.aclose()

    sent = upstream.last_request
    assert sent.path == "/v1/messages"
    assert sent.model == "claude-haiku-4-5"
    assert sent.api_key == SECRET  # this SDK sends it as a bearer token
    assert sent.json["system"] == "Be brief.\n\nBe kind."
    assert sent.json["messages"] == [
        {"role": "user", "content": "first\n\nsecond"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": "third"},
    ]
    assert sent.json["max_tokens"] == 33
    assert sent.json["stop_sequences"] == ["END"]
    assert sent.json["temperature"] == 0.5
    assert sent.json["top_p"] == 0.9


CALL = ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}')
TOOL_CONVERSATION = replace(
    ask((ChatRole.SYSTEM, "Be brief."), (ChatRole.USER, "weather in Paris?")),
    tools=(WEATHER, CLOCK),
    tool_choice=ToolChoice(mode=ToolChoiceMode.REQUIRED, parallel=False),
    response_format=ResponseFormat(
        type=ResponseFormatType.JSON_SCHEMA, name="answer", schema_json='{"type":"object"}', strict=True
    ),
    user="end-user-42",
)
TOOL_CONVERSATION = replace(
    TOOL_CONVERSATION,
    messages=(
        *TOOL_CONVERSATION.messages,
        ChatMessage(ChatRole.ASSISTANT, "Let me look.", tool_calls=(CALL,)),
        ChatMessage(ChatRole.TOOL, "sunny", tool_call_id="call_1"),
        ChatMessage(ChatRole.USER, "and tomorrow?"),
    ),
)


async def test_openai_sends_tools_calls_results_choice_format_and_user(upstream: FakeUpstream, client: str) -> None:
    adapter = OPENAI_CLIENTS[client](openai_spec(), transport=openai_transport(upstream), api_key=SECRET)
    try:
        await adapter.complete(TOOL_CONVERSATION)
    finally:
        await adapter.aclose()

    sent = upstream.last_request.json
    assert sent["tools"][0] == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": json.loads(WEATHER.parameters_json),
        },
    }
    assert sent["tools"][1] == {
        "type": "function",
        "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
    }
    assert sent["tool_choice"] == "required"
    assert sent["parallel_tool_calls"] is False
    assert sent["messages"][2:] == [
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "user", "content": "and tomorrow?"},
    ]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
    }
    assert sent["user"] == "end-user-42"


async def test_anthropic_sends_tool_use_and_tool_result_blocks_choice_format_and_user(
    upstream: FakeUpstream, client: str
) -> None:
    adapter = ANTHROPIC_CLIENTS[client](anthropic_spec(), transport=anthropic_transport(upstream), api_key=SECRET)
    try:
        await adapter.complete(
            replace(
                TOOL_CONVERSATION, tool_choice=ToolChoice(mode=ToolChoiceMode.REQUIRED, name="get_time", parallel=False)
            )
        )
    finally:
        await adapter.aclose()

    sent = upstream.last_request.json
    assert sent["system"] == "Be brief."
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "The weather in a city",
            "input_schema": json.loads(WEATHER.parameters_json),
        },
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert sent["tool_choice"] == {"type": "tool", "name": "get_time", "disable_parallel_tool_use": True}
    assert sent["messages"] == [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                {"type": "text", "text": "and tomorrow?"},
            ],
        },
    ]
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    assert sent["metadata"] == {"user_id": "end-user-42"}


async def test_anthropic_refuses_tool_call_arguments_that_are_not_a_json_object(
    upstream: FakeUpstream, client: str
) -> None:
    bad = replace(CALL, arguments="[1, 2]")
    request = replace(
        TOOL_CONVERSATION,
        messages=(*TOOL_CONVERSATION.messages[:2], ChatMessage(ChatRole.ASSISTANT, "", tool_calls=(bad,))),
    )
    adapter = ANTHROPIC_CLIENTS[client](anthropic_spec(), transport=anthropic_transport(upstream), api_key=SECRET)
    try:
        with pytest.raises(UpstreamRejected, match="not a JSON object"):
            await adapter.complete(request)
    finally:
        await adapter.aclose()
    assert upstream.requests == []


async def test_anthropic_counts_cache_reads_and_writes_as_input(upstream: FakeUpstream, client: str) -> None:
    upstream.push(ok(cached_tokens=3, cache_creation_tokens=2), ok(cached_tokens=3, cache_creation_tokens=2))
    adapter = ANTHROPIC_CLIENTS[client](anthropic_spec(), transport=anthropic_transport(upstream), api_key=SECRET)
    try:
        completion = await adapter.complete(HELLO)
        _, ends = await collect(adapter.stream(HELLO))
    finally:
        await adapter.aclose()

    for usage in (completion.usage, ends[0].completion.usage):
        assert usage.cached_tokens == 3
        assert usage.input_tokens == 5 + 3 + 2


# ---- how they fail ---------------------------------------------------------------------------------------------

Factory = Callable[[FakeUpstream, float], LLMProvider]
ADAPTERS: dict[str, Factory] = {
    f"{provider}-{client}": (
        lambda up, timeout, make=make, spec=spec, transport=transport: make(
            spec(), transport=transport(up, timeout), api_key=SECRET
        )
    )
    for provider, clients, spec, transport in (
        ("openai", OPENAI_CLIENTS, openai_spec, openai_transport),
        ("anthropic", ANTHROPIC_CLIENTS, anthropic_spec, anthropic_transport),
    )
    for client, make in clients.items()
} | {
    "azure_openai-direct": lambda up, timeout: AzureOpenAIProvider(
        azure_spec(), transport=azure_transport(up, timeout), api_key=SECRET
    ),
    "bedrock-direct": lambda up, timeout: bedrock_adapter(up, timeout),
    "gemini-direct": lambda up, timeout: GeminiProvider(
        gemini_spec(), transport=gemini_transport(up, timeout), api_key=SECRET
    ),
}


@pytest.fixture(params=sorted(ADAPTERS))
async def adapter(request: pytest.FixtureRequest, upstream: FakeUpstream) -> AsyncIterator[LLMProvider]:
    """A short timeout where the upstream will hang (the test waits it out), else one a loaded machine keeps."""
    behaviour = getattr(request.node, "callspec", None) and request.node.callspec.params.get("behaviour")
    hangs = isinstance(behaviour, Behaviour) and behaviour.kind == "hang"
    built = ADAPTERS[request.param](upstream, 0.3 if hangs else 2.0)
    yield built
    await built.aclose()


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        pytest.param(server_error(500), UpstreamUnavailable, id="500"),
        pytest.param(server_error(503), UpstreamUnavailable, id="503"),
        pytest.param(overloaded(), UpstreamUnavailable, id="529-overloaded"),
        pytest.param(context_length_exceeded(), ContextTooLong, id="400-context-length"),
        pytest.param(error(400, message="bad temperature"), UpstreamRejected, id="400-other"),
        pytest.param(error(404), UpstreamRejected, id="404"),
        pytest.param(auth_error(), UpstreamAuthError, id="401"),
        pytest.param(error(403), UpstreamAuthError, id="403"),
        pytest.param(malformed(), UpstreamBadResponse, id="malformed-json"),
        pytest.param(missing_fields(), UpstreamBadResponse, id="missing-fields"),
        pytest.param(html_error(502), UpstreamBadResponse, id="html-error-page"),
        pytest.param(redirect("http://127.0.0.1:9/elsewhere"), UpstreamBadResponse, id="redirect"),
        pytest.param(disconnect(), UpstreamUnavailable, id="connection-dropped"),
        # Without streaming the SDK reads the body within the send: a cut body looks like a lost connection.
        pytest.param(drop_stream_after(1), UpstreamUnavailable, id="body-cut-short"),
        pytest.param(hang(), UpstreamTimeout, id="hang"),
    ],
)
async def test_complete_maps_each_upstream_failure(
    adapter: LLMProvider, upstream: FakeUpstream, behaviour: Behaviour, expected: type[UpstreamError]
) -> None:
    upstream.push(behaviour)

    with pytest.raises(expected) as caught:
        await adapter.complete(HELLO)

    assert type(caught.value) is expected
    assert caught.value.model == "m"
    assert caught.value.__cause__ is None
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(html_error(502), id="html-502"),
        pytest.param(html_error(503), id="html-503"),
        pytest.param(html_error(404), id="html-404"),
        pytest.param(redirect("http://127.0.0.1:9/elsewhere", status=301), id="redirect-301"),
        pytest.param(redirect("http://127.0.0.1:9/elsewhere"), id="redirect-307"),
    ],
)
@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_a_redirect_or_an_html_page_is_a_bad_response_not_worth_a_retry(
    adapter: LLMProvider, upstream: FakeUpstream, behaviour: Behaviour, streaming: bool
) -> None:
    """Neither would change on a second try: a wrong base_url, or a proxy's page in front of the API."""
    upstream.push(behaviour)

    with pytest.raises(UpstreamBadResponse) as caught:
        await (collect(adapter.stream(HELLO)) if streaming else adapter.complete(HELLO))

    assert caught.value.retryable is False
    assert "<html" not in caught.value.detail.lower()


async def test_a_rate_limit_answered_with_an_html_page_stays_a_rate_limit(
    adapter: LLMProvider, upstream: FakeUpstream
) -> None:
    upstream.push(html_error(429))

    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.complete(HELLO)

    assert caught.value.retryable


@pytest.mark.parametrize(
    ("behaviour", "seconds"),
    [
        pytest.param(rate_limited(retry_after=2), 2.0, id="retry-after"),
        pytest.param(rate_limited(retry_after_ms=1500), 1.5, id="retry-after-ms"),
        pytest.param(rate_limited(), None, id="no-header"),
    ],
)
async def test_429_is_rate_limited_with_the_retry_after_of_the_headers(
    adapter: LLMProvider, upstream: FakeUpstream, behaviour: Behaviour, seconds: float | None
) -> None:
    upstream.push(behaviour)

    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.complete(HELLO)

    assert caught.value.retry_after_seconds == seconds


async def test_the_key_never_shows_in_an_error_even_if_the_upstream_echoes_it(
    adapter: LLMProvider, upstream: FakeUpstream
) -> None:
    upstream.push(error(400, message=f"invalid request made with key {SECRET}"))

    with pytest.raises(UpstreamRejected) as caught:
        await adapter.complete(HELLO)

    assert SECRET not in str(caught.value)
    assert SECRET not in repr(adapter)


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        pytest.param(drop_stream_after(5), UpstreamBadResponse, id="dropped"),
        pytest.param(stream_error_after(5, 529), UpstreamUnavailable, id="error-event-overloaded"),
        pytest.param(hang(after_chunks=5), UpstreamTimeout, id="stalled"),
        pytest.param(malformed(after_chunks=5), UpstreamBadResponse, id="malformed-event"),
    ],
)
async def test_a_stream_failing_midway_raises_after_its_deltas_with_the_partial_completion(
    adapter: LLMProvider, upstream: FakeUpstream, behaviour: Behaviour, expected: type[UpstreamError]
) -> None:
    upstream.push(behaviour)
    deltas: list[TextDelta] = []

    with pytest.raises(expected) as caught:
        await collect(adapter.stream(HELLO), deltas)

    assert deltas
    partial = partial_completion(caught.value)
    assert isinstance(partial, Completion)
    assert partial.content == "".join(d.text for d in deltas)
    assert partial.finish_reason is FinishReason.ERROR
    assert partial.usage.output_tokens > 0
    assert partial.served_by.model == "m"


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        pytest.param(server_error(500), UpstreamUnavailable, id="500"),
        pytest.param(rate_limited(retry_after=1), UpstreamRateLimited, id="429"),
        pytest.param(missing_fields(), UpstreamBadResponse, id="missing-fields"),
        pytest.param(hang(), UpstreamTimeout, id="hang"),
    ],
)
async def test_a_stream_failing_before_any_text_raises_without_a_partial(
    adapter: LLMProvider, upstream: FakeUpstream, behaviour: Behaviour, expected: type[UpstreamError]
) -> None:
    upstream.push(behaviour)

    with pytest.raises(expected) as caught:
        await collect(adapter.stream(HELLO))

    assert partial_completion(caught.value) is None


async def test_a_stream_forwards_each_chunk_as_it_arrives(adapter: LLMProvider, upstream: FakeUpstream) -> None:
    """Chunks spaced in time come out one by one, at once; only chunks that arrived in one read may be merged."""
    upstream.push(delay(0, chunk_delay=0.05))
    started = time.monotonic()
    arrivals: list[float] = []
    texts: list[str] = []
    async for event in adapter.stream(HELLO):
        if isinstance(event, TextDelta):
            arrivals.append(time.monotonic() - started)
            texts.append(event.text)

    assert len(texts) >= 4
    assert "".join(texts) == "Echo: hello there my dear friend"
    assert arrivals[0] < arrivals[-1] - 0.1  # the first was not held back until the last


async def test_chunks_that_arrive_together_are_forwarded_together(upstream: FakeUpstream, client: str) -> None:
    adapter = OPENAI_CLIENTS[client](openai_spec(), transport=openai_transport(upstream), api_key=SECRET)
    try:
        deltas, ends = await collect(adapter.stream(HELLO))
    finally:
        await adapter.aclose()
    assert "".join(d.text for d in deltas) == ends[0].completion.content
    if client == "direct":  # the fake sends every chunk at once: one read, one delta
        assert len(deltas) < len(ends[0].completion.content.split())


def _requests_in_flight(up: FakeUpstream) -> int:
    server = up._server  # the fake's uvicorn server: its in-flight request tasks
    return len(server.server_state.tasks) if server is not None else 0


async def test_a_stream_opens_on_the_upstreams_first_event_before_any_text(
    adapter: LLMProvider, upstream: FakeUpstream
) -> None:
    """The upstream sends its first event (OpenAI's role chunk, Anthropic's message_start, Bedrock's messageStart,
    Gemini's first candidate) and holds the rest: the adapter says the stream is open without waiting for more."""
    upstream.push(hang(after_chunks=1))
    events = adapter.stream(HELLO)
    try:
        assert isinstance(await asyncio.wait_for(anext(events), 1), StreamOpened)
    finally:
        await asyncio.wait_for(events.aclose(), 1)  # type: ignore[attr-defined]


async def test_an_error_as_the_first_stream_event_is_a_failure_to_open(upstream: FakeUpstream, client: str) -> None:
    """An error event before anything was understood raises before ``StreamOpened``: the router may still retry
    it or fall back, as nothing of this stream can have reached a client."""
    upstream.push(stream_error_after(0))
    adapter = OPENAI_CLIENTS[client](openai_spec(), transport=openai_transport(upstream), api_key=SECRET)
    events = adapter.stream(HELLO)
    try:
        with pytest.raises(UpstreamError):
            await anext(events)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
        await adapter.aclose()


async def test_closing_a_stream_closes_the_upstream_response(adapter: LLMProvider, upstream: FakeUpstream) -> None:
    upstream.push(hang(after_chunks=5))  # the fake streams 5 events, then holds the response open until we leave
    events = adapter.stream(HELLO)
    assert isinstance(await anext(events), StreamOpened)
    assert isinstance(await anext(events), TextDelta)
    assert _requests_in_flight(upstream) == 1

    await asyncio.wait_for(events.aclose(), 0.5)  # type: ignore[attr-defined]

    for _ in range(100):
        if _requests_in_flight(upstream) == 0:
            break
        await asyncio.sleep(0.005)
    assert _requests_in_flight(upstream) == 0
