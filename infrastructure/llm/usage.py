"""Token counts when the upstream gave none: a stream cut short before its usage event, a server that omits it."""

from __future__ import annotations

import math

from domain.llm.model import CompletionRequest, TokenUsage

_CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text with BPE tokenizers


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / _CHARS_PER_TOKEN)


def estimated_usage(request: CompletionRequest, content: str, *, input_tokens: int | None = None) -> TokenUsage:
    """Usage flagged ``estimated``; ``input_tokens`` when the upstream did report them (Anthropic does, up front)."""
    if input_tokens is None:
        input_tokens = sum(estimate_tokens(m.content) for m in request.messages)
    return TokenUsage(input_tokens=input_tokens, output_tokens=estimate_tokens(content), estimated=True)
