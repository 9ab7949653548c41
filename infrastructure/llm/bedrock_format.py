"""AWS Bedrock's Converse wire format, both ways, as plain JSON values (the API that speaks to every Bedrock chat
model alike).

System messages are ``system`` text blocks; the turns are ``messages`` of role ``user`` or ``assistant`` (neighbours
of one role merged), each a list of content blocks: ``text``, ``toolUse`` (an assistant's calls) and ``toolResult``
(a ``TOOL`` message, at the head of the next user turn). Tools are ``toolConfig.tools[].toolSpec`` with the JSON
Schema as ``inputSchema.json``; ``tool_choice`` is ``auto``, ``any`` or ``tool``. Converse has no ``none``: tools
are then left out, unless the conversation already holds tool blocks (which need them), when the model decides.
Converse has no JSON-schema output: a response format is not sent. A prompt-cache breakpoint (``cache_control``)
is a ``cachePoint`` block after the marked text, tool or system block (Claude and Nova models honour them).

Usage: like Anthropic's, ``inputTokens`` leaves out cache reads and writes, which the domain counts within.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.llm.model import (
    ChatMessage,
    ChatRole,
    Completion,
    CompletionRequest,
    FinishReason,
    ModelSpec,
    ServedBy,
    TokenUsage,
    ToolCall,
    ToolChoiceMode,
)
from infrastructure.llm.token_counts import count_of

_STOP = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "guardrail_intervened": FinishReason.CONTENT_FILTER,
    "content_filtered": FinishReason.CONTENT_FILTER,
}
CACHE_POINT = {"cachePoint": {"type": "default"}}
Block = dict[str, Any]


def _object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {}


def _texts(message: ChatMessage) -> list[Block]:
    if not message.parts:
        return [{"text": message.content}] if message.content else []
    blocks: list[Block] = []
    for part in message.parts:
        if part.text:
            blocks.append({"text": part.text})
        if part.cache_control is not None:
            blocks.append(CACHE_POINT)
    return blocks


def _blocks(message: ChatMessage) -> list[Block]:
    if message.role is ChatRole.TOOL:
        result = {"toolUseId": message.tool_call_id or "", "content": [{"text": message.content}]}
        return [{"toolResult": result}, *([CACHE_POINT] if message.cached else [])]
    blocks = _texts(message)
    calls = [
        {"toolUse": {"toolUseId": c.id, "name": c.name, "input": _object(c.arguments)}} for c in message.tool_calls
    ]
    return blocks + calls


def messages(request: CompletionRequest) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role is ChatRole.SYSTEM:
            continue
        role = "assistant" if message.role is ChatRole.ASSISTANT else "user"
        blocks = _blocks(message) or [{"text": " "}]  # Converse refuses empty text
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _tool_config(request: CompletionRequest) -> dict[str, Any]:
    choice = request.tool_choice
    has_tool_blocks = any(m.tool_calls or m.role is ChatRole.TOOL for m in request.messages)
    if not request.tools or (choice is not None and choice.mode is ToolChoiceMode.NONE and not has_tool_blocks):
        return {}
    tools: list[Block] = []
    for tool in request.tools:
        spec = {"name": tool.name, "inputSchema": {"json": json.loads(tool.parameters_json)}}
        tools.append({"toolSpec": {**spec, **({"description": tool.description} if tool.description else {})}})
        if tool.cache_control is not None:
            tools.append(CACHE_POINT)
    config: dict[str, Any] = {"tools": tools}
    if choice is not None and choice.name is not None:
        config["toolChoice"] = {"tool": {"name": choice.name}}
    elif choice is not None and choice.mode is ToolChoiceMode.REQUIRED:
        config["toolChoice"] = {"any": {}}
    elif choice is not None and choice.mode is ToolChoiceMode.AUTO:
        config["toolChoice"] = {"auto": {}}
    return {"toolConfig": config}


def request_body(spec: ModelSpec, request: CompletionRequest) -> dict[str, Any]:
    """The JSON body of a Converse call (the model goes in the path)."""
    inference: dict[str, Any] = {"maxTokens": request.max_tokens or spec.max_output_tokens}
    if request.temperature is not None:
        inference["temperature"] = request.temperature
    if request.top_p is not None:
        inference["topP"] = request.top_p
    if request.stop:
        inference["stopSequences"] = list(request.stop)
    body: dict[str, Any] = {"messages": messages(request), "inferenceConfig": inference}
    system = [block for m in request.messages if m.role is ChatRole.SYSTEM for block in _texts(m)]
    if system:
        body["system"] = system
    body.update(_tool_config(request))
    return body


def read_usage(usage: Mapping[str, Any]) -> TokenUsage:
    read, write = count_of(usage, "cacheReadInputTokens"), count_of(usage, "cacheWriteInputTokens")
    return TokenUsage(
        input_tokens=count_of(usage, "inputTokens") + read + write,
        output_tokens=count_of(usage, "outputTokens"),
        cached_tokens=read,
        cache_write_tokens=write,
    )


def stop(reason: object) -> FinishReason:
    if not isinstance(reason, str):
        raise ValueError("no stopReason")
    return _STOP.get(reason, FinishReason.STOP)


def read_response(body: Any, served_by: ServedBy) -> Completion:
    """A Converse response (``output.message.content``, ``stopReason``, ``usage``) as a ``Completion``."""
    if not isinstance(body, Mapping):
        raise TypeError("the body is not a JSON object")
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in body["output"]["message"]["content"]:
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), Mapping):
            use = block["toolUse"]
            arguments = json.dumps(use.get("input") or {}, separators=(",", ":"))
            calls.append(ToolCall(id=str(use["toolUseId"]), name=str(use["name"]), arguments=arguments))
    return Completion(
        content="".join(texts),
        finish_reason=stop(body.get("stopReason")),
        usage=read_usage(body["usage"]),
        served_by=served_by,
        tool_calls=tuple(calls),
    )


@dataclass
class StreamState:
    """What a ConverseStream has delivered so far."""

    pieces: list[str] = field(default_factory=list)
    calls: dict[int, list[str]] = field(default_factory=dict)  # content block index -> [id, name, input pieces...]
    finish: FinishReason | None = None
    usage: TokenUsage | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def completion(self, served_by: ServedBy) -> Completion:
        return Completion(
            content=self.text,
            finish_reason=self.finish or FinishReason.STOP,
            usage=self.usage or TokenUsage(),
            served_by=served_by,
            tool_calls=tuple(
                ToolCall(id=parts[0], name=parts[1], arguments="".join(parts[2:]) or "{}")
                for parts in self.calls.values()
            ),
        )
