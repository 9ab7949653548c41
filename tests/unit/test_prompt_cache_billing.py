"""Prompt caching billed at its own prices: the money arithmetic, the catalog's cache prices, and how the compatible
APIs' ``cache_control`` becomes the domain's breakpoints."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.llm.model import CacheControl, ChatMessage, ChatRole, ModelSpec, TextPart, TokenUsage
from domain.usage.model import cache_savings_micros, cost_micros, most_cost_micros
from infrastructure.llm.catalog import parse_catalog
from interfaces.http.compat.anthropic_schemas import CreateMessageRequest
from interfaces.http.compat.openai_schemas import ChatCompletionRequest

pytestmark = pytest.mark.unit

# Claude Sonnet 4.x: $3 input, $15 output, $0.30 cache read, $3.75 cache write (5 minutes), per million tokens.
SONNET = ModelSpec(
    name="claude",
    provider="anthropic",
    upstream_model="claude-sonnet-4-6",
    input_price_per_mtok_micros=3_000_000,
    output_price_per_mtok_micros=15_000_000,
    cached_input_price_per_mtok_micros=300_000,
    cache_write_price_per_mtok_micros=3_750_000,
)


def test_each_kind_of_prompt_token_is_billed_at_its_own_price() -> None:
    # 10,000 prompt tokens: 8,000 read from the cache, 1,500 written to it, 500 plain; 200 tokens of answer.
    usage = TokenUsage(input_tokens=10_000, output_tokens=200, cached_tokens=8_000, cache_write_tokens=1_500)
    expected = (500 * 3_000_000 + 8_000 * 300_000 + 1_500 * 3_750_000 + 200 * 15_000_000) // 1_000_000
    assert expected == 1_500 + 2_400 + 5_625 + 3_000
    assert cost_micros(usage, SONNET) == expected
    assert cache_savings_micros(usage, SONNET) == 8_000 * (3_000_000 - 300_000) // 1_000_000


def test_a_model_without_cache_prices_bills_the_cache_at_the_input_price() -> None:
    plain = ModelSpec(name="m", provider="openai", upstream_model="m", input_price_per_mtok_micros=1_000_000)
    usage = TokenUsage(input_tokens=1_000, cached_tokens=600, cache_write_tokens=100)
    assert cost_micros(usage, plain) == 1_000
    assert cache_savings_micros(usage, plain) == 0


@given(
    st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**6)
)
def test_the_hold_of_a_call_covers_any_split_of_its_prompt(
    plain: int, read: int, write: int, output: int, extra: int
) -> None:
    prompt = plain + read + write
    usage = TokenUsage(input_tokens=prompt, output_tokens=output, cached_tokens=read, cache_write_tokens=write)
    assert most_cost_micros(prompt, output + extra, SONNET) >= cost_micros(usage, SONNET)


CATALOG = """
[models.claude]
provider = "anthropic"
upstream_model = "claude-sonnet-4-6"
api_key_env = "K"
input_usd_per_mtok = 3
output_usd_per_mtok = 15

[models.claude-priced]
provider = "anthropic"
upstream_model = "claude-sonnet-4-6"
api_key_env = "K"
input_usd_per_mtok = 3
cached_input_usd_per_mtok = 0.25
cache_write_usd_per_mtok = 6

[models.gpt]
provider = "openai"
upstream_model = "gpt-4.1"
api_key_env = "K"
input_usd_per_mtok = 2
cached_input_usd_per_mtok = 0.5

[models.gpt-plain]
provider = "openai"
upstream_model = "my-fine-tune"
api_key_env = "K"
input_usd_per_mtok = 2
"""


def test_the_catalog_prices_cache_reads_and_writes_with_anthropics_multipliers_by_default() -> None:
    catalog = parse_catalog(CATALOG, env={"K": "x"})
    claude, priced, gpt, plain = (catalog.find(n) or SONNET for n in ("claude", "claude-priced", "gpt", "gpt-plain"))
    assert (claude.cached_input_price_per_mtok_micros, claude.cache_write_price_per_mtok_micros) == (300_000, 3_750_000)
    assert (priced.cached_input_price_per_mtok_micros, priced.cache_write_price_per_mtok_micros) == (250_000, 6_000_000)
    assert (gpt.cached_input_price_per_mtok_micros, gpt.cache_write_price_per_mtok_micros) == (500_000, None)
    assert (plain.cached_input_price_per_mtok_micros, plain.cache_write_price_per_mtok_micros) == (None, None)
    # OpenAI's cached prompt tokens: 600 of 1,000 at $0.50, the rest at $2.
    assert cost_micros(TokenUsage(input_tokens=1_000, cached_tokens=600), gpt) == 400 * 2 + 600 // 2


EPHEMERAL = {"type": "ephemeral"}


def test_anthropic_requests_keep_cache_control_on_system_blocks_text_tool_results_and_tools() -> None:
    request = CreateMessageRequest.model_validate(
        {
            "model": "claude",
            "max_tokens": 10,
            "system": [{"type": "text", "text": "long rules"}, {"type": "text", "text": "a book", **_cc("1h")}],
            "tools": [{"name": "look", "input_schema": {"type": "object"}, "cache_control": EPHEMERAL}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b", **_cc()}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "look", "input": {}}]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "seen", **_cc()}],
                },
            ],
        }
    ).to_domain()
    system_rules, system_book, user, _, result = request.messages
    assert system_rules == ChatMessage(ChatRole.SYSTEM, "long rules")
    assert system_book.parts == (TextPart("a book", cache_control=CacheControl(ttl="1h")),)
    assert user.content == "ab"
    assert user.parts == (TextPart("a"), TextPart("b", cache_control=CacheControl()))
    assert result.role is ChatRole.TOOL
    assert result.cached
    assert request.tools[0].cache_control == CacheControl()


def test_a_request_without_cache_control_has_no_parts() -> None:
    request = CreateMessageRequest.model_validate(
        {
            "model": "claude",
            "max_tokens": 10,
            "system": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
        }
    ).to_domain()
    assert request.messages == (ChatMessage(ChatRole.SYSTEM, "one\n\ntwo"), ChatMessage(ChatRole.USER, "ab"))


def test_chat_completions_take_cache_control_as_an_extension_of_content_parts_and_tools() -> None:
    request = ChatCompletionRequest.model_validate(
        {
            "model": "claude",
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "rules", **_cc()}]},
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            ],
            "tools": [{"type": "function", "function": {"name": "f"}, "cache_control": EPHEMERAL}],
        }
    ).to_domain()
    system, user = request.messages
    assert system.parts == (TextPart("rules", cache_control=CacheControl()),)
    assert user == ChatMessage(ChatRole.USER, "hi")
    assert request.tools[0].cache_control == CacheControl()


def test_parts_must_join_to_the_content() -> None:
    with pytest.raises(ValueError, match="join"):
        ChatMessage(ChatRole.USER, "abc", parts=(TextPart("ab"),))


def _cc(ttl: str | None = None) -> dict[str, object]:
    return {"cache_control": {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}}
