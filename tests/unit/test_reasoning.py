"""Reasoning settings in each provider's wire format: OpenAI's ``reasoning_effort``, Anthropic's extended thinking
(a budget below ``max_tokens``, not with a forced tool or while continuing a tool call), Gemini's ``thinkingConfig``;
OpenAI-compatible servers, Bedrock and the local model get nothing."""

from __future__ import annotations

import pytest

from domain.llm.model import (
    ChatMessage,
    ChatRole,
    CompletionRequest,
    ModelSpec,
    Reasoning,
    ReasoningEffort,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
)
from infrastructure.llm import anthropic_format, bedrock_format, gemini_format, openai_format

pytestmark = pytest.mark.unit

HELLO = (ChatMessage(ChatRole.USER, "hello"),)


def spec(provider: str) -> ModelSpec:
    return ModelSpec(name="m", provider=provider, upstream_model="up", max_output_tokens=32000)


def asking(**reasoning: object) -> CompletionRequest:
    return CompletionRequest(model="m", messages=HELLO, reasoning=Reasoning(**reasoning), temperature=0.3)  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", ["openai", "azure_openai"])
def test_openai_gets_the_effort(provider: str) -> None:
    body = openai_format.request_body(spec(provider), asking(effort=ReasoningEffort.HIGH, summary="auto"))
    assert body["reasoning_effort"] == "high"
    assert "summary" not in str(body)  # Chat Completions has no summaries


def test_openai_gets_the_effort_nearest_a_budget() -> None:
    assert openai_format.request_body(spec("openai"), asking(budget_tokens=1500))["reasoning_effort"] == "low"
    assert openai_format.request_body(spec("openai"), asking(budget_tokens=6000))["reasoning_effort"] == "medium"
    assert openai_format.request_body(spec("openai"), asking(budget_tokens=60000))["reasoning_effort"] == "high"


@pytest.mark.parametrize("provider", ["openai_compatible", "groq", "vllm"])
def test_openai_compatible_servers_get_nothing(provider: str) -> None:
    assert "reasoning_effort" not in openai_format.request_body(spec(provider), asking(effort=ReasoningEffort.LOW))


def test_nothing_is_sent_when_nothing_is_asked() -> None:
    plain = CompletionRequest(model="m", messages=HELLO)
    assert "reasoning_effort" not in openai_format.request_body(spec("openai"), plain)
    assert "thinking" not in anthropic_format.request_body(spec("anthropic"), plain)
    assert "thinkingConfig" not in gemini_format.request_body(spec("gemini"), plain)["generationConfig"]


@pytest.mark.parametrize(
    ("effort", "budget"),
    [(ReasoningEffort.MINIMAL, 1024), (ReasoningEffort.LOW, 2048), (ReasoningEffort.HIGH, 16384)],
)
def test_anthropic_thinks_with_the_efforts_budget_and_no_sampling_settings(
    effort: ReasoningEffort, budget: int
) -> None:
    body = anthropic_format.request_body(spec("anthropic"), asking(effort=effort))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert "temperature" not in body  # extended thinking refuses them
    assert "top_p" not in body


def test_anthropic_thinking_stays_below_max_tokens_and_above_its_least_budget() -> None:
    capped = CompletionRequest(model="m", messages=HELLO, max_tokens=5000, reasoning=Reasoning(budget_tokens=9000))
    assert anthropic_format.request_body(spec("anthropic"), capped)["thinking"]["budget_tokens"] == 4999
    small = CompletionRequest(model="m", messages=HELLO, max_tokens=1000, reasoning=Reasoning(budget_tokens=9000))
    assert "thinking" not in anthropic_format.request_body(spec("anthropic"), small)
    off = anthropic_format.request_body(spec("anthropic"), asking(effort=ReasoningEffort.NONE))
    assert "thinking" not in off
    assert off["temperature"] == 0.3


def test_anthropic_does_not_think_with_a_forced_tool_or_inside_a_tool_loop() -> None:
    tool = ToolDefinition(name="t")
    forced = CompletionRequest(
        model="m",
        messages=HELLO,
        tools=(tool,),
        tool_choice=ToolChoice(mode=ToolChoiceMode.REQUIRED),
        reasoning=Reasoning(effort=ReasoningEffort.HIGH),
    )
    assert "thinking" not in anthropic_format.request_body(spec("anthropic"), forced)
    call = ToolCall(id="c1", name="t", arguments="{}")
    loop = CompletionRequest(
        model="m",
        messages=(
            *HELLO,
            ChatMessage(ChatRole.ASSISTANT, "", tool_calls=(call,)),
            ChatMessage(ChatRole.TOOL, "done", tool_call_id="c1"),
        ),
        tools=(tool,),
        reasoning=Reasoning(effort=ReasoningEffort.HIGH),
    )
    assert "thinking" not in anthropic_format.request_body(spec("anthropic"), loop)


def test_gemini_gets_a_thinking_budget() -> None:
    config = gemini_format.request_body(spec("gemini"), asking(effort=ReasoningEffort.MEDIUM))["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 8192}
    off = gemini_format.request_body(spec("gemini"), asking(effort=ReasoningEffort.NONE))["generationConfig"]
    assert off["thinkingConfig"] == {"thinkingBudget": 0}
    most = gemini_format.request_body(spec("gemini"), asking(effort=ReasoningEffort.XHIGH))["generationConfig"]
    assert most["thinkingConfig"] == {"thinkingBudget": 24576}


def test_bedrock_gets_nothing() -> None:
    body = bedrock_format.request_body(spec("bedrock"), asking(effort=ReasoningEffort.HIGH))
    assert "thinking" not in str(body)
    assert "reasoning" not in str(body)
