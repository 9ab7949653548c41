"""Google Gemini's ``generateContent`` wire format, both ways, as plain JSON values.

System messages go, merged, into ``systemInstruction``; the turns are ``contents`` of role ``user`` or ``model``
(consecutive turns of one role merged). Tools: a ``ToolDefinition`` is a ``functionDeclaration`` (its JSON Schema as
``parametersJsonSchema``), an assistant's ``ToolCall``s are ``functionCall`` parts after its text, and a ``TOOL``
message is a ``functionResponse`` part (named after the call it answers; a JSON-object result goes as it is, other
text as ``{"result": text}``). ``tool_choice`` is ``toolConfig.functionCallingConfig`` (required: ``ANY``; one named
tool: ``ANY`` with ``allowedFunctionNames``). A JSON response format is ``responseMimeType: application/json``, with
the schema as ``responseJsonSchema``. Gemini gives calls no id unless it sends one: the adapter numbers them.

Usage: ``promptTokenCount`` is every prompt token, ``cachedContentTokenCount`` the cache reads among them; output
counts the answer and the model's thinking (``thoughtsTokenCount``), billed alike. Readers raise ``SHAPE_FAILURES``.
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
    EmbeddingRequest,
    FinishReason,
    ModelSpec,
    ResponseFormatType,
    ServedBy,
    TokenUsage,
    ToolCall,
    ToolChoiceMode,
)
from infrastructure.llm.reasoning import thinking_budget
from infrastructure.llm.token_counts import count_of

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
MAX_THINKING_BUDGET = 24576  # the most 2.5 Flash takes (Pro takes 32,768)
_FINISH = {
    "STOP": FinishReason.STOP,
    "MAX_TOKENS": FinishReason.LENGTH,
    "SAFETY": FinishReason.CONTENT_FILTER,
    "RECITATION": FinishReason.CONTENT_FILTER,
    "BLOCKLIST": FinishReason.CONTENT_FILTER,
    "PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER,
    "SPII": FinishReason.CONTENT_FILTER,
    "IMAGE_SAFETY": FinishReason.CONTENT_FILTER,
}
Part = dict[str, Any]


def _object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"result": text}


def _parts(message: ChatMessage, names: Mapping[str, str]) -> list[Part]:
    if message.role is ChatRole.TOOL:
        call_id = message.tool_call_id or ""
        response = {"name": names.get(call_id, call_id), "response": _object(message.content)}
        return [{"functionResponse": response}]
    parts: list[Part] = [{"text": message.content}] if message.content else []
    parts.extend({"functionCall": {"name": c.name, "args": _object(c.arguments)}} for c in message.tool_calls)
    return parts


def contents(request: CompletionRequest) -> list[dict[str, Any]]:
    """The turns, same-role neighbours merged; a tool result is a user turn."""
    names = {call.id: call.name for m in request.messages for call in m.tool_calls}
    turns: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role is ChatRole.SYSTEM:
            continue
        role = "model" if message.role is ChatRole.ASSISTANT else "user"
        parts = _parts(message, names) or [{"text": ""}]
        if turns and turns[-1]["role"] == role:
            turns[-1]["parts"].extend(parts)
        else:
            turns.append({"role": role, "parts": parts})
    return turns


def _generation_config(spec: ModelSpec, request: CompletionRequest) -> dict[str, Any]:
    config: dict[str, Any] = {"maxOutputTokens": request.max_tokens or spec.max_output_tokens}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop:
        config["stopSequences"] = list(request.stop)
    wanted = request.response_format
    if wanted is not None and wanted.type is not ResponseFormatType.TEXT:
        config["responseMimeType"] = "application/json"
        if wanted.type is ResponseFormatType.JSON_SCHEMA and wanted.schema_json is not None:
            config["responseJsonSchema"] = json.loads(wanted.schema_json)
    budget = thinking_budget(request.reasoning)
    if budget is not None:  # 0 turns thinking off (where the model allows it: 2.5 Pro refuses)
        config["thinkingConfig"] = {"thinkingBudget": min(budget, MAX_THINKING_BUDGET)}
    return config


def _tool_params(request: CompletionRequest) -> dict[str, Any]:
    if not request.tools:
        return {}
    declarations = [
        {
            "name": t.name,
            **({"description": t.description} if t.description else {}),
            "parametersJsonSchema": json.loads(t.parameters_json),
        }
        for t in request.tools
    ]
    params: dict[str, Any] = {"tools": [{"functionDeclarations": declarations}]}
    choice = request.tool_choice
    if choice is not None:
        modes = {ToolChoiceMode.AUTO: "AUTO", ToolChoiceMode.NONE: "NONE", ToolChoiceMode.REQUIRED: "ANY"}
        config: dict[str, Any] = {"mode": "ANY" if choice.name else modes[choice.mode]}
        if choice.name:
            config["allowedFunctionNames"] = [choice.name]
        params["toolConfig"] = {"functionCallingConfig": config}
    return params


def request_body(spec: ModelSpec, request: CompletionRequest) -> dict[str, Any]:
    """The JSON body of a ``generateContent`` call (the model goes in the path)."""
    body: dict[str, Any] = {"contents": contents(request), "generationConfig": _generation_config(spec, request)}
    system = "\n\n".join(m.content for m in request.messages if m.role is ChatRole.SYSTEM)
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    body.update(_tool_params(request))
    return body


def read_usage(usage: Mapping[str, Any]) -> TokenUsage:
    return TokenUsage(
        input_tokens=count_of(usage, "promptTokenCount"),
        output_tokens=count_of(usage, "candidatesTokenCount") + count_of(usage, "thoughtsTokenCount"),
        cached_tokens=count_of(usage, "cachedContentTokenCount"),
    )


@dataclass
class ResponseState:
    """What the response (or the stream, chunk by chunk) has said so far."""

    pieces: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    reason: str | None = None
    usage: TokenUsage | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def completion(self, served_by: ServedBy) -> Completion:
        finish = FinishReason.TOOL_CALLS if self.calls else _FINISH.get(self.reason or "STOP", FinishReason.STOP)
        return Completion(
            content=self.text,
            finish_reason=finish,
            usage=self.usage or TokenUsage(),
            served_by=served_by,
            tool_calls=tuple(self.calls),
        )


def read_chunk(body: Any, state: ResponseState) -> tuple[list[str], list[ToolCall]]:
    """The text pieces and whole function calls of one response (or stream chunk), recorded in ``state``."""
    if not isinstance(body, Mapping):
        raise TypeError("the body is not a JSON object")
    if isinstance(body.get("usageMetadata"), Mapping):
        state.usage = read_usage(body["usageMetadata"])
    candidates = body.get("candidates") or []
    if not candidates:
        blocked = (body.get("promptFeedback") or {}).get("blockReason")
        if blocked:
            state.reason = "SAFETY"
        return [], []
    candidate = candidates[0]
    if candidate.get("finishReason"):
        state.reason = str(candidate["finishReason"])
    texts: list[str] = []
    calls: list[ToolCall] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
        elif isinstance(part.get("functionCall"), Mapping):
            call = part["functionCall"]
            if not isinstance(call.get("name"), str):
                raise TypeError("a functionCall without a name")
            call_id = call.get("id") or f"call_{len(state.calls) + len(calls)}"
            arguments = json.dumps(call.get("args") or {}, separators=(",", ":"))
            calls.append(ToolCall(id=str(call_id), name=call["name"], arguments=arguments))
    state.pieces.extend(texts)
    state.calls.extend(calls)
    return texts, calls


def read_response(body: Any, served_by: ServedBy) -> Completion:
    state = ResponseState()
    read_chunk(body, state)
    if state.usage is None:
        raise KeyError("usageMetadata")
    return state.completion(served_by)


def embeddings_body(spec: ModelSpec, request: EmbeddingRequest) -> dict[str, Any]:
    """A ``batchEmbedContents`` body: one request per input, each naming the model."""
    dimensions = request.dimensions or spec.dimensions
    extra = {"outputDimensionality": dimensions} if dimensions is not None else {}
    model = f"models/{spec.upstream_model}"
    return {"requests": [{"model": model, "content": {"parts": [{"text": t}]}, **extra} for t in request.inputs]}


def read_vectors(body: Any, request: EmbeddingRequest) -> tuple[tuple[float, ...], ...]:
    if not isinstance(body, Mapping):
        raise TypeError("the body is not a JSON object")
    embeddings = body["embeddings"]
    if len(embeddings) != len(request.inputs):
        raise ValueError(f"{len(embeddings)} vectors for {len(request.inputs)} inputs")
    return tuple(tuple(float(v) for v in item["values"]) for item in embeddings)
