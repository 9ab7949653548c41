"""OpenAI's Chat Completions wire format, both ways, as plain JSON values: what both OpenAI adapters (direct and
SDK) send and how they read what comes back.

Tools map one to one: a ``ToolDefinition`` is a ``function`` tool, an assistant's ``ToolCall``s its ``tool_calls``,
a ``TOOL`` message a ``role: tool`` message; streamed ``tool_calls`` deltas become ``ToolCallDelta``s. Readers raise
``TypeError``/``ValueError``/``KeyError``/``IndexError``/``AttributeError`` (``SHAPE_FAILURES``) for a body that
does not match the API; the adapters turn that into ``UpstreamBadResponse``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.llm.model import (
    ChatMessage,
    ChatRole,
    Completion,
    CompletionRequest,
    EmbeddingRequest,
    Embeddings,
    FinishReason,
    ModelSpec,
    ResponseFormat,
    ResponseFormatType,
    ServedBy,
    StreamEvent,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
)
from domain.llm.tokens import estimated_usage
from infrastructure.llm.presets import openai_compatible
from infrastructure.llm.reasoning import reasoning_effort

OPENAI_BASE_URL = "https://api.openai.com/v1"
_FINISH = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
}


def _message(message: ChatMessage) -> dict[str, Any]:
    if message.role is ChatRole.SYSTEM:
        return {"role": "system", "content": message.content}
    if message.role is ChatRole.TOOL:
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content}
    if message.role is ChatRole.ASSISTANT and message.tool_calls:
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
        return {"role": "assistant", "content": message.content or None, "tool_calls": calls}
    if message.role is ChatRole.ASSISTANT:
        return {"role": "assistant", "content": message.content}
    return {"role": "user", "content": message.content}


def _tool_choice(choice: ToolChoice) -> Any:
    if choice.name is not None:
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode.value  # auto, none, required: the same words


def _response_format(wanted: ResponseFormat) -> dict[str, Any]:
    if wanted.type is not ResponseFormatType.JSON_SCHEMA:
        return {"type": wanted.type.value}
    schema: dict[str, Any] = {"name": wanted.name or "response"}
    if wanted.schema_json is not None:
        schema["schema"] = json.loads(wanted.schema_json)
    if wanted.strict is not None:
        schema["strict"] = wanted.strict
    return {"type": "json_schema", "json_schema": schema}


def request_body(spec: ModelSpec, request: CompletionRequest) -> dict[str, Any]:
    """The JSON body of a chat completion for ``spec``'s upstream model; options not asked for are left out."""
    body: dict[str, Any] = {"model": spec.upstream_model, "messages": [_message(m) for m in request.messages]}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.max_tokens is not None:
        # OpenAI's reasoning models only take max_completion_tokens; servers that mimic the API know max_tokens.
        body["max_tokens" if openai_compatible(spec.provider) else "max_completion_tokens"] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    if request.response_format is not None:
        body["response_format"] = _response_format(request.response_format)
    if request.user is not None:
        body["user"] = request.user
    effort = reasoning_effort(request.reasoning)
    if effort is not None and not openai_compatible(spec.provider):  # OpenAI's (and Azure's) reasoning models
        body["reasoning_effort"] = effort
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "parameters": json.loads(t.parameters_json),
                },
            }
            for t in request.tools
        ]
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice)
            if not request.tool_choice.parallel:
                body["parallel_tool_calls"] = False
    return body


def _tool_calls(calls: Sequence[Any] | None) -> tuple[ToolCall, ...]:
    found: list[ToolCall] = []
    for call in calls or []:
        if call.get("type", "function") != "function":
            raise TypeError(f"a {call['type']} tool call is not supported")
        function = call["function"]
        arguments = function.get("arguments")
        if not isinstance(call.get("id"), str) or not isinstance(arguments, str):
            raise TypeError("a tool call without id or arguments")
        found.append(ToolCall(id=call["id"], name=function["name"], arguments=arguments or "{}"))
    return tuple(found)


