"""OpenAI's wire format: the prompt of a chat completion request, the answer as JSON or as SSE events."""

from __future__ import annotations

import time
from typing import Any, Final

import orjson

from tests.fakes.upstream.answers import Answer, NewId, Prompt, content_text, count_tokens, last_user_text, split_fixed
from tests.fakes.upstream.behaviours import Behaviour
from tests.fakes.upstream.openai_errors import ERRORS
from tests.fakes.upstream.transport import JSON, Headers

SERVED_PATH: Final = "/v1/chat/completions"
TOOL_ID_PREFIX: Final = "call_"
DEFAULT_MODELS: Final = ("gpt-4o", "gpt-4o-mini", "text-embedding-3-small", "text-embedding-3-large")
_DONE: Final = b"data: [DONE]\n\n"


def prompt(body: dict[str, Any]) -> Prompt:
    messages: list[dict[str, Any]] = body["messages"]
    words = sum(count_tokens(content_text(m.get("content"))) for m in messages)
    last = messages[-1]
    last_role = str(last.get("role"))
    tools, forced = _tools(body)
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str) and s]
    return Prompt(
        model=body["model"],
        last_role=last_role,
        last_text=content_text(last.get("content")),
        user_text=last_user_text(messages),
        last_is_tool_result=last_role in ("tool", "function"),
        input_tokens=max(1, words),
        tools=tools,
        forced_tool=forced,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        stops=stops,
        stream=bool(body.get("stream")),
    )


def _tools(body: dict[str, Any]) -> tuple[list[tuple[str, Any]], str | None]:
    """The offered tools (none under ``tool_choice: "none"``) and the one the tool choice forces."""
    tools: list[tuple[str, Any]] = []
    for tool in body.get("tools") or []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            tools.append((fn["name"], fn.get("parameters") or {}))
    forced: str | None = None
    choice = body.get("tool_choice")
    if tools and choice == "required":
        forced = tools[0][0]
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        forced = choice["function"].get("name")
    if choice == "none":
        tools = []
    return tools, forced


def _choice_count(body: dict[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and n > 0 else 1


# ---- answers -------------------------------------------------------------------------------------


def _usage(answer: Answer, n: int) -> dict[str, Any]:
    prompt_tokens = answer.input_tokens + answer.cached_tokens
    completion = answer.output_tokens * n
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": answer.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _finish(answer: Answer) -> str:
    return {"end": "stop", "stop_sequence": "stop", "length": "length", "tool": "tool_calls"}[answer.reason]


def completion(body: dict[str, Any], prompt: Prompt, answer: Answer, new_id: NewId) -> dict[str, Any]:
    n = _choice_count(body)
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    if answer.tool is not None:
        message["tool_calls"] = [
            {
                "id": answer.tool.id,
                "type": "function",
                "function": {"name": answer.tool.name, "arguments": answer.tool.arguments_json},
            }
        ]
    else:
        message["content"] = answer.text
    finish = _finish(answer)
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": prompt.model,
        "choices": [{"index": i, "message": message, "logprobs": None, "finish_reason": finish} for i in range(n)],
        "usage": _usage(answer, n),
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def missing_fields(model: str) -> dict[str, Any]:
    return {"id": "chatcmpl-missing", "object": "chat.completion", "created": int(time.time()), "model": model}


def response_headers(request_id: str) -> Headers:
    return [JSON, id_header(request_id), ("openai-processing-ms", "1"), ("openai-version", "2020-10-01")]


def id_header(request_id: str) -> tuple[str, str]:
    return ("x-request-id", request_id)


# ---- streams -------------------------------------------------------------------------------------


def _data(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def stream(
    body: dict[str, Any], prompt: Prompt, answer: Answer, b: Behaviour, new_id: NewId, request_id: str
) -> tuple[list[bytes], bytes]:
    """The SSE events of ``answer`` (``n`` choices interleaved), and the in-stream error event for ``b``."""
    n = _choice_count(body)
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    base: dict[str, Any] = {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": prompt.model,
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }
    if b.kind == "missing_fields":
        return [_data(base), _DONE], b""

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        data: dict[str, Any] = {
            **base,
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            data["usage"] = None
        return _data(data)

    events = [chunk(i, delta) for delta, i in _deltas(answer, n)]
    events += [chunk(i, {}, _finish(answer)) for i in range(n)]
    if include_usage:
        events.append(_data({**base, "choices": [], "usage": _usage(answer, n)}))
    events.append(_DONE)
    return events, _stream_error(b, prompt)


def _deltas(answer: Answer, n: int) -> list[tuple[dict[str, Any], int]]:
    """(delta, choice index) in stream order: each choice's opening delta, then each piece for every choice."""
    tool = answer.tool
    parts: list[dict[str, Any]]
    if tool is None:
        opening: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
        parts = [{"content": piece} for piece in answer.pieces]
    else:
        start = {"index": 0, "id": tool.id, "type": "function", "function": {"name": tool.name, "arguments": ""}}
        opening = {"role": "assistant", "content": None, "tool_calls": [start], "refusal": None}
        parts = [
            {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}
            for part in split_fixed(tool.arguments_json, 8)
        ]
    return [(opening, i) for i in range(n)] + [(part, i) for part in parts for i in range(n)]


def _stream_error(b: Behaviour, prompt: Prompt) -> bytes:
    etype, _, _, emessage = ERRORS.get(b.status, ERRORS[500])
    error_body = {"message": emessage.format(model=prompt.model), "type": etype, "param": None, "code": None}
    return _data({"error": error_body})


# ---- models ------------------------------------------------------------------------------------


def model_info(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "system"}


def models_page(names: list[str]) -> dict[str, Any]:
    page: dict[str, Any] = {"object": "list", "data": [model_info(n) for n in names]}
    return page


def input_tokens_count(body: dict[str, Any]) -> dict[str, Any]:
    """``/v1/responses/input_tokens``: a word per token of the instructions and of each input item's text (a
    message's content, a call's arguments, a call output), at least 1."""
    items = body["input"]
    texts = [body.get("instructions") or ""]
    for item in [{"content": items}] if isinstance(items, str) else items:
        texts += [content_text(item.get("content")), item.get("arguments") or "", item.get("output") or ""]
    return {"object": "response.input_tokens", "input_tokens": max(1, sum(count_tokens(t) for t in texts))}
