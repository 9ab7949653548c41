"""Anthropic's Messages wire format, both ways, as plain JSON values: what both Anthropic adapters (direct and SDK)
send and how they read what comes back.

The prompt (system, turns, tools and their ``cache_control`` breakpoints) is built by ``anthropic_prompt``;
``max_tokens`` is always sent. A JSON-schema response format is ``output_config.format``; a bare JSON-object one has
no Anthropic equivalent and is not sent. The caller's ``user`` is ``metadata.user_id``. Reasoning asked for becomes
extended thinking (``thinking.budget_tokens``, see ``_thinking``); thinking blocks in the answer are not returned.

Usage is normalised to the domain's meaning: ``input_tokens`` counts every prompt token (Anthropic reports cache
reads and writes apart), ``cached_tokens`` the cache reads and ``cache_write_tokens`` the cache writes. Readers
raise ``SHAPE_FAILURES`` for a body that does not match the API; the adapters turn that into
``UpstreamBadResponse``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.llm.model import (
    ChatRole,
    Completion,
    CompletionRequest,
    FinishReason,
    ModelSpec,
    ResponseFormatType,
    ServedBy,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolChoiceMode,
)
from domain.shared.errors import UpstreamRejected
from infrastructure.llm.anthropic_prompt import prompt, tool_params
from infrastructure.llm.reasoning import thinking_budget

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
MIN_THINKING_BUDGET = 1024  # Anthropic's least budget_tokens
_STOP = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}


def _count(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("token counts are not non-negative integers")
    return value


def _stop(reason: object) -> FinishReason:
    if not isinstance(reason, str):
        raise ValueError("no stop_reason")
    return _STOP.get(reason, FinishReason.STOP)


def request_body(spec: ModelSpec, request: CompletionRequest) -> dict[str, Any]:
    """The JSON body of a Messages call for ``spec``'s upstream model; options not asked for are left out.

    ``temperature`` and ``top_p`` are sent when asked for; a model that refuses them answers 400, which the caller
    sees as ``UpstreamRejected``.
    """
    try:
        system, messages = prompt(request)
    except UpstreamRejected as exc:
        raise UpstreamRejected(exc.detail, provider="anthropic", model=spec.name) from None
    body: dict[str, Any] = {
        "model": spec.upstream_model,
        "messages": messages,
        "max_tokens": request.max_tokens or spec.max_output_tokens,
    }
    if system is not None:
        body["system"] = system
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.user is not None:
        body["metadata"] = {"user_id": request.user}
    wanted = request.response_format
    if wanted is not None and wanted.type is ResponseFormatType.JSON_SCHEMA and wanted.schema_json is not None:
        body["output_config"] = {"format": {"type": "json_schema", "schema": json.loads(wanted.schema_json)}}
    thinking = _thinking(request, body["max_tokens"])
    if thinking is not None:  # extended thinking takes neither a temperature nor a top_p of the caller's
        body["thinking"] = thinking
    else:
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
    body.update(tool_params(request))
    return body


# What Anthropic's count_tokens endpoint takes of a Messages body.
_COUNTED = ("model", "messages", "system", "tools", "tool_choice")


def count_tokens_body(spec: ModelSpec, request: CompletionRequest) -> dict[str, Any]:
    """The request as ``POST /v1/messages/count_tokens`` counts it: the Messages body without its output settings."""
    body = request_body(spec, request)
    return {key: value for key, value in body.items() if key in _COUNTED}


def read_count(body: Any) -> int:
    count = body["input_tokens"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise TypeError("input_tokens is not a count")
    return count


def _thinking(request: CompletionRequest, max_tokens: int) -> dict[str, Any] | None:
    """Extended thinking, when asked for and possible: a budget of at least 1,024 tokens below ``max_tokens``; not
    with a tool choice that forces a call, nor when the request continues a tool call (Anthropic would want the
    thinking blocks of that turn back, which no client of ours keeps)."""
    budget = thinking_budget(request.reasoning)
    if not budget:
        return None
    choice = request.tool_choice
    if choice is not None and choice.mode is ToolChoiceMode.REQUIRED:
        return None
    last_assistant = next((m for m in reversed(request.messages) if m.role is ChatRole.ASSISTANT), None)
    if last_assistant is not None and last_assistant.tool_calls:
        return None
    budget = min(budget, max_tokens - 1)
    return {"type": "enabled", "budget_tokens": budget} if budget >= MIN_THINKING_BUDGET else None


def read_usage(usage: Mapping[str, Any]) -> TokenUsage:
    """Anthropic's usage (plain input, cache reads and cache writes apart) in the domain's terms."""
    read = _count(usage.get("cache_read_input_tokens"))
    write = _count(usage.get("cache_creation_input_tokens"))
    return TokenUsage(
        input_tokens=_count(usage.get("input_tokens")) + read + write,
        output_tokens=_count(usage.get("output_tokens")),
        cached_tokens=read,
        cache_write_tokens=write,
    )


def read_message(body: Any, served_by: ServedBy) -> Completion:
    """A Messages body (``content`` blocks, ``stop_reason``, ``usage``) as a ``Completion``."""
    if not isinstance(body, Mapping):
        raise TypeError("the body is not a JSON object")
    blocks = body["content"]
    if not isinstance(blocks, list):
        raise TypeError("content is not a list of blocks")
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in blocks:
        if block["type"] == "text":
            if not isinstance(block["text"], str):
                raise TypeError("a text block without text")
            texts.append(block["text"])
        elif block["type"] == "tool_use":
            if not isinstance(block["id"], str) or not isinstance(block["name"], str):
                raise TypeError("a tool_use block without id or name")
            arguments = json.dumps(block["input"], separators=(",", ":"))
            calls.append(ToolCall(id=block["id"], name=block["name"], arguments=arguments))
    finish = _stop(body.get("stop_reason"))
    tokens = read_usage(body["usage"])
    stop_sequence = body.get("stop_sequence")
    return Completion(
        content="".join(texts),
        finish_reason=finish,
        usage=tokens,
        served_by=served_by,
        tool_calls=tuple(calls),
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
    )


@dataclass
class StreamState:
    """What a stream has delivered so far."""

    pieces: list[str] = field(default_factory=list)
    calls: dict[int, list[str]] = field(default_factory=dict)  # content block index -> [id, name, arguments...]
    stop_sequence: str | None = None
    input_tokens: int | None = None
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    finish: FinishReason | None = None
    stopped: bool = False

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def complete(self) -> bool:
        """Whether the stream said how it ended, what it cost, and that it was over."""
        return self.finish is not None and self.stopped and self.input_tokens is not None

    def completion(self, served_by: ServedBy) -> Completion:
        """The answer of a stream that ended properly."""
        usage = TokenUsage(
            input_tokens=self.input_tokens or 0,
            output_tokens=self.output_tokens,
            cached_tokens=self.cached_tokens,
            cache_write_tokens=self.cache_write_tokens,
        )
        return Completion(
            content=self.text,
            finish_reason=self.finish or FinishReason.STOP,
            usage=usage,
            served_by=served_by,
            tool_calls=tuple(
                ToolCall(id=parts[0], name=parts[1], arguments="".join(parts[2:]) or "{}")
                for parts in self.calls.values()
            ),
            stop_sequence=self.stop_sequence,
        )


def read_event(event: Any, state: StreamState) -> TextDelta | ToolCallDelta | None:
    """What one stream event adds: a text or tool call delta, or only news for ``state`` (usage, the end)."""
    if not isinstance(event, Mapping):
        raise TypeError("a stream event is not a JSON object")
    kind = event.get("type")
    if kind == "message_start":
        usage = read_usage(event["message"]["usage"])
        state.input_tokens, state.output_tokens = usage.input_tokens, usage.output_tokens
        state.cached_tokens, state.cache_write_tokens = usage.cached_tokens, usage.cache_write_tokens
    elif kind == "content_block_start" and event["content_block"]["type"] == "tool_use":
        block = event["content_block"]
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            raise TypeError("a tool_use block without id or name")
        state.calls[event["index"]] = [block["id"], block["name"]]
        return ToolCallDelta(index=len(state.calls) - 1, id=block["id"], name=block["name"])
    elif kind == "content_block_delta" and event["delta"]["type"] == "input_json_delta":
        piece = event["delta"].get("partial_json")
        if not isinstance(piece, str) or event["index"] not in state.calls:
            raise TypeError("an input_json_delta outside a tool_use block")
        state.calls[event["index"]].append(piece)
        return ToolCallDelta(index=list(state.calls).index(event["index"]), arguments=piece)
    elif kind == "content_block_delta" and event["delta"]["type"] == "text_delta":
        text = event["delta"].get("text")
        if not isinstance(text, str):
            raise TypeError("text delta is not text")
        if text:
            state.pieces.append(text)
            return TextDelta(text)
    elif kind == "message_delta":
        state.output_tokens = _count(event["usage"].get("output_tokens"))  # cumulative
        delta = event["delta"]
        if delta.get("stop_reason") is not None:
            state.finish = _stop(delta["stop_reason"])
        if isinstance(delta.get("stop_sequence"), str):
            state.stop_sequence = delta["stop_sequence"]
    elif kind == "message_stop":
        state.stopped = True
    return None
