"""What crosses the LLM-provider port: requests, completions, stream events, token usage. No SDK type."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ChatRole(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class FinishReason(enum.StrEnum):
    STOP = "stop"  # natural end or a stop sequence
    LENGTH = "length"  # max tokens reached
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    CANCELLED = "cancelled"  # the client went away mid-stream
    ERROR = "error"  # the upstream failed mid-stream


@dataclass(frozen=True)
class ChatMessage:
    role: ChatRole
    content: str


@dataclass(frozen=True, kw_only=True)
class CompletionRequest:
    """A chat completion asked of a public model name; the catalog decides who serves it."""

    model: str
    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, kw_only=True)
class ServedBy:
    """Which deployment actually answered, after fallbacks and A/B variants."""

    model: str  # public model name that answered (may differ from the one asked for after a fallback)
    provider: str  # provider kind: local, openai, anthropic, openai_compatible
    upstream_model: str  # the provider's own model id
    variant: str | None = None  # A/B variant label, when the public model has several


@dataclass(frozen=True, kw_only=True)
class Completion:
    content: str
    finish_reason: FinishReason
    usage: TokenUsage
    served_by: ServedBy
    attempts: int = 1  # upstream calls made, retries and fallbacks included
    fallbacks: tuple[str, ...] = field(default=())  # public models that failed before this one answered


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer, forwarded as soon as the upstream sends it."""

    text: str


@dataclass(frozen=True)
class StreamEnd:
    """The last event of a stream: the whole completion, with its usage."""

    completion: Completion


StreamEvent = TextDelta | StreamEnd


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One public model as the operator's catalog declares it."""

    name: str
    provider: str
    upstream_model: str
    base_url: str | None = None
    api_key_env: str | None = None
    input_price_per_mtok_micros: int = 0  # micro-dollars per million input tokens
    output_price_per_mtok_micros: int = 0
    context_window: int = 8192
    max_output_tokens: int = 1024
    timeout_seconds: float = 60.0
    fallbacks: tuple[str, ...] = ()
    description: str = ""
