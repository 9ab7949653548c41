"""What crosses the LLM-provider port: requests, completions, stream events, token usage. No SDK type.

Tool calling is provider-neutral: a request offers ``ToolDefinition``s (a name, a description, the JSON Schema of
the arguments), an assistant turn may carry ``ToolCall``s (an id, a tool name, the arguments as JSON text), and a
``TOOL`` message answers one call by its id. JSON travels as text, so every value object stays frozen and hashable.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace

from domain.shared.errors import RuleViolation

EMPTY_OBJECT_SCHEMA = '{"type":"object","properties":{}}'


class ChatRole(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"  # the result of a tool call, answering the assistant's call ``tool_call_id``


class FinishReason(enum.StrEnum):
    STOP = "stop"  # natural end or a stop sequence
    LENGTH = "length"  # max tokens reached
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    CANCELLED = "cancelled"  # the client went away mid-stream
    ERROR = "error"  # the upstream failed mid-stream


@dataclass(frozen=True, kw_only=True)
class CacheControl:
    """A prompt-cache breakpoint: the provider may cache the prompt up to and including the marked part.

    Anthropic (and Claude on Bedrock) honour it; providers that cache on their own (OpenAI) or not at all ignore it.
    """

    ttl: str | None = None  # "5m" or "1h" (Anthropic); None: the provider's default


@dataclass(frozen=True)
class TextPart:
    """One text part of a message, as the caller split it, with its cache breakpoint."""

    text: str
    cache_control: CacheControl | None = field(default=None, kw_only=True)


@dataclass(frozen=True, kw_only=True)
class ToolDefinition:
    """A function the model may call."""

    name: str
    description: str = ""
    parameters_json: str = EMPTY_OBJECT_SCHEMA  # the JSON Schema of the arguments object, as JSON text
    cache_control: CacheControl | None = None  # a breakpoint after this tool (the tools come first in the prompt)


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    """The model asking for one tool call; the answer comes back as a ``TOOL`` message with the same ``id``."""

    id: str
    name: str
    arguments: str  # a JSON object, as text (what the model produced; not validated against the schema)


class ToolChoiceMode(enum.StrEnum):
    AUTO = "auto"  # the model decides
    NONE = "none"  # no tool call, even with tools offered
    REQUIRED = "required"  # at least one tool call (Anthropic's "any")


@dataclass(frozen=True, kw_only=True)
class ToolChoice:
    mode: ToolChoiceMode = ToolChoiceMode.AUTO
    name: str | None = None  # this very tool must be called (the mode is then REQUIRED)
    parallel: bool = True  # False: at most one tool call in the answer


class ResponseFormatType(enum.StrEnum):
    TEXT = "text"
    JSON_OBJECT = "json_object"  # any JSON object
    JSON_SCHEMA = "json_schema"  # JSON matching ``schema_json``


@dataclass(frozen=True, kw_only=True)
class ResponseFormat:
    type: ResponseFormatType = ResponseFormatType.TEXT
    schema_json: str | None = None  # JSON_SCHEMA: the schema, as JSON text
    name: str | None = None
    strict: bool | None = None


class ReasoningEffort(enum.StrEnum):
    """How hard a reasoning model thinks before answering (OpenAI's scale; other providers map it)."""

    NONE = "none"
    MINIMAL = "minimal"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    XHIGH = "xhigh"


@dataclass(frozen=True, kw_only=True)
class Reasoning:
    """The caller's reasoning settings, passed on where the serving provider has them (see each adapter)."""

    effort: ReasoningEffort | None = None
    summary: str | None = None  # "auto", "concise" or "detailed": OpenAI's Responses API only
    budget_tokens: int | None = None  # an explicit thinking budget (Anthropic's ``thinking.budget_tokens``)


@dataclass(frozen=True)
class ChatMessage:
    """One turn. ``parts`` is set only when the caller marked a cache breakpoint inside it: the text parts as sent,
    whose texts joined are ``content`` (every provider but those honouring ``cache_control`` reads ``content``)."""

    role: ChatRole
    content: str
    tool_calls: tuple[ToolCall, ...] = field(default=(), kw_only=True)  # ASSISTANT: the calls it asked for
    tool_call_id: str | None = field(default=None, kw_only=True)  # TOOL: the call this message answers
    parts: tuple[TextPart, ...] = field(default=(), kw_only=True)

    def __post_init__(self) -> None:
        if self.parts and "".join(part.text for part in self.parts) != self.content:
            raise ValueError("a message's parts must join to its content")

    @property
    def cached(self) -> bool:
        """Whether a cache breakpoint sits in this message."""
        return any(part.cache_control is not None for part in self.parts)


@dataclass(frozen=True, kw_only=True)
class CompletionRequest:
    """A chat completion asked of a public model name; the catalog decides who serves it."""

    model: str
    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[ToolDefinition, ...] = ()
    tool_choice: ToolChoice | None = None  # None: the provider's default (auto when tools are offered)
    response_format: ResponseFormat | None = None  # passed on where the provider supports it
    user: str | None = None  # the caller's own end-user id, passed on to the provider for abuse monitoring
    reasoning: Reasoning | None = None  # passed on where the provider supports it, ignored elsewhere


@dataclass(frozen=True)
class TokenUsage:
    """Tokens of one call. ``input_tokens`` counts every prompt token; ``cached_tokens`` the part of them read
    from the provider's prompt cache and ``cache_write_tokens`` the part written to it (two disjoint subsets, each
    billed at its own price)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False  # True when the upstream never reported usage (a stream cut short) and we counted
    cache_write_tokens: int = field(default=0, kw_only=True)

    @property
    def uncached_input_tokens(self) -> int:
        """The prompt tokens billed at the plain input price."""
        return max(0, self.input_tokens - self.cached_tokens - self.cache_write_tokens)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class KeyOwner(enum.StrEnum):
    """Whose provider key a call was made with: the operator's (the catalog's), or the caller's own."""

    OPERATOR = "operator"
    USER = "user"


