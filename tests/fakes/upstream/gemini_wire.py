"""Gemini's wire format: the prompt of a ``generateContent`` request, the answer as JSON or as SSE chunks
(``streamGenerateContent?alt=sse``), and ``batchEmbedContents``.

The model and whether to stream come from the path: the router hands them over as ``_model`` and ``_stream``
entries of the body. Function calls carry no id, as Gemini's usually do not.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from tests.fakes.upstream import embeddings
from tests.fakes.upstream.answers import Answer, NewId, Prompt, count_tokens
from tests.fakes.upstream.behaviours import Behaviour
from tests.fakes.upstream.gemini_errors import ERRORS
from tests.fakes.upstream.transport import JSON, Headers

PREFIX: Final = "/v1beta/models/"
SERVED_PATH: Final = "/v1beta/models:generateContent"
EMBED_PATH: Final = "/v1beta/models:batchEmbedContents"
TOOL_ID_PREFIX: Final = "gemini_call_"
DEFAULT_MODELS: Final = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-embedding-001")


def _part_text(part: Any) -> str:
    if not isinstance(part, dict):
        return ""
    if isinstance(part.get("text"), str):
        return str(part["text"])
    if isinstance(part.get("functionResponse"), dict):
        response = part["functionResponse"].get("response")
        if isinstance(response, dict) and set(response) == {"result"}:
            return str(response["result"])
        return orjson.dumps(response).decode()
    if isinstance(part.get("functionCall"), dict):
        return orjson.dumps(part["functionCall"].get("args", {})).decode()
    return ""


def _text(content: Any) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    return " ".join(t for t in (_part_text(p) for p in parts or []) if t)


def prompt(body: dict[str, Any]) -> Prompt:
    contents: list[dict[str, Any]] = body["contents"]
    last = contents[-1]
    words = count_tokens(_text(body.get("systemInstruction"))) + sum(count_tokens(_text(c)) for c in contents)
    users = [c for c in contents if c.get("role") == "user"]
    tools, forced = _tools(body)
    config = body.get("generationConfig") or {}
    return Prompt(
        model=str(body["_model"]),
        last_role="user" if last.get("role") == "user" else "assistant",
        last_text=_text(last),
        user_text=_text(users[-1]) if users else "",
        last_is_tool_result=any("functionResponse" in p for p in last.get("parts") or [] if isinstance(p, dict)),
        input_tokens=max(1, words),
        tools=tools,
        forced_tool=forced,
        max_tokens=config.get("maxOutputTokens"),
        stops=[s for s in config.get("stopSequences") or [] if isinstance(s, str) and s],
        stream=bool(body.get("_stream")),
    )


def _tools(body: dict[str, Any]) -> tuple[list[tuple[str, Any]], str | None]:
    tools: list[tuple[str, Any]] = []
    for tool in body.get("tools") or []:
        for fn in tool.get("functionDeclarations") or [] if isinstance(tool, dict) else []:
            schema = fn.get("parametersJsonSchema") or fn.get("parameters") or {}
            tools.append((fn["name"], schema))
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = config.get("mode")
    if mode == "NONE":
        return [], None
    if mode == "ANY" and tools:
        allowed = config.get("allowedFunctionNames") or [tools[0][0]]
        return tools, str(allowed[0])
    return tools, None


# ---- answers -------------------------------------------------------------------------------------


def _usage(answer: Answer, *, final: bool = True) -> dict[str, Any]:
    prompt_tokens = answer.input_tokens + answer.cached_tokens
    output = answer.output_tokens if final else 0
    usage: dict[str, Any] = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens + output}
    if final:
        usage["candidatesTokenCount"] = output
    if answer.cached_tokens:
        usage["cachedContentTokenCount"] = answer.cached_tokens
    return usage


def _finish(answer: Answer) -> str:
    return "MAX_TOKENS" if answer.reason == "length" else "STOP"


def _parts(answer: Answer) -> list[dict[str, Any]]:
    if answer.tool is not None:
        return [{"functionCall": {"name": answer.tool.name, "args": answer.tool.arguments}}]
    return [{"text": answer.text}]


def _response(prompt: Prompt, parts: list[dict[str, Any]], finish: str | None, usage: dict[str, Any]) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": prompt.model, "responseId": "fake"}


def completion(body: dict[str, Any], prompt: Prompt, answer: Answer, new_id: NewId) -> dict[str, Any]:
    return _response(prompt, _parts(answer), _finish(answer), _usage(answer))


def missing_fields(model: str) -> dict[str, Any]:
    return {"modelVersion": model, "responseId": "missing"}


def response_headers(request_id: str) -> Headers:
    return [JSON, id_header(request_id)]


def id_header(request_id: str) -> tuple[str, str]:
    return ("x-goog-request-id", request_id)


def _data(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\r\n\r\n"


def stream(
    body: dict[str, Any], prompt: Prompt, answer: Answer, b: Behaviour, new_id: NewId, request_id: str
) -> tuple[list[bytes], bytes]:
    """One chunk per word (or one for a function call), the last with the finish reason and the whole usage."""
    if b.kind == "missing_fields":
        return [_data(missing_fields(prompt.model))], b""
    running = _usage(answer, final=False)
    if answer.tool is not None:
        events = [_data(_response(prompt, _parts(answer), None, running))]
    else:
        events = [_data(_response(prompt, [{"text": piece}], None, running)) for piece in answer.pieces]
    events.append(_data(_response(prompt, [{"text": ""}], _finish(answer), _usage(answer))))
    status, message = ERRORS.get(b.status, ERRORS[500])
    error = {"error": {"code": b.status if b.status >= 400 else 500, "message": message, "status": status}}
    return events, _data(error)


# ---- embeddings and models -----------------------------------------------------------------------


def embed_payload(body: dict[str, Any]) -> dict[str, Any]:
    """``batchEmbedContents``: one unit vector per request, ``outputDimensionality`` long (default 3072)."""
    vectors = []
    for item in body["requests"]:
        dims = item.get("outputDimensionality") or 3072
        text = _text(item.get("content"))
        vectors.append({"values": list(embeddings.vector(text, dims))})
    return {"embeddings": vectors}


def model_info(name: str) -> dict[str, Any]:
    return {"name": f"models/{name}", "displayName": name, "supportedGenerationMethods": ["generateContent"]}


def models_page(names: list[str]) -> dict[str, Any]:
    return {"models": [model_info(n) for n in names]}
