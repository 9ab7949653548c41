"""Requests of OpenAI's Responses API, as its SDKs send them, and their domain meaning (pure: body in, command out).

Input items become the domain's chat messages: a message (``input_text`` / ``output_text`` parts), a
``function_call`` (joined to the assistant turn before it), a ``function_call_output`` (a tool result). Reasoning
items a client sends back are dropped (no provider here takes them back). Images, files, item references and
built-in tools other than ``file_search`` (web search, computer use, ...) are refused with a 400, never ignored: the
answer would be wrong. ``file_search`` is answered by Switchboard itself (``application.vectors.file_search``).
``reasoning`` (effort, summary) is passed on where the serving provider has reasoning settings. Settings with no
meaning for a chat model (``truncation``, ``include``, ...) are accepted, echoed and not passed on.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from application.vectors.file_search import FileSearchTool
from domain.llm.model import (
    EMPTY_OBJECT_SCHEMA,
    ChatMessage,
    ChatRole,
    CompletionRequest,
    Reasoning,
    ReasoningEffort,
    ResponseFormat,
    ResponseFormatType,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
)
from domain.responses.errors import response_not_found
from domain.responses.model import parse_public_id
from domain.shared.errors import RuleViolation
from interfaces.http.compat.file_search_schemas import FileSearchToolIn, file_search_of


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(_Lenient):
    type: str
    text: str | None = None


class MessageItem(_Lenient):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ContentPart]


class FunctionCallItem(_Lenient):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str
    arguments: str


class FunctionCallOutputItem(_Lenient):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: str | list[ContentPart]


class ReasoningItem(_Lenient):
    type: Literal["reasoning"]


def _item_type(value: Any) -> str:
    kind = value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", "message")
    return str(kind)


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[ReasoningItem, Tag("reasoning")],
    Discriminator(_item_type),
]


class FunctionTool(_Lenient):
    type: Literal["function"]
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedFunction(_Lenient):
    type: Literal["function"]
    name: str


class TextFormat(_Lenient):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    json_schema: dict[str, Any] | None = Field(None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextSettings(_Lenient):
    format: TextFormat = TextFormat.model_validate({})
    verbosity: str | None = None


class ReasoningSettings(_Lenient):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None

    def to_domain(self) -> Reasoning | None:
        if self.effort is None and self.summary is None:
            return None
        return Reasoning(effort=None if self.effort is None else ReasoningEffort(self.effort), summary=self.summary)


class CreateResponseRequest(_Lenient):
    model: str = Field(min_length=1)
    input: str | list[InputItem]
    instructions: str | None = None
    tools: list[Annotated[FunctionTool | FileSearchToolIn, Field(discriminator="type")]] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedFunction | None = None
    parallel_tool_calls: bool | None = None
    text: TextSettings | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    store: bool | None = True
    stream: bool | None = False
    background: bool | None = False
    previous_response_id: str | None = None
    include: list[str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    reasoning: ReasoningSettings | None = None
    service_tier: str | None = None

    def to_domain(self) -> CompletionRequest:
        """This request's own input and settings (instructions and history are the use case's business)."""
        return CompletionRequest(
            model=self.model,
            messages=input_messages(self.input),
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_output_tokens,
            tools=tuple(_tool(t) for t in self.tools or [] if isinstance(t, FunctionTool)),
            tool_choice=self._tool_choice(),
            response_format=_response_format(self.text),
            user=self.safety_identifier or self.user,
            reasoning=None if self.reasoning is None else self.reasoning.to_domain(),
        )

    def file_search(self) -> FileSearchTool | None:
        """The ``file_search`` tool, its passages shown when ``include`` asks for ``file_search_call.results``."""
        tool = file_search_of(self.tools)
        shown = "file_search_call.results" in (self.include or [])
        return None if tool is None else replace(tool, show_results=shown)

    def previous_id(self) -> uuid.UUID | None:
        """The uuid of ``previous_response_id``; an id that cannot be one of ours is simply not found."""
        if self.previous_response_id is None:
            return None
        found = parse_public_id(self.previous_response_id)
        if found is None:
            raise response_not_found(self.previous_response_id)
        return found

    def settings(self) -> dict[str, Any]:
        """What the response object echoes of the request."""
        return {
            "tools": [_tool_body(t) for t in self.tools or []],
            "tool_choice": _dump(self.tool_choice) if self.tool_choice is not None else "auto",
            "parallel_tool_calls": self.parallel_tool_calls is not False,
            "text": {"format": _format_body(self.text)},
            "max_output_tokens": self.max_output_tokens,
            "temperature": 1.0 if self.temperature is None else self.temperature,
            "top_p": 1.0 if self.top_p is None else self.top_p,
            "metadata": self.metadata or {},
            "user": self.user,
            "safety_identifier": self.safety_identifier,
            "store": self.store is not False,
            "background": bool(self.background),
            "truncation": self.truncation or "disabled",
            "reasoning": {"effort": None, "summary": None} | _dump(self.reasoning or {}),
            "service_tier": "default",
        }

    def settings_json(self) -> str:
        return orjson.dumps(self.settings()).decode()

    def _tool_choice(self) -> ToolChoice | None:
        parallel = self.parallel_tool_calls is not False
        choice = self.tool_choice
        if isinstance(choice, NamedFunction):
            return ToolChoice(mode=ToolChoiceMode.REQUIRED, name=choice.name, parallel=parallel)
        if choice is None and parallel:
            return None
        return ToolChoice(mode=ToolChoiceMode(choice or "auto"), parallel=parallel)


class InputTokensRequest(CreateResponseRequest):
    """``POST /v1/responses/input_tokens``: the request a response would be, counted (its input may be empty)."""

    input: str | list[InputItem] = ""


def _dump(value: Any) -> Any:
    return value.model_dump(by_alias=True, exclude_none=True) if isinstance(value, BaseModel) else value


def _tool_body(tool: FunctionTool | FileSearchToolIn) -> dict[str, Any]:
    if isinstance(tool, FileSearchToolIn):
        return tool.body()
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
        "strict": tool.strict is not False,
    }


def _format_body(text: TextSettings | None) -> dict[str, Any]:
    return {"type": "text"} if text is None else _dump(text.format)


def _tool(tool: FunctionTool) -> ToolDefinition:
    parameters = EMPTY_OBJECT_SCHEMA if tool.parameters is None else orjson.dumps(tool.parameters).decode()
    return ToolDefinition(name=tool.name, description=tool.description or "", parameters_json=parameters)


def _response_format(text: TextSettings | None) -> ResponseFormat | None:
    if text is None or text.format.type == "text":
        return None
    wanted = text.format
    if wanted.type == "json_object":
        return ResponseFormat(type=ResponseFormatType.JSON_OBJECT)
    if wanted.json_schema is None or not wanted.name:
        raise RuleViolation("text.format: a json_schema format needs a name and a schema")
    return ResponseFormat(
        type=ResponseFormatType.JSON_SCHEMA,
        name=wanted.name,
        schema_json=orjson.dumps(wanted.json_schema).decode(),
        strict=wanted.strict,
    )


def _text(content: str | list[ContentPart], where: str) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.type not in ("input_text", "output_text", "text", "refusal") or part.text is None:
            raise RuleViolation(f"{where}: '{part.type}' content is not supported; send text")
        texts.append(part.text)
    return "".join(texts)


_ROLES = {
    "user": ChatRole.USER,
    "assistant": ChatRole.ASSISTANT,
    "system": ChatRole.SYSTEM,
    "developer": ChatRole.SYSTEM,
}


def input_messages(value: str | list[Any]) -> tuple[ChatMessage, ...]:
    """The input as chat messages; a function call joins the assistant turn just before it (one turn may ask for
    several calls, and say something first)."""
    if isinstance(value, str):
        return (ChatMessage(ChatRole.USER, value),)
    messages: list[ChatMessage] = []
    for index, item in enumerate(value):
        if isinstance(item, MessageItem):
            messages.append(ChatMessage(_ROLES[item.role], _text(item.content, f"input[{index}].content")))
        elif isinstance(item, FunctionCallItem):
            call = ToolCall(id=item.call_id, name=item.name, arguments=item.arguments)
            last = messages[-1] if messages else None
            if last is not None and last.role is ChatRole.ASSISTANT:
                messages[-1] = ChatMessage(ChatRole.ASSISTANT, last.content, tool_calls=(*last.tool_calls, call))
            else:
                messages.append(ChatMessage(ChatRole.ASSISTANT, "", tool_calls=(call,)))
        elif isinstance(item, FunctionCallOutputItem):
            output = _text(item.output, f"input[{index}].output")
            messages.append(ChatMessage(ChatRole.TOOL, output, tool_call_id=item.call_id))
    return tuple(messages)