@dataclass(frozen=True, kw_only=True)
class ServedBy:
    """Which deployment actually answered, after fallbacks and A/B variants, and whose key paid for it."""

    model: str  # public model name that answered (may differ from the one asked for after a fallback)
    provider: str  # provider kind: local, openai, anthropic, openai_compatible, or a preset (groq, ollama, ...)
    upstream_model: str  # the provider's own model id
    variant: str | None = None  # A/B variant label, when the public model has several
    key_owner: KeyOwner = KeyOwner.OPERATOR


@dataclass(frozen=True, kw_only=True)
class Completion:
    content: str
    finish_reason: FinishReason
    usage: TokenUsage
    served_by: ServedBy
    attempts: int = 1  # upstream calls made, retries and fallbacks included
    fallbacks: tuple[str, ...] = field(default=())  # public models that failed before this one answered
    tool_calls: tuple[ToolCall, ...] = ()  # finish_reason is TOOL_CALLS when there are any
    stop_sequence: str | None = None  # the stop sequence that ended the answer, when the provider says which
    cached: bool = False  # served from the gateway's response cache, no upstream call


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer, forwarded as soon as the upstream sends it."""

    text: str


@dataclass(frozen=True, kw_only=True)
class ToolCallDelta:
    """A piece of a tool call. The first piece of call ``index`` (0, 1, ... within the answer) carries its ``id``
    and ``name``; the ``arguments`` pieces, joined, are the call's arguments JSON."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class StreamEnd:
    """The last event of a stream: the whole completion, with its usage."""

    completion: Completion


StreamEvent = TextDelta | ToolCallDelta | StreamEnd


@dataclass(frozen=True)
class StreamOpened:
    """The upstream answered and its stream is open: the first event of an adapter's stream, sent as soon as the
    upstream's first event has been read (before any text, which may come much later). A stream is opened on it:
    retries and fallbacks end there, and the front doors send their first event at once. It carries nothing: who
    serves the stream is known to whoever opened it (``ModelStream.served_by``)."""


# What a provider's ``stream`` yields: ``StreamOpened`` first, then the ``StreamEvent``s.
UpstreamEvent = StreamOpened | StreamEvent


class ModelKind(enum.StrEnum):
    CHAT = "chat"  # answers completions
    EMBEDDING = "embedding"  # turns texts into vectors


@dataclass(frozen=True, kw_only=True)
class EmbeddingRequest:
    """Texts to embed with a public embedding model."""

    model: str
    inputs: tuple[str, ...]
    dimensions: int | None = None  # shorter vectors, where the model supports it; None: the model's own size
    user: str | None = None


