"""What the Bedrock adapter sends (Converse in Bedrock's terms, signed with SigV4 by botocore: the fake checks the
signature with the same secret), how it reads the event-stream framing, and usage with prompt caching. Against the
fake upstream on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from botocore.credentials import Credentials

from domain.llm.model import CacheControl, ChatMessage, ChatRole, ModelSpec, TextPart, ToolChoice, ToolChoiceMode
from domain.shared.errors import UpstreamAuthError, UpstreamRateLimited
from infrastructure.llm.bedrock import BedrockProvider
from infrastructure.llm.transport import Transport
from tests.contract.test_llm_providers import HELLO, TOOL_CONVERSATION, WANTS_TOOL, bedrock_adapter, collect
from tests.fakes.upstream import FakeUpstream, ok, stream_error_after
from tests.fakes.upstream.bedrock_routes import ACCESS_KEY, REGION, SECRET_KEY

pytestmark = pytest.mark.contract
CACHE_POINT = {"cachePoint": {"type": "default"}}
SPEC = ModelSpec(name="m", provider="bedrock", upstream_model="anthropic.claude-3-5-haiku-20241022-v1:0")


@pytest.fixture(scope="module")
async def fake_server() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
def upstream(fake_server: FakeUpstream) -> FakeUpstream:
    fake_server.reset()
    return fake_server


@pytest.fixture
async def adapter(upstream: FakeUpstream) -> AsyncIterator[BedrockProvider]:
    built = bedrock_adapter(upstream)
    yield built
    await built.aclose()


async def test_each_request_is_signed_for_bedrock_and_the_model_id_is_encoded(
    adapter: BedrockProvider, upstream: FakeUpstream
) -> None:
    await adapter.complete(HELLO)
    await collect(adapter.stream(HELLO))

    whole, streamed = upstream.requests
    assert whole.path == "/model/anthropic.claude-3-5-haiku-20241022-v1:0/converse"
    assert streamed.path.endswith("/converse-stream")
    assert streamed.headers["accept"] == "application/vnd.amazon.eventstream"
    for sent in upstream.requests:
        assert sent.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
        assert f"/{REGION}/bedrock/aws4_request" in sent.headers["authorization"]
        assert "x-amz-date" in sent.headers


async def test_a_wrong_secret_fails_the_signature_check(upstream: FakeUpstream) -> None:
    transport = Transport(base_url=upstream.base_url, timeout_seconds=2, region=REGION)
    wrong = BedrockProvider(
        replace(bedrock_adapter(upstream)._spec),
        transport=transport,
        credentials=Credentials(ACCESS_KEY, "nope"),
        region=REGION,
    )
    try:
        with pytest.raises(UpstreamAuthError) as refused:
            await wrong.complete(HELLO)
    finally:
        await wrong.aclose()
    assert "nope" not in str(refused.value)


async def test_temporary_credentials_sign_their_session_token(upstream: FakeUpstream) -> None:
    transport = Transport(base_url=upstream.base_url, timeout_seconds=2, region=REGION)
    temporary = BedrockProvider(
        SPEC, transport=transport, credentials=Credentials(ACCESS_KEY, SECRET_KEY, "session-token"), region=REGION
    )
    try:
        await temporary.complete(HELLO)
    finally:
        await temporary.aclose()
    assert upstream.last_request.headers["x-amz-security-token"] == "session-token"


async def test_converse_in_bedrocks_terms_with_cache_points(adapter: BedrockProvider, upstream: FakeUpstream) -> None:
    cached = ChatMessage(ChatRole.SYSTEM, "book", parts=(TextPart("book", cache_control=CacheControl()),))
    request = replace(
        TOOL_CONVERSATION,
        messages=(cached, *TOOL_CONVERSATION.messages),
        tools=(replace(TOOL_CONVERSATION.tools[0], cache_control=CacheControl()), TOOL_CONVERSATION.tools[1]),
        temperature=0.2,
        stop=("END",),
    )
    await adapter.complete(request)

    sent = upstream.last_request.json
    assert sent["system"] == [{"text": "book"}, CACHE_POINT, {"text": "Be brief."}]
    assert sent["inferenceConfig"] == {"maxTokens": 64, "temperature": 0.2, "stopSequences": ["END"]}
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": [
            {"text": "Let me look."},
            {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}},
        ],
    }
    assert sent["messages"][2]["content"][0] == {"toolResult": {"toolUseId": "call_1", "content": [{"text": "sunny"}]}}
    tools = sent["toolConfig"]["tools"]
    assert [next(iter(t)) for t in tools] == ["toolSpec", "cachePoint", "toolSpec"]
    assert tools[0]["toolSpec"]["inputSchema"]["json"]["required"] == ["city"]
    assert sent["toolConfig"]["toolChoice"] == {"any": {}}
    assert "outputConfig" not in sent  # Converse has no JSON-schema output


async def test_tool_choice_none_leaves_the_tools_out(adapter: BedrockProvider, upstream: FakeUpstream) -> None:
    await adapter.complete(replace(WANTS_TOOL, tool_choice=ToolChoice(mode=ToolChoiceMode.NONE)))
    assert "toolConfig" not in upstream.last_request.json


async def test_cache_reads_and_writes_are_counted_apart(adapter: BedrockProvider, upstream: FakeUpstream) -> None:
    upstream.push(ok(cached_tokens=30, cache_creation_tokens=20), ok(cached_tokens=30, cache_creation_tokens=20))
    completion = await adapter.complete(HELLO)
    _, ends = await collect(adapter.stream(HELLO))

    for usage in (completion.usage, ends[0].completion.usage):
        assert (usage.input_tokens, usage.cached_tokens, usage.cache_write_tokens) == (5 + 30 + 20, 30, 20)


async def test_a_throttling_exception_in_the_stream_is_a_rate_limit(
    adapter: BedrockProvider, upstream: FakeUpstream
) -> None:
    upstream.push(stream_error_after(2, 429))
    with pytest.raises(UpstreamRateLimited):
        await collect(adapter.stream(HELLO))
