"""AWS Bedrock's Converse wire format: the prompt of a Converse request, the answer as JSON, and ConverseStream's
answer in the AWS event-stream binary framing.

botocore parses event streams but has no encoder, so ``frame`` writes one message by the published layout (a
prelude of total and header lengths with its CRC32, string headers, the payload, the message CRC32); the adapter
reads it with botocore's parser, which checks both CRCs. The model and the stream flag come from the path (the
router hands them over as ``_model`` and ``_stream`` entries of the body).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, Final

import orjson

from tests.fakes.upstream.answers import Answer, NewId, Prompt, count_tokens, split_fixed
from tests.fakes.upstream.behaviours import Behaviour, error
from tests.fakes.upstream.transport import JSON, Headers

PREFIX: Final = "/model/"
SERVED_PATH: Final = "/model:converse"
TOOL_ID_PREFIX: Final = "tooluse_"
DEFAULT_MODELS: Final = ("anthropic.claude-3-5-haiku-20241022-v1:0", "amazon.nova-lite-v1:0")
# status -> (exception type, message)
ERRORS: Final[dict[int, tuple[str, str]]] = {
    400: ("ValidationException", "Malformed input request, please reformat your input and try again."),
    403: ("AccessDeniedException", "The security token included in the request is invalid."),
    404: ("ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The server encountered an internal error while processing the request."),
    503: ("ServiceUnavailableException", "The service is temporarily unable to handle the request."),
}
_STREAM_EXCEPTIONS: Final = {429: "throttlingException", 400: "validationException", 503: "serviceUnavailableException"}


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message with string headers."""
    encoded = b"".join(
        bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value)) + value.encode()
        for name, value in headers.items()
    )
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, orjson.dumps(payload))


def _text(blocks: Any) -> str:
    pieces: list[str] = []
    for block in blocks or []:
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            pieces.append(block["text"])
        elif isinstance(block, dict) and isinstance(block.get("toolResult"), dict):
            pieces.append(_text(block["toolResult"].get("content")))
        elif isinstance(block, dict) and isinstance(block.get("toolUse"), dict):
            pieces.append(orjson.dumps(block["toolUse"].get("input", {})).decode())
    return " ".join(p for p in pieces if p)


def prompt(body: dict[str, Any]) -> Prompt:
    messages: list[dict[str, Any]] = body["messages"]
    last = messages[-1]
    users = [m for m in messages if m.get("role") == "user"]
    words = count_tokens(_text(body.get("system"))) + sum(count_tokens(_text(m.get("content"))) for m in messages)
    tools, forced = _tools(body)
    config = body.get("inferenceConfig") or {}
    return Prompt(
        model=str(body["_model"]),
        last_role=str(last.get("role")),
        last_text=_text(last.get("content")),
        user_text=_text(users[-1].get("content")) if users else "",
        last_is_tool_result=any("toolResult" in b for b in last.get("content") or [] if isinstance(b, dict)),
        input_tokens=max(1, words),
        tools=tools,
        forced_tool=forced,
        max_tokens=config.get("maxTokens"),
        stops=[s for s in config.get("stopSequences") or [] if isinstance(s, str) and s],
        stream=bool(body.get("_stream")),
    )


def _tools(body: dict[str, Any]) -> tuple[list[tuple[str, Any]], str | None]:
    config = body.get("toolConfig") or {}
    specs = [t["toolSpec"] for t in config.get("tools") or [] if isinstance(t, dict) and "toolSpec" in t]
    tools = [(s["name"], (s.get("inputSchema") or {}).get("json") or {}) for s in specs]
    choice = config.get("toolChoice") or {}
    if "tool" in choice:
        return tools, str(choice["tool"]["name"])
    if "any" in choice and tools:
        return tools, tools[0][0]
    return tools, None


def _usage(answer: Answer) -> dict[str, Any]:
    return {
        "inputTokens": answer.input_tokens,
        "outputTokens": answer.output_tokens,
        "totalTokens": answer.input_tokens + answer.cached_tokens + answer.cache_creation_tokens + answer.output_tokens,
        "cacheReadInputTokens": answer.cached_tokens,
        "cacheWriteInputTokens": answer.cache_creation_tokens,
    }


def _stop(answer: Answer) -> str:
    return {"end": "end_turn", "stop_sequence": "end_turn", "length": "max_tokens", "tool": "tool_use"}[answer.reason]


def completion(body: dict[str, Any], prompt: Prompt, answer: Answer, new_id: NewId) -> dict[str, Any]:
    tool = answer.tool
    block = (
        {"toolUse": {"toolUseId": tool.id, "name": tool.name, "input": tool.arguments}}
        if tool is not None
        else {"text": answer.text}
    )
    message = {"role": "assistant", "content": [block]}
    return {
        "output": {"message": message},
        "stopReason": _stop(answer),
        "usage": _usage(answer),
        "metrics": {"latencyMs": 1},
    }


def missing_fields(model: str) -> dict[str, Any]:
    return {"metrics": {"latencyMs": 1}}


def response_headers(request_id: str) -> Headers:
    return [JSON, id_header(request_id)]


def id_header(request_id: str) -> tuple[str, str]:
    return ("x-amzn-requestid", request_id)


def stream(
    body: dict[str, Any], prompt: Prompt, answer: Answer, b: Behaviour, new_id: NewId, request_id: str
) -> tuple[list[bytes], bytes]:
    """ConverseStream's events as event-stream messages, and the exception message for ``b``."""
    start = _event("messageStart", {"role": "assistant"})
    if b.kind == "missing_fields":
        return [start, _event("messageStop", {"stopReason": "end_turn"})], b""
    tool = answer.tool
    if tool is None:
        deltas = [_event("contentBlockDelta", {"delta": {"text": p}, "contentBlockIndex": 0}) for p in answer.pieces]
    else:
        use = {"toolUseId": tool.id, "name": tool.name}
        deltas = [_event("contentBlockStart", {"start": {"toolUse": use}, "contentBlockIndex": 0})]
        deltas += [
            _event("contentBlockDelta", {"delta": {"toolUse": {"input": piece}}, "contentBlockIndex": 0})
            for piece in split_fixed(tool.arguments_json, 8)
        ]
    end = [
        _event("contentBlockStop", {"contentBlockIndex": 0}),
        _event("messageStop", {"stopReason": _stop(answer)}),
        _event("metadata", {"usage": _usage(answer), "metrics": {"latencyMs": 1}}),
    ]
    kind = _STREAM_EXCEPTIONS.get(b.status, "internalServerException")
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return [start, *deltas, *end], frame(headers, orjson.dumps({"message": ERRORS.get(b.status, ERRORS[500])[1]}))


# ---- errors --------------------------------------------------------------------------------------


def missing_key() -> Behaviour:
    return error(403, message="Missing Authentication Token")


def not_found(method: str, path: str) -> Behaviour:
    return error(404, message=f"Unknown operation {method} {path}")


def validate(headers: dict[str, str], body: Any, *, reject_system_role: bool) -> Behaviour | None:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        return error(400, message="A conversation must start with a user message.")
    return None


def error_body(b: Behaviour, status: int, model: str, tokens: int, request_id: str) -> dict[str, Any]:
    _, message = ERRORS.get(status, ("UnknownError", "Error."))
    if b.code == "context_length_exceeded":
        message = "Input is too long for requested model."
    return {"message": message if b.message is None else b.message}


def model_info(name: str) -> dict[str, Any]:
    return {"modelId": name}


def models_page(names: list[str]) -> dict[str, Any]:
    return {"modelSummaries": [model_info(n) for n in names]}