@dataclass(frozen=True, kw_only=True)
class Embeddings:
    vectors: tuple[tuple[float, ...], ...]  # one per input, in order
    usage: TokenUsage  # input_tokens only
    served_by: ServedBy
    attempts: int = 1


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One public model as the operator's catalog declares it: what it is and what it costs. How a deployment is
    reached (its URL, key, client and timeouts) is infrastructure's business, not the domain's.

    A model split into weighted A/B ``variants`` lists each of them as a ``ModelSpec`` of the same ``name`` with its
    ``variant`` label and ``weight``; its own provider, upstream model and prices are those of its heaviest variant,
    its context window and output limit the smallest of them (what holds whichever variant answers). Use
    ``deployment(served_by.variant)`` for the exact deployment, prices included, that served a call.
    """

    name: str
    provider: str
    upstream_model: str
    input_price_per_mtok_micros: int = 0  # micro-dollars per million input tokens
    output_price_per_mtok_micros: int = 0
    cached_input_price_per_mtok_micros: int | None = None  # prompt-cache reads; None: the input price
    cache_write_price_per_mtok_micros: int | None = None  # prompt-cache writes; None: the input price
    # Batch lines: per-token batch prices (each None: the plain price), or a discount on every price.
    batch_input_price_per_mtok_micros: int | None = None
    batch_output_price_per_mtok_micros: int | None = None
    batch_discount_percent: int = 0
    context_window: int = 8192
    max_output_tokens: int = 1024
    fallbacks: tuple[str, ...] = ()
    description: str = ""
    variant: str | None = None  # this deployment's A/B label, when it is one variant of its model
    weight: int = 1  # this variant's share of the traffic, relative to its siblings
    variants: tuple[ModelSpec, ...] = ()  # the weighted deployments serving this model; empty when it has one
    kind: ModelKind = ModelKind.CHAT
    dimensions: int | None = None  # an embedding model's vector size (None: the upstream model's default)

    @property
    def deployments(self) -> tuple[ModelSpec, ...]:
        """Every deployment of this model: its variants, or itself alone."""
        return self.variants or (self,)

    @property
    def has_batch_price(self) -> bool:
        return (
            self.batch_input_price_per_mtok_micros is not None
            or self.batch_output_price_per_mtok_micros is not None
            or self.batch_discount_percent > 0
        )

    def batch_priced(self) -> ModelSpec:
        """This deployment at its batch prices: the per-token batch prices where set (cache reads and writes then
        stay at theirs), else every price less the batch discount (rounded up to a whole micro-dollar)."""
        if self.batch_input_price_per_mtok_micros is not None or self.batch_output_price_per_mtok_micros is not None:
            return replace(
                self,
                input_price_per_mtok_micros=_first(
                    self.batch_input_price_per_mtok_micros, self.input_price_per_mtok_micros
                ),
                output_price_per_mtok_micros=_first(
                    self.batch_output_price_per_mtok_micros, self.output_price_per_mtok_micros
                ),
            )
        keep = 100 - self.batch_discount_percent

        def discounted(price: int | None) -> int | None:
            return None if price is None else -(-price * keep // 100)

        return replace(
            self,
            input_price_per_mtok_micros=-(-self.input_price_per_mtok_micros * keep // 100),
            output_price_per_mtok_micros=-(-self.output_price_per_mtok_micros * keep // 100),
            cached_input_price_per_mtok_micros=discounted(self.cached_input_price_per_mtok_micros),
            cache_write_price_per_mtok_micros=discounted(self.cache_write_price_per_mtok_micros),
        )

    def deployment(self, variant: str | None) -> ModelSpec:
        """The deployment serving ``variant`` (``None``: the model itself when it has no variants)."""
        for spec in self.deployments:
            if spec.variant == variant:
                return spec
        raise KeyError(f"model '{self.name}' has no variant {variant!r}")


def _first(price: int | None, default: int) -> int:
    return default if price is None else price


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


TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # what both OpenAI and Anthropic accept
_TOOL_NAME = re.compile(TOOL_NAME_PATTERN)


def check_completion_request(request: CompletionRequest) -> None:
    """The rules every provider shares; raises ``RuleViolation`` naming the first broken one."""
    if not request.messages:
        raise RuleViolation("messages: at least one message is required")
    if request.max_tokens is not None and request.max_tokens < 1:
        raise RuleViolation("max_tokens: must be at least 1")
    if request.temperature is not None and not 0 <= request.temperature <= 2:
        raise RuleViolation("temperature: must be between 0 and 2")
    if request.top_p is not None and not 0 <= request.top_p <= 1:
        raise RuleViolation("top_p: must be between 0 and 1")
    names = [tool.name for tool in request.tools]
    for name in names:
        if not _TOOL_NAME.match(name):
            raise RuleViolation(f"tools: name '{name}' must be 1 to 64 letters, digits, '_' or '-'")
    if len(set(names)) != len(names):
        raise RuleViolation("tools: two tools have the same name")
    choice = request.tool_choice
    if choice is not None and choice.name is not None and choice.name not in names:
        raise RuleViolation(f"tool_choice: '{choice.name}' is not one of the tools")
    for index, message in enumerate(request.messages):
        if message.role is ChatRole.TOOL and not message.tool_call_id:
            raise RuleViolation(f"messages[{index}]: a tool result needs the id of the call it answers")
        if message.tool_calls and message.role is not ChatRole.ASSISTANT:
            raise RuleViolation(f"messages[{index}]: only assistant messages carry tool calls")


MAX_EMBEDDING_INPUTS = 2048  # OpenAI's own limit per request


def check_embedding_request(request: EmbeddingRequest) -> None:
    if not request.inputs:
        raise RuleViolation("input: at least one text is required")
    if len(request.inputs) > MAX_EMBEDDING_INPUTS:
        raise RuleViolation(f"input: at most {MAX_EMBEDDING_INPUTS} texts per request")
    if any(not text for text in request.inputs):
        raise RuleViolation("input: texts may not be empty")
    if request.dimensions is not None and request.dimensions < 1:
        raise RuleViolation("dimensions: must be at least 1")
