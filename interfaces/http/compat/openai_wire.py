"""Domain results in OpenAI's response shapes: chat completions, ``chat.completion.chunk`` streams, embeddings,
models. Plain dicts, serialised with orjson: nothing is validated twice on the way out."""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from domain.llm.model import (
    Completion,
    Embeddings,
    FinishReason,
    ModelSpec,
    StreamEnd,
    TextDelta,
    TokenUsage,
    ToolCall,
    partial_completion,
)
from domain.shared.errors import DomainError
from interfaces.http.compat.errors import Dialect, domain_error_fields, error_body
from interfaces.http.sse import Events

CREATED = 1_700_000_000  # models have no creation date in the catalog; a fixed one keeps the list stable
_FINISH = {
    FinishReason.STOP: "stop",
    FinishReason.LENGTH: "length",
    FinishReason.TOOL_CALLS: "tool_calls",
    FinishReason.CONTENT_FILTER: "content_filter",
}
DONE = b"data: [DONE]\n\n"


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def finish_reason(reason: FinishReason) -> str:
    return _FINISH.get(reason, "stop")


def usage_body(usage: TokenUsage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def tool_calls_body(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls]


def completion_body(completion: Completion, *, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": completion.content, "refusal": None}
    if completion.tool_calls:
        message["content"] = completion.content or None
        message["tool_calls"] = tool_calls_body(completion.tool_calls)
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason(completion.finish_reason)}
        ],
        "usage": usage_body(completion.usage),
        "system_fingerprint": None,
    }


def _data(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class ChunkWriter:
    """Builds the ``chat.completion.chunk`` events of one answer."""

    def __init__(self, *, model: str, include_usage: bool) -> None:
        self._base = {
            "id": completion_id(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": None,
        }
        self._include_usage = include_usage

    def chunk(self, delta: dict[str, Any], finish: str | None = None, extra: dict[str, Any] | None = None) -> bytes:
        payload: dict[str, Any] = {
            **self._base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if extra:
            payload.update(extra)
        if self._include_usage:
            payload["usage"] = None  # as OpenAI does: every chunk has the key, only the last one a value
        return _data(payload)

    def usage(self, usage: TokenUsage) -> bytes:
        return _data({**self._base, "choices": [], "usage": usage_body(usage)})


async def completion_events(
    stream: Events, *, model: str, include_usage: bool, tail: Callable[[Completion], dict[str, Any]] | None = None
) -> AsyncIterator[bytes]:
    """The SSE body: a role chunk, a chunk per delta, a finish chunk, the usage chunk if asked, ``[DONE]``. An
    upstream failure mid-stream ends it with an ``{"error": ...}`` data line (the SDK raises ``APIError``).

    The role chunk goes at once, as OpenAI sends it (the stream is open: the upstream answered, its text may come
    later); then the frames one upstream event makes are sent together (the finish, usage and ``[DONE]``): one
    write each time the upstream gives something, not one per frame."""
    writer = ChunkWriter(model=model, include_usage=include_usage)
    frames: list[bytes] = []
    try:
        yield writer.chunk({"role": "assistant", "content": ""})
        async for event in stream:
            if isinstance(event, TextDelta):
                frames.append(writer.chunk({"content": event.text}))
            elif isinstance(event, StreamEnd):
                extra = tail(event.completion) if tail is not None else None  # an extension's fields (file_search)
                frames.append(writer.chunk({}, finish_reason(event.completion.finish_reason), extra))
                if include_usage:
                    frames.append(writer.usage(event.completion.usage))
                frames.append(DONE)
            elif event.id is not None:
                call = {"index": event.index, "id": event.id, "type": "function"}
                frames.append(
                    writer.chunk({"tool_calls": [{**call, "function": {"name": event.name, "arguments": ""}}]})
                )
                if event.arguments:
                    delta = {"tool_calls": [{"index": event.index, "function": {"arguments": event.arguments}}]}
                    frames.append(writer.chunk(delta))
            else:
                delta = {"tool_calls": [{"index": event.index, "function": {"arguments": event.arguments}}]}
                frames.append(writer.chunk(delta))
            yield b"".join(frames)
            frames.clear()
    except DomainError as exc:
        if include_usage and (partial := partial_completion(exc)) is not None:
            frames.append(writer.usage(partial.usage))
        status, message, code, _ = domain_error_fields(exc)
        frames.append(_data(error_body(Dialect.OPENAI, status, message, code=code)))
        yield b"".join(frames)
    finally:
        await stream.aclose()


def embeddings_body(embeddings: Embeddings, *, model: str, encoding: str) -> dict[str, Any]:
    def vector(values: tuple[float, ...]) -> list[float] | str:
        if encoding == "base64":  # little-endian float32, as OpenAI sends it (and its SDK asks for by default)
            return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
        return list(values)

    tokens = embeddings.usage.input_tokens
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": vector(v)} for i, v in enumerate(embeddings.vectors)],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def model_body(spec: ModelSpec) -> dict[str, Any]:
    return {"id": spec.name, "object": "model", "created": CREATED, "owned_by": "switchboard"}


def model_list_body(specs: list[ModelSpec]) -> dict[str, Any]:
    return {"object": "list", "data": [model_body(s) for s in specs]}
