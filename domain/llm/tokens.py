"""Token estimates for text whose real count the provider never reported (a stream cut short, a server that omits
usage). Every estimate is flagged ``estimated`` so that reports can tell it from a provider's own count."""

from __future__ import annotations

import math

from domain.llm.model import CompletionRequest, TokenUsage

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text with BPE tokenizers


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimated_usage(request: CompletionRequest, content: str, *, input_tokens: int | None = None) -> TokenUsage:
    """Usage flagged ``estimated``; ``input_tokens`` when the upstream did report them (Anthropic does, up front)."""
    if input_tokens is None:
        input_tokens = sum(estimate_tokens(m.content) for m in request.messages)
    return TokenUsage(input_tokens=input_tokens, output_tokens=estimate_tokens(content), estimated=True)


def estimate_request_tokens(request: CompletionRequest) -> int:
    """The prompt of ``request`` estimated: its messages, the tool calls in them, the tools offered."""
    calls = (call for message in request.messages for call in message.tool_calls)
    return (
        sum(estimate_tokens(m.content) for m in request.messages)
        + sum(estimate_tokens(call.name + call.arguments) for call in calls)
        + sum(estimate_tokens(t.name + t.description + t.parameters_json) for t in request.tools)
    )
