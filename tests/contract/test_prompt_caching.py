"""Prompt caching through the Anthropic adapters (direct and SDK): the caller's breakpoints reach the upstream where
the caller put them, and the usage keeps cache reads and writes apart. Against the fake upstream on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from domain.llm.model import (
    CacheControl,
    ChatMessage,
    ChatRole,
    CompletionRequest,
    TextPart,
    ToolDefinition,
)
from tests.contract.test_llm_providers import (
    ANTHROPIC_CLIENTS,
    HELLO,
    OPENAI_CLIENTS,
    SECRET,
    anthropic_spec,
    anthropic_transport,
    collect,
    openai_spec,
    openai_transport,
)
from tests.fakes.upstream import FakeUpstream, ok

pytestmark = pytest.mark.contract

EPHEMERAL = {"type": "ephemeral"}
CACHED = CompletionRequest(
    model="m",
    messages=(
        ChatMessage(ChatRole.SYSTEM, "rules"),
        ChatMessage(ChatRole.SYSTEM, "a long book", parts=(TextPart("a long book", cache_control=CacheControl()),)),
        ChatMessage(
            ChatRole.USER,
            "context question",
            parts=(TextPart("context ", cache_control=CacheControl(ttl="1h")), TextPart("question")),
        ),
    ),
    tools=(ToolDefinition(name="look", cache_control=CacheControl()), ToolDefinition(name="other")),
)


@pytest.fixture(params=["direct", "sdk"])
def client(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
async def fake_server() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
def upstream(fake_server: FakeUpstream) -> FakeUpstream:
    fake_server.reset()
    return fake_server


async def test_anthropic_sends_each_breakpoint_where_the_caller_put_it(upstream: FakeUpstream, client: str) -> None:
    adapter = ANTHROPIC_CLIENTS[client](anthropic_spec(), transport=anthropic_transport(upstream), api_key=SECRET)
    try:
        await adapter.complete(CACHED)
    finally:
        await adapter.aclose()

    sent = upstream.last_request.json
    assert sent["system"] == [
        {"type": "text", "text": "rules"},
        {"type": "text", "text": "a long book", "cache_control": EPHEMERAL},
    ]
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "context ", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                {"type": "text", "text": "question"},
            ],
        }
    ]
    assert sent["tools"][0]["cache_control"] == EPHEMERAL
    assert "cache_control" not in sent["tools"][1]


async def test_a_tool_result_with_a_breakpoint_carries_it_on_its_block(upstream: FakeUpstream) -> None:
    turns = (
        ChatMessage(ChatRole.USER, "go"),
        ChatMessage(ChatRole.TOOL, "seen", tool_call_id="t1", parts=(TextPart("seen", cache_control=CacheControl()),)),
    )
    adapter = ANTHROPIC_CLIENTS["direct"](anthropic_spec(), transport=anthropic_transport(upstream), api_key=SECRET)
    try:
        await adapter.complete(CompletionRequest(model="m", messages=turns))
    finally:
        await adapter.aclose()

    blocks = upstream.last_request.json["messages"][0]["content"]
    assert blocks[1] == {"type": "tool_result", "tool_use_id": "t1", "content": "seen", "cache_control": EPHEMERAL}


async def test_anthropic_usage_keeps_cache_reads_and_writes_apart(upstream: FakeUpstream, client: str) -> None:
    upstream.push(ok(cached_tokens=30, cache_creation_tokens=20), ok(cached_tokens=30, cache_creation_tokens=20))
    adapter = ANTHROPIC_CLIENTS[client](anthropic_spec(), transport=anthropic_transport(upstream), api_key=SECRET)
    try:
        completion = await adapter.complete(HELLO)
        _, ends = await collect(adapter.stream(HELLO))
    finally:
        await adapter.aclose()

    for usage in (completion.usage, ends[0].completion.usage):
        assert (usage.cached_tokens, usage.cache_write_tokens) == (30, 20)
        assert usage.uncached_input_tokens == 5
        assert usage.input_tokens == 5 + 30 + 20


async def test_openai_ignores_breakpoints_and_reads_its_cached_tokens(upstream: FakeUpstream, client: str) -> None:
    upstream.push(ok(cached_tokens=4))
    adapter = OPENAI_CLIENTS[client](openai_spec(), transport=openai_transport(upstream), api_key=SECRET)
    try:
        completion = await adapter.complete(CACHED)
    finally:
        await adapter.aclose()

    sent = upstream.last_request.json
    assert "cache_control" not in str(sent)
    assert sent["messages"][2] == {"role": "user", "content": "context question"}
    assert completion.usage.cached_tokens == 4
    assert completion.usage.cache_write_tokens == 0
