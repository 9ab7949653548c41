"""Requests of Anthropic's Messages API, as its SDKs send them, and their domain meaning.

Text, ``tool_use`` and ``tool_result`` blocks are understood; ``thinking`` blocks of earlier turns are dropped (they
only mean something to the model that wrote them); images, documents and server tools are refused with a 400.
``cache_control`` on system blocks, text blocks, tool results and tools is kept (a prompt-cache breakpoint) and
reaches Anthropic upstreams; on ``tool_use`` blocks it is dropped. ``thinking`` (enabled, with its budget) is the
call's reasoning setting, passed on where the serving provider has one. Unknown top-level fields (``top_k``,
``service_tier``...) are accepted and ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from application.vectors.file_search import FileSearchTool
from domain.llm.model import (
    ChatMessage,
    ChatRole,
    CompletionRequest,
    Reasoning,
    ResponseFormat,
    ResponseFormatType,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
)
from domain.shared.errors import RuleViolation
from interfaces.http.compat.file_search_schemas import FileSearchToolIn, file_search_of
from interfaces.http.compat.json_text import compact_json
from interfaces.http.compat.prompt_cache import CacheControlIn, control, text_parts


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextBlock(_Lenient):
    type: Literal["text"]
    text: str
    cache_control: CacheControlIn | None = None


class ToolUseBlock(_Lenient):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(_Lenient):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[TextBlock] = ""
    is_error: bool | None = None
    cache_control: CacheControlIn | None = None


class ThinkingBlock(_Lenient):
    type: Literal["thinking", "redacted_thinking"]


Block = Annotated[TextBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock, Field(discriminator="type")]


class MessageIn(_Lenient):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class ToolIn(_Lenient):
    name: str
    description: str | None = None
    input_schema: dict[str, Any]
    type: Literal["custom"] | None = None
    cache_control: CacheControlIn | None = None


class ToolChoiceIn(_Lenient):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Metadata(_Lenient):
    user_id: str | None = None


class JsonOutputFormat(_Lenient):
    type: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(alias="schema")


class OutputConfig(_Lenient):
    format: JsonOutputFormat | None = None


_json = compact_json


class ThinkingIn(_Lenient):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = Field(None, ge=1)

    def to_domain(self) -> Reasoning | None:
        """An explicit budget; thinking ``disabled`` (or adaptive, the model's own choice) asks for nothing."""
        if self.type != "enabled" or self.budget_tokens is None:
            return None
        return Reasoning(budget_tokens=self.budget_tokens)


class CreateMessageRequest(_Lenient):
    model: str = Field(min_length=1)
    messages: list[MessageIn] = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    system: str | list[TextBlock] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    stop_sequences: list[str] | None = None
    stream: bool | None = False
    tools: list[ToolIn | FileSearchToolIn] | None = None  # file_search: Switchboard's extension
    tool_choice: ToolChoiceIn | None = None
    metadata: Metadata | None = None
    output_config: OutputConfig | None = None
    thinking: ThinkingIn | None = None

    def to_domain(self) -> CompletionRequest:
        messages = _system(self.system)
        for message in self.messages:
            messages.extend(_messages(message))
        return CompletionRequest(
            model=self.model,
            messages=tuple(messages),
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            stop=tuple(s for s in self.stop_sequences or [] if s),
            tools=tuple(_tool(t) for t in self.tools or [] if isinstance(t, ToolIn)),
            tool_choice=self._tool_choice(),
            response_format=self._response_format(),
            user=self.metadata.user_id if self.metadata else None,
            reasoning=None if self.thinking is None else self.thinking.to_domain(),
        )

    def file_search(self) -> FileSearchTool | None:
        return file_search_of(self.tools)

    def _tool_choice(self) -> ToolChoice | None:
        choice = self.tool_choice
        if choice is None:
            return None
        parallel = not choice.disable_parallel_tool_use
        if choice.type == "tool":
            if not choice.name:
                raise RuleViolation("tool_choice.name: required when tool_choice.type is tool")
            return ToolChoice(mode=ToolChoiceMode.REQUIRED, name=choice.name, parallel=parallel)
        modes = {"auto": ToolChoiceMode.AUTO, "any": ToolChoiceMode.REQUIRED, "none": ToolChoiceMode.NONE}
        return ToolChoice(mode=modes[choice.type], parallel=parallel)

    def _response_format(self) -> ResponseFormat | None:
        wanted = self.output_config.format if self.output_config else None
        if wanted is None:
            return None
        return ResponseFormat(type=ResponseFormatType.JSON_SCHEMA, schema_json=_json(wanted.json_schema))


def _tool(tool: ToolIn) -> ToolDefinition:
    return ToolDefinition(
        name=tool.name,
        description=tool.description or "",
        parameters_json=_json(tool.input_schema),
        cache_control=control(tool.cache_control),
    )


def _system(system: str | list[TextBlock] | None) -> list[ChatMessage]:
    """The system prompt: one message, or one per block when a block carries a cache breakpoint."""
    if not system:
        return []
    if isinstance(system, str):
        return [ChatMessage(ChatRole.SYSTEM, system)]
    if all(block.cache_control is None for block in system):
        return [ChatMessage(ChatRole.SYSTEM, "\n\n".join(block.text for block in system))]
    return [ChatMessage(ChatRole.SYSTEM, b.text, parts=text_parts([(b.text, b.cache_control)])[1]) for b in system]


def _tool_result(block: ToolResultBlock) -> ChatMessage:
    if isinstance(block.content, str):
        pieces = [(block.content, block.cache_control)]
    else:
        pieces = [(b.text, b.cache_control) for b in block.content]
        if block.cache_control is not None:
            pieces.append(("", block.cache_control))
    content, parts = text_parts(pieces)
    return ChatMessage(ChatRole.TOOL, content, tool_call_id=block.tool_use_id, parts=parts)


def _messages(message: MessageIn) -> list[ChatMessage]:
    """One Anthropic turn as domain messages: its tool results (each its own TOOL message), then its text and calls."""
    if isinstance(message.content, str):
        role = ChatRole.USER if message.role == "user" else ChatRole.ASSISTANT
        return [ChatMessage(role, message.content)]
    results: list[ChatMessage] = []
    texts: list[tuple[str, CacheControlIn | None]] = []
    calls: list[ToolCall] = []
    for block in message.content:
        if isinstance(block, TextBlock):
            texts.append((block.text, block.cache_control))
        elif isinstance(block, ToolUseBlock):
            if message.role != "assistant":
                raise RuleViolation("messages: tool_use blocks belong to assistant turns")
            calls.append(ToolCall(id=block.id, name=block.name, arguments=_json(block.input)))
        elif isinstance(block, ToolResultBlock):
            if message.role != "user":
                raise RuleViolation("messages: tool_result blocks belong to user turns")
            results.append(_tool_result(block))
    text, parts = text_parts(texts)
    if message.role == "assistant":
        return [ChatMessage(ChatRole.ASSISTANT, text, tool_calls=tuple(calls), parts=parts)]
    return results + ([ChatMessage(ChatRole.USER, text, parts=parts)] if text or parts or not results else [])


class CountTokensRequest(CreateMessageRequest):
    """``POST /v1/messages/count_tokens``: a message request without ``max_tokens``, counted, not answered."""

    max_tokens: int = Field(1, ge=1)
