"""Anthropic's wire format: the prompt of a messages request, the answer as JSON or as SSE events."""

from __future__ import annotations

from typing import Any, Final

import orjson

from tests.fakes.upstream.answers import Answer, NewId, Prompt, content_text, count_tokens, last_user_text, split_fixed
from tests.fakes.upstream.anthropic_errors import ERRORS
from tests.fakes.upstream.behaviours import Behaviour
from tests.fakes.upstream.transport import JSON, Headers

SERVED_PATH: Final = "/v1/messages"
TOOL_ID_PREFIX: Final = "toolu_"
# Not "claude-sonnet-4-5": anthropic 2.x emits a DeprecationWarning for it.
DEFAULT_MODELS: Final = ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-7")

# status -> (type, message)


def input_tokens(body: dict[str, Any]) -> int:
    """Words in the system prompt and the messages (at least 1)."""
    words = count_tokens(content_text(body.get("system")))
    words += sum(count_tokens(content_text(m.get("content"))) for m in body["messages"] if isinstance(m, dict))
    return max(1, words)


def prompt(body: dict[str, Any]) -> Prompt:
    messages: list[dict[str, Any]] = body["messages"]
    last = messages[-1]
    content = last.get("content")
    is_tool_result = isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )
    tools, forced = _tools(body)
    return Prompt(
        model=body["model"],
        last_role=str(last.get("role")),
        last_text=content_text(content),
        user_text=last_user_text(messages),
        last_is_tool_result=is_tool_result,
        input_tokens=input_tokens(body),
        tools=tools,
        forced_tool=forced,
        max_tokens=body["max_tokens"],
        stops=[s for s in body.get("stop_sequences") or [] if isinstance(s, str) and s],
        stream=bool(body.get("stream")),
    )


def _tools(body: dict[str, Any]) -> tuple[list[tuple[str, Any]], str | None]:
    """The offered tools (none under ``tool_choice: {"type": "none"}``) and the one the tool choice forces."""
    tools: list[tuple[str, Any]] = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            tools.append((tool["name"], tool.get("input_schema") or {}))
    forced: str | None = None
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        if choice.get("type") == "tool":
            forced = choice.get("name")
        elif choice.get("type") == "any" and tools:
            forced = tools[0][0]
        elif choice.get("type") == "none":
            tools = []
    return tools, forced


# ---- answers -------------------------------------------------------------------------------------


def _usage(answer: Answer) -> dict[str, Any]:
    return {
        "input_tokens": answer.input_tokens,
        "cache_creation_input_tokens": answer.cache_creation_tokens,
        "cache_read_input_tokens": answer.cached_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": answer.cache_creation_tokens,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": answer.output_tokens,
        "service_tier": "standard",
    }


def _stop_reason(answer: Answer) -> str:
    return {"end": "end_turn", "stop_sequence": "stop_sequence", "length": "max_tokens", "tool": "tool_use"}[
        answer.reason
    ]


def completion(body: dict[str, Any], prompt: Prompt, answer: Answer, new_id: NewId) -> dict[str, Any]:
    if answer.tool is not None:
        tool = answer.tool
        content = [{"type": "tool_use", "id": tool.id, "name": tool.name, "input": tool.arguments}]
    else:
        content = [{"type": "text", "text": answer.text}]
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": prompt.model,
        "content": content,
        "stop_reason": _stop_reason(answer),
        "stop_sequence": answer.stop_sequence,
        "usage": _usage(answer),
    }


def missing_fields(model: str) -> dict[str, Any]:
    return {"id": "msg_missing", "type": "message", "role": "assistant", "model": model}


def response_headers(request_id: str) -> Headers:
    return [JSON, id_header(request_id)]


def id_header(request_id: str) -> tuple[str, str]:
    return ("request-id", request_id)


# ---- streams -------------------------------------------------------------------------------------


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def stream(
    body: dict[str, Any], prompt: Prompt, answer: Answer, b: Behaviour, new_id: NewId, request_id: str
) -> tuple[list[bytes], bytes]:
    """The SSE events of ``answer``, and the in-stream error event for ``b``."""
    message: dict[str, Any] = {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": prompt.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**_usage(answer), "output_tokens": 1},
    }
    stop = _event("message_stop", {"type": "message_stop"})
    if b.kind == "missing_fields":
        del message["usage"], message["content"]
        return [_event("message_start", {"type": "message_start", "message": message}), stop], b""
    events = [_event("message_start", {"type": "message_start", "message": message}), *_content_block(answer)]
    delta = {"stop_reason": _stop_reason(answer), "stop_sequence": answer.stop_sequence}
    usage = {"output_tokens": answer.output_tokens}
    events.append(_event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    events.append(stop)
    etype, emessage = ERRORS.get(b.status, ERRORS[500])
    error_data = {"type": etype, "message": emessage.format(model=prompt.model)}
    return events, _event("error", {"type": "error", "error": error_data, "request_id": request_id})


def _content_block(answer: Answer) -> list[bytes]:
    """The one content block (text, or a tool call) from its start to its stop, with a ping after the start."""
    tool = answer.tool
    deltas: list[dict[str, Any]]
    if tool is not None:
        block: dict[str, Any] = {"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in split_fixed(tool.arguments_json, 8)]
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in answer.pieces]
    return [
        _event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
        _event("ping", {"type": "ping"}),
        *(_event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d}) for d in deltas),
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ]


# ---- models ------------------------------------------------------------------------------------


def model_info(name: str) -> dict[str, Any]:
    return {
        "type": "model",
        "id": name,
        "display_name": name.replace("-", " ").title(),
        "created_at": "2025-01-01T00:00:00Z",
        "lifecycle": "active",
    }


def models_page(names: list[str]) -> dict[str, Any]:
    return {
        "data": [model_info(n) for n in names],
        "has_more": False,
        "first_id": names[0] if names else None,
        "last_id": names[-1] if names else None,
    }
