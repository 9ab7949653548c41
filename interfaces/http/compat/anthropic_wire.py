"""Domain results in Anthropic's response shapes: messages, the Messages streaming event sequence, models."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from domain.llm.model import (
    Completion,
    CompletionRequest,
    FinishReason,
    ModelKind,
    ModelSpec,
    StreamEnd,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
)
from domain.llm.tokens import estimate_tokens
from domain.shared.errors import DomainError
from interfaces.http.compat.errors import Dialect, domain_error_fields, error_body
from interfaces.http.sse import Events

CREATED_AT = "2025-01-01T00:00:00Z"  # models have no creation date in the catalog; a fixed one keeps the list stable


def message_id() -> str:
    return "msg_" + uuid.uuid4().hex


def stop_reason(completion: Completion) -> str:
    if completion.finish_reason is FinishReason.STOP and completion.stop_sequence is not None:
        return "stop_sequence"
    return {
        FinishReason.LENGTH: "max_tokens",
        FinishReason.TOOL_CALLS: "tool_use",
        FinishReason.CONTENT_FILTER: "refusal",
    }.get(completion.finish_reason, "end_turn")


def usage_body(usage: TokenUsage) -> dict[str, Any]:
    """Anthropic counts cache reads and writes apart from ``input_tokens``; the domain counts them within."""
    return {
        "input_tokens": usage.uncached_input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }


def tool_input(call: ToolCall) -> dict[str, Any]:
    try:
        value = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {}  # a model's malformed arguments: what Anthropic cannot carry


def message_body(completion: Completion, *, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": completion.content}] if completion.content else []
    content.extend(
        {"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(c)} for c in completion.tool_calls
    )
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(completion),
        "stop_sequence": completion.stop_sequence,
        "usage": usage_body(completion.usage),
    }


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class _Blocks:
    """The content blocks of a streamed answer: a text block while text comes, one ``tool_use`` block per call."""

    def __init__(self) -> None:
        self.count = 0
        self.open: str | None = None  # "text" or "tool_use"

    def start(self, block: dict[str, Any]) -> list[bytes]:
        events = self.stop()
        events.append(
            _event("content_block_start", {"type": "content_block_start", "index": self.count, "content_block": block})
        )
        if self.count == 0:
            events.append(_event("ping", {"type": "ping"}))
        self.open = block["type"]
        return events

    def delta(self, delta: dict[str, Any]) -> bytes:
        return _event("content_block_delta", {"type": "content_block_delta", "index": self.count, "delta": delta})

    def stop(self) -> list[bytes]:
        if self.open is None:
            return []
        self.open = None
        self.count += 1
        return [_event("content_block_stop", {"type": "content_block_stop", "index": self.count - 1})]

    def text(self, event: TextDelta) -> list[bytes]:
        events = [] if self.open == "text" else self.start({"type": "text", "text": ""})
        return [*events, self.delta({"type": "text_delta", "text": event.text})]

    def tool(self, event: ToolCallDelta) -> list[bytes]:
        events: list[bytes] = []
        if event.id is not None:
            events = self.start({"type": "tool_use", "id": event.id, "name": event.name or "", "input": {}})
        if event.arguments:
            events.append(self.delta({"type": "input_json_delta", "partial_json": event.arguments}))
        return events


async def message_events(
    stream: Events, *, request: CompletionRequest, tail: Callable[[Completion], dict[str, Any]] | None = None
) -> AsyncIterator[bytes]:
    """``message_start``, then per block ``content_block_start`` / ``_delta``... / ``_stop`` (a ``ping`` after the
    first start), then ``message_delta`` (stop reason, usage) and ``message_stop``. An upstream failure mid-stream
    ends it with an ``error`` event (the SDK raises the matching ``APIStatusError``)."""
    # Anthropic reports input tokens up front; an upstream may count them only at the end, so this is an estimate
    # that the final message_delta replaces with the count.
    estimate = sum(estimate_tokens(m.content) for m in request.messages)
    start: dict[str, Any] = {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": estimate, "output_tokens": 0},
    }
    blocks = _Blocks()
    # message_start goes at once (the stream is open: the upstream answered, its text may come later); then the
    # frames one upstream event makes are sent together (a block's start with its first delta; the end): one write
    # each time the upstream gives something, not one per frame.
    frames: list[bytes] = []
    try:
        yield _event("message_start", {"type": "message_start", "message": start})
        async for event in stream:
            if isinstance(event, TextDelta):
                frames.extend(blocks.text(event))
            elif isinstance(event, ToolCallDelta):
                frames.extend(blocks.tool(event))
            elif isinstance(event, StreamEnd):
                frames.extend(blocks.stop())
                completion = event.completion
                delta = {"stop_reason": stop_reason(completion), "stop_sequence": completion.stop_sequence}
                usage = usage_body(completion.usage)
                ending = {"type": "message_delta", "delta": delta, "usage": usage}
                frames.append(_event("message_delta", ending | (tail(completion) if tail is not None else {})))
                frames.append(_event("message_stop", {"type": "message_stop"}))
            yield b"".join(frames)
            frames.clear()
    except DomainError as exc:
        status, message, code, _ = domain_error_fields(exc)
        frames.append(_event("error", error_body(Dialect.ANTHROPIC, status, message, code=code)))
        yield b"".join(frames)
    finally:
        await stream.aclose()


def model_body(spec: ModelSpec) -> dict[str, Any]:
    """A model as Anthropic's API shows one; its display name is the public name (descriptions are sentences)."""
    return {"type": "model", "id": spec.name, "display_name": spec.name, "created_at": CREATED_AT}


def listed(spec: ModelSpec) -> bool:
    """Anthropic's list shows what its Messages API can call: chat models, not embedding models."""
    return spec.kind is ModelKind.CHAT


def model_list_body(specs: list[ModelSpec]) -> dict[str, Any]:
    specs = [s for s in specs if listed(s)]
    return {
        "data": [model_body(s) for s in specs],
        "has_more": False,
        "first_id": specs[0].name if specs else None,
        "last_id": specs[-1].name if specs else None,
    }
