"""A ``Completion`` as JSON bytes and back, for caches outside the process."""

from __future__ import annotations

from typing import Any

import orjson

from domain.llm.model import Completion, FinishReason, ServedBy, TokenUsage, ToolCall

VERSION = 2


def encode_completion(completion: Completion) -> bytes:
    served, usage = completion.served_by, completion.usage
    return orjson.dumps(
        {
            "v": VERSION,
            "content": completion.content,
            "finish_reason": completion.finish_reason.value,
            "usage": [usage.input_tokens, usage.output_tokens, usage.cached_tokens, usage.estimated],
            "served_by": [served.model, served.provider, served.upstream_model, served.variant],
            "attempts": completion.attempts,
            "fallbacks": list(completion.fallbacks),
            "tool_calls": [[call.id, call.name, call.arguments] for call in completion.tool_calls],
            "stop_sequence": completion.stop_sequence,
        }
    )


def decode_completion(raw: bytes) -> Completion | None:
    """``None`` for an entry written by another version: a miss, not an error."""
    data: dict[str, Any] = orjson.loads(raw)
    if data.get("v") != VERSION:
        return None
    input_tokens, output_tokens, cached_tokens, estimated = data["usage"]
    model, provider, upstream_model, variant = data["served_by"]
    return Completion(
        content=data["content"],
        finish_reason=FinishReason(data["finish_reason"]),
        usage=TokenUsage(input_tokens, output_tokens, cached_tokens, estimated),
        served_by=ServedBy(model=model, provider=provider, upstream_model=upstream_model, variant=variant),
        attempts=data["attempts"],
        fallbacks=tuple(data["fallbacks"]),
        tool_calls=tuple(ToolCall(id=i, name=n, arguments=a) for i, n, a in data["tool_calls"]),
        stop_sequence=data["stop_sequence"],
    )