def read_usage(usage: Mapping[str, Any]) -> TokenUsage:
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    if cached is None:  # DeepSeek reports its prompt-cache hits on their own
        cached = usage.get("prompt_cache_hit_tokens")
    values = (usage.get("prompt_tokens"), usage.get("completion_tokens"), cached or 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise ValueError("token counts are not non-negative integers")
    return TokenUsage(input_tokens=values[0], output_tokens=values[1], cached_tokens=values[2])  # type: ignore[arg-type]


def _finish(reason: object) -> FinishReason:
    if not isinstance(reason, str):
        raise ValueError("no finish_reason")
    return _FINISH.get(reason, FinishReason.STOP)


def read_completion(body: Any, request: CompletionRequest, served_by: ServedBy) -> Completion:
    """A chat completion body (``choices[0].message``, ``finish_reason``, ``usage``) as a ``Completion``."""
    if not isinstance(body, Mapping):
        raise TypeError("the body is not a JSON object")
    choice = body["choices"][0]
    message = choice["message"]
    content = message.get("content") or ""
    if not isinstance(content, str):
        raise TypeError("content is not text")
    finish = _finish(choice.get("finish_reason"))
    calls = _tool_calls(message.get("tool_calls"))
    usage = body.get("usage")
    tokens = read_usage(usage) if usage is not None else estimated_usage(request, content)
    return Completion(content=content, finish_reason=finish, usage=tokens, served_by=served_by, tool_calls=calls)


@dataclass
class StreamState:
    """What a stream has delivered so far."""

    pieces: list[str] = field(default_factory=list)
    finish: FinishReason | None = None
    usage: TokenUsage | None = None
    calls: dict[int, list[str]] = field(default_factory=dict)  # upstream index -> [id, name, arguments...], in order
    done: bool = False  # data: [DONE] was read

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(id=parts[0], name=parts[1], arguments="".join(parts[2:]) or "{}") for parts in self.calls.values()
        )

    def completion(self, request: CompletionRequest, served_by: ServedBy) -> Completion:
        """The answer of a stream that ended properly."""
        usage = self.usage or estimated_usage(request, self.text)
        return Completion(
            content=self.text,
            finish_reason=self.finish or FinishReason.STOP,
            usage=usage,
            served_by=served_by,
            tool_calls=self.tool_calls(),
        )


def _read_tool_call_delta(call: Mapping[str, Any], state: StreamState) -> ToolCallDelta:
    """A streamed piece of a tool call: the first names the call, the rest carry pieces of its arguments."""
    index = call.get("index")
    if not isinstance(index, int) or isinstance(index, bool):
        raise TypeError("a tool call delta without index")
    function = call.get("function") or {}
    arguments = function.get("arguments") or ""
    if not isinstance(arguments, str):
        raise TypeError("tool call arguments are not text")
    if index not in state.calls:
        name, call_id = function.get("name"), call.get("id")
        if not isinstance(call_id, str) or not isinstance(name, str):
            raise TypeError("a tool call starts without its id and name")
        state.calls[index] = [call_id, name, arguments]
        return ToolCallDelta(index=len(state.calls) - 1, id=call_id, name=name, arguments=arguments)
    state.calls[index].append(arguments)
    return ToolCallDelta(index=list(state.calls).index(index), arguments=arguments)


def read_chunk(chunk: Any, state: StreamState) -> list[StreamEvent]:
    """The events of one ``chat.completion.chunk``; its usage and finish reason go into ``state``."""
    if not isinstance(chunk, Mapping):
        raise TypeError("a stream event is not a JSON object")
    usage = chunk.get("usage")
    if usage is not None:
        state.usage = read_usage(usage)
    events: list[StreamEvent] = []
    for choice in chunk.get("choices") or ():
        if choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content is not None and not isinstance(content, str):
            raise TypeError("delta content is not text")
        if content:
            state.pieces.append(content)
            events.append(TextDelta(content))
        for call in delta.get("tool_calls") or ():
            events.append(_read_tool_call_delta(call, state))
        reason = choice.get("finish_reason")
        if reason is not None:
            state.finish = _finish(reason)
    return events


def embeddings_body(spec: ModelSpec, request: EmbeddingRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": spec.upstream_model, "input": list(request.inputs), "encoding_format": "float"}
    dimensions = request.dimensions or spec.dimensions
    if dimensions is not None:
        body["dimensions"] = dimensions
    if request.user is not None:
        body["user"] = request.user
    return body


def read_embeddings(body: Any, request: EmbeddingRequest, served_by: ServedBy) -> Embeddings:
    """An embeddings body (``data[].embedding`` by ``index``, ``usage.prompt_tokens``) as ``Embeddings``."""
    if not isinstance(body, Mapping):
        raise TypeError("the body is not a JSON object")
    data = sorted(body["data"], key=lambda item: item["index"])
    if len(data) != len(request.inputs):
        raise ValueError(f"{len(data)} vectors for {len(request.inputs)} inputs")
    vectors = tuple(tuple(float(v) for v in item["embedding"]) for item in data)
    tokens = body["usage"]["prompt_tokens"]
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise ValueError("token counts are not non-negative integers")
    return Embeddings(vectors=vectors, usage=TokenUsage(input_tokens=tokens), served_by=served_by)


def input_tokens_body(spec: ModelSpec, request: CompletionRequest) -> dict[str, Any]:
    """The request as OpenAI's ``POST /v1/responses/input_tokens`` counts it: its turns as Responses input items."""
    items: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role is ChatRole.TOOL:
            items.append({"type": "function_call_output", "call_id": message.tool_call_id, "output": message.content})
            continue
        if message.content or not message.tool_calls:
            items.append({"role": message.role.value, "content": message.content})
        items += [
            {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}
            for c in message.tool_calls
        ]
    body: dict[str, Any] = {"model": spec.upstream_model, "input": items}
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": json.loads(t.parameters_json),
            }
            for t in request.tools
        ]
    return body


def read_input_tokens(body: Any) -> int:
    count = body["input_tokens"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise TypeError("input_tokens is not a count")
    return count
