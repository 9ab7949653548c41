"""Requests of OpenAI's Chat Completions and Embeddings APIs, as its SDKs send them, and their domain meaning.

Lenient where OpenAI is: fields Switchboard has no use for (``seed``, ``logit_bias``, ``store``, ``metadata``...)
are accepted and ignored. Strict where the answer would otherwise be wrong: ``n`` above 1, non-text content,
token-array embedding inputs and unknown roles are refused with a 400. Text content parts and tools may carry
Anthropic's ``cache_control`` as an extension: it reaches Anthropic upstreams, and other providers ignore it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from application.vectors.file_search import FileSearchTool
from domain.llm.model import (
    EMPTY_OBJECT_SCHEMA,
    ChatMessage,
    ChatRole,
    CompletionRequest,
    EmbeddingRequest,
    Reasoning,
    ReasoningEffort,
    ResponseFormat,
    ResponseFormatType,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
)
from domain.shared.errors import RuleViolation
from interfaces.http.compat.file_search_schemas import Count, FileSearchToolIn, file_search_of
from interfaces.http.compat.json_text import compact_json
from interfaces.http.compat.prompt_cache import CacheControlIn, control, text_parts

MAX_STOP_SEQUENCES = 4


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(_Lenient):
    type: str
    text: str | None = None
    cache_control: CacheControlIn | None = None  # an extension: a prompt-cache breakpoint (Anthropic upstreams)


Content = str | list[ContentPart]


def _text(content: Content | None, where: str) -> tuple[str, tuple[TextPart, ...]]:
    """The text of a message, and its parts when one of them carries a ``cache_control`` breakpoint."""
    if content is None or isinstance(content, str):
        return content or "", ()
    pieces = []
    for part in content:
        if part.type not in ("text", "refusal") or part.text is None:
            raise RuleViolation(f"{where}: '{part.type}' content is not supported; send text")
        pieces.append((part.text, part.cache_control))
    return text_parts(pieces)


class SystemMessage(_Lenient):
    role: Literal["system", "developer"]
    content: Content


class UserMessage(_Lenient):
    role: Literal["user"]
    content: Content


class FunctionCall(_Lenient):
    name: str
    arguments: str


class ToolCallIn(_Lenient):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class AssistantMessage(_Lenient):
    role: Literal["assistant"]
    content: Content | None = None
    tool_calls: list[ToolCallIn] | None = None


class ToolMessage(_Lenient):
    role: Literal["tool"]
    content: Content
    tool_call_id: str


Message = Annotated[SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")]


class FunctionDefinition(_Lenient):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ToolIn(_Lenient):
    type: Literal["function"]
    function: FunctionDefinition
    cache_control: CacheControlIn | None = None  # an extension: a prompt-cache breakpoint after this tool


class NamedFunction(_Lenient):
    name: str


class NamedToolChoice(_Lenient):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(_Lenient):
    name: str
    json_schema: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormatIn(_Lenient):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(_Lenient):
    include_usage: bool | None = None


_json = compact_json


class ChatCompletionRequest(_Lenient):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=1, description="Only one choice is supported.")
    max_tokens: Count | None = None  # a JSON number of at least 1: "1" or true is no token count
    max_completion_tokens: Count | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    response_format: ResponseFormatIn | None = None
    tools: list[Annotated[ToolIn | FileSearchToolIn, Field(discriminator="type")]] | None = None  # + file_search
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def to_domain(self) -> CompletionRequest:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > MAX_STOP_SEQUENCES:
            raise RuleViolation(f"stop: at most {MAX_STOP_SEQUENCES} sequences")
        return CompletionRequest(
            model=self.model,
            messages=tuple(_message(m, i) for i, m in enumerate(self.messages)),
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_completion_tokens or self.max_tokens,
            stop=tuple(s for s in stops if s),
            tools=tuple(_tool(t) for t in self.tools or [] if isinstance(t, ToolIn)),
            tool_choice=self._tool_choice(),
            response_format=self._response_format(),
            user=self.user,
            reasoning=None
            if self.reasoning_effort is None
            else Reasoning(effort=ReasoningEffort(self.reasoning_effort)),
        )

    def file_search(self) -> FileSearchTool | None:
        return file_search_of(self.tools)

    def _tool_choice(self) -> ToolChoice | None:
        parallel = self.parallel_tool_calls is not False
        choice = self.tool_choice
        if isinstance(choice, NamedToolChoice):
            return ToolChoice(mode=ToolChoiceMode.REQUIRED, name=choice.function.name, parallel=parallel)
        if choice is None and parallel:
            return None
        return ToolChoice(mode=ToolChoiceMode(choice or "auto"), parallel=parallel)

    def _response_format(self) -> ResponseFormat | None:
        wanted = self.response_format
        if wanted is None:
            return None
        if wanted.type != "json_schema":
            return ResponseFormat(type=ResponseFormatType(wanted.type))
        if wanted.json_schema is None:
            raise RuleViolation("response_format: json_schema is required when type is json_schema")
        schema = wanted.json_schema
        return ResponseFormat(
            type=ResponseFormatType.JSON_SCHEMA,
            name=schema.name,
            schema_json=None if schema.json_schema is None else _json(schema.json_schema),
            strict=schema.strict,
        )


def _message(message: SystemMessage | UserMessage | AssistantMessage | ToolMessage, index: int) -> ChatMessage:
    text, parts = _text(message.content, f"messages[{index}].content")
    if isinstance(message, SystemMessage):
        return ChatMessage(ChatRole.SYSTEM, text, parts=parts)
    if isinstance(message, UserMessage):
        return ChatMessage(ChatRole.USER, text, parts=parts)
    if isinstance(message, ToolMessage):
        return ChatMessage(ChatRole.TOOL, text, tool_call_id=message.tool_call_id, parts=parts)
    calls = tuple(
        ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments) for c in message.tool_calls or []
    )
    return ChatMessage(ChatRole.ASSISTANT, text, tool_calls=calls, parts=parts)


def _tool(tool: ToolIn) -> ToolDefinition:
    function = tool.function
    parameters = EMPTY_OBJECT_SCHEMA if function.parameters is None else _json(function.parameters)
    return ToolDefinition(
        name=function.name,
        description=function.description or "",
        parameters_json=parameters,
        cache_control=control(tool.cache_control),
    )


class EmbeddingsRequest(_Lenient):
    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    dimensions: int | None = Field(None, ge=1)
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None

    def to_domain(self) -> EmbeddingRequest:
        inputs = [self.input] if isinstance(self.input, str) else self.input
        if not all(isinstance(text, str) for text in inputs):
            raise RuleViolation("input: token arrays are not supported; send text")
        texts = tuple(text for text in inputs if isinstance(text, str))
        return EmbeddingRequest(model=self.model, inputs=texts, dimensions=self.dimensions, user=self.user)
