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
    """Tokens of one call. ``input_tokens`` counts every prompt token, ``cached_tokens`` the part of them served
    from the provider's prompt cache (a subset, billed cheaper)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False  # True when the upstream never reported usage (a stream cut short) and we counted

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
    cached: bool = False  # served from the gateway's response cache, no upstream call


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
    """One public model as the operator's catalog declares it.

    A model split into weighted A/B ``variants`` lists each of them as a ``ModelSpec`` of the same ``name`` with its
    ``variant`` label and ``weight``; its own provider, upstream model and prices are those of its heaviest variant,
    its context window and output limit the smallest of them (what holds whichever variant answers). Use
    ``deployment(served_by.variant)`` for the exact deployment, prices included, that served a call.
    """

    name: str
    provider: str
    upstream_model: str
    base_url: str | None = None
    api_key_env: str | None = None  # name of the environment variable holding the key; never the key itself
    input_price_per_mtok_micros: int = 0  # micro-dollars per million input tokens
    output_price_per_mtok_micros: int = 0
    context_window: int = 8192
    max_output_tokens: int = 1024
    timeout_seconds: float = 60.0  # a whole call without streaming; the longest silence within a stream
    connect_timeout_seconds: float = 5.0
    fallbacks: tuple[str, ...] = ()
    description: str = ""
    variant: str | None = None  # this deployment's A/B label, when it is one variant of its model
    weight: int = 1  # this variant's share of the traffic, relative to its siblings
    variants: tuple[ModelSpec, ...] = ()  # the weighted deployments serving this model; empty when it has one

    @property
    def deployments(self) -> tuple[ModelSpec, ...]:
        """Every deployment of this model: its variants, or itself alone."""
        return self.variants or (self,)

    def deployment(self, variant: str | None) -> ModelSpec:
        """The deployment serving ``variant`` (``None``: the model itself when it has no variants)."""
        for spec in self.deployments:
            if spec.variant == variant:
                return spec
        raise KeyError(f"model '{self.name}' has no variant {variant!r}")


def with_partial(error: BaseException, partial: Completion) -> BaseException:
    """Attaches to an error raised mid-stream what the stream had produced: text, usage, who served it.

    The text is the deltas already yielded; the usage is the upstream's when it reported one before failing, else
    an estimate (``usage.estimated``). Its ``finish_reason`` is ``ERROR``.
    """
    error.__dict__["partial_completion"] = partial
    return error


def partial_completion(error: BaseException) -> Completion | None:
    """What a stream had produced before it failed with ``error`` (``None`` when it failed before any text)."""
    partial = error.__dict__.get("partial_completion")
    return partial if isinstance(partial, Completion) else None
