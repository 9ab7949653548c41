"""The Anthropic Messages adapter, on the official ``anthropic`` SDK.

System messages go, merged, into the top-level ``system`` parameter; consecutive turns of one role are merged as
the API requires; ``max_tokens`` is always sent. Tools: a ``ToolDefinition`` is a tool with an ``input_schema``, an
assistant's ``ToolCall``s are ``tool_use`` blocks after its text, and ``TOOL`` messages are ``tool_result`` blocks
at the head of the next user turn; ``tool_choice`` required is ``any``, and no parallel calls is
``disable_parallel_tool_use``. A JSON-schema response format is ``output_config.format``; a bare JSON-object one has
no Anthropic equivalent and is not sent. The caller's ``user`` is ``metadata.user_id``.

Usage is normalised to the domain's meaning: ``input_tokens`` counts every prompt token (Anthropic reports cache
reads and writes apart), ``cached_tokens`` the cache reads. The SDK does no retry and nothing of it leaves this
module.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import anthropic
import httpx2
from anthropic import AsyncAnthropic, omit
from anthropic.types import Message as AnthropicMessage
from anthropic.types import MessageParam, RawMessageStreamEvent

from domain.llm.model import (
    ChatMessage,
    ChatRole,
    Completion,
    CompletionRequest,
    FinishReason,
    ModelSpec,
    ResponseFormatType,
    ServedBy,
    StreamEnd,
    StreamEvent,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolChoiceMode,
    with_partial,
)
from domain.llm.ports import LLMProvider
from domain.llm.tokens import estimated_usage
from domain.shared.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from infrastructure.llm.http_client import DEFAULT_MAX_RESPONSE_BYTES, pooled_http_client, transport_error
from infrastructure.llm.upstream_errors import error_for_status, error_for_type, redact

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
_STOP = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}
_SDK_FAILURES = (anthropic.AnthropicError, httpx2.HTTPError, TimeoutError, ValueError)
_SHAPE_FAILURES = (AttributeError, TypeError, IndexError, KeyError, ValueError)


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


def _arguments(call: ToolCall) -> dict[str, object]:
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UpstreamRejected(f"the arguments of tool call '{call.id}' are not a JSON object", provider="anthropic")
    return value


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    """The content blocks of one message: a tool result, or its text then its tool calls."""
    if message.role is ChatRole.TOOL:
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id or "", "content": message.content}]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    blocks.extend({"type": "tool_use", "id": c.id, "name": c.name, "input": _arguments(c)} for c in message.tool_calls)
    return blocks


def _content(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Plain text when the turn is only text (merged), else its blocks (the API refuses empty text blocks)."""
    if all(block["type"] == "text" for block in blocks):
        return "\n\n".join(block["text"] for block in blocks)
    return [block for block in blocks if block["type"] != "text" or block["text"]]


def prompt(request: CompletionRequest) -> tuple[str | None, list[MessageParam]]:
    """The ``system`` parameter (every system message, merged) and the turns, same-role neighbours merged.

    A tool result is a user turn: it joins the user's next message, the results first, as the API wants.
    """
    system = "\n\n".join(m.content for m in request.messages if m.role is ChatRole.SYSTEM)
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for message in request.messages:
        if message.role is ChatRole.SYSTEM:
            continue
        role = "assistant" if message.role is ChatRole.ASSISTANT else "user"
        blocks = _blocks(message) or [{"type": "text", "text": ""}]
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    messages = [cast(MessageParam, {"role": role, "content": _content(blocks)}) for role, blocks in turns]
    return system or None, messages


def _tool_params(request: CompletionRequest) -> dict[str, Any]:
    if not request.tools:
        return {}
    tools = [
        {
            "name": t.name,
            **({"description": t.description} if t.description else {}),
            "input_schema": json.loads(t.parameters_json),
        }
        for t in request.tools
    ]
    choice = request.tool_choice
    if choice is None:
        return {"tools": tools}
    if choice.name is not None:
        tool_choice: dict[str, Any] = {"type": "tool", "name": choice.name}
    else:
        kinds = {ToolChoiceMode.AUTO: "auto", ToolChoiceMode.NONE: "none", ToolChoiceMode.REQUIRED: "any"}
        tool_choice = {"type": kinds[choice.mode]}
    if not choice.parallel and tool_choice["type"] != "none":
        tool_choice["disable_parallel_tool_use"] = True
    return {"tools": tools, "tool_choice": tool_choice}


def _output_config(request: CompletionRequest) -> Any:
    wanted = request.response_format
    if wanted is None or wanted.type is not ResponseFormatType.JSON_SCHEMA or wanted.schema_json is None:
        return omit
    return {"format": {"type": "json_schema", "schema": json.loads(wanted.schema_json)}}


def _tool_calls(response: AnthropicMessage) -> tuple[ToolCall, ...]:
    return tuple(
        ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input, separators=(",", ":")))
        for block in response.content
        if block.type == "tool_use"
    )


@dataclass
class _StreamState:
    """What a stream has delivered so far."""

    pieces: list[str] = field(default_factory=list)
    calls: dict[int, list[str]] = field(default_factory=dict)  # content block index -> [id, name, arguments...]
    stop_sequence: str | None = None
    input_tokens: int | None = None
    cached_tokens: int = 0
    output_tokens: int = 0
    finish: FinishReason | None = None
    stopped: bool = False

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(id=parts[0], name=parts[1], arguments="".join(parts[2:]) or "{}") for parts in self.calls.values()
        )


class AnthropicProvider(LLMProvider):
    """One Anthropic deployment."""

    def __init__(self, spec: ModelSpec, *, api_key: str, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        self._spec = spec
        self._secret = api_key
        self._client = AsyncAnthropic(
            api_key=api_key,
            base_url=spec.base_url or ANTHROPIC_BASE_URL,
            max_retries=0,
            timeout=httpx2.Timeout(spec.timeout_seconds, connect=spec.connect_timeout_seconds),
            http_client=pooled_http_client(spec, max_response_bytes=max_response_bytes),
        )
        self._served_by = ServedBy(
            model=spec.name, provider=spec.provider, upstream_model=spec.upstream_model, variant=spec.variant
        )

    def __repr__(self) -> str:
        return f"AnthropicProvider(model={self._spec.name!r}, upstream_model={self._spec.upstream_model!r})"

    async def aclose(self) -> None:
        """Closes the pooled connections; the provider is unusable afterwards."""
        await self._client.close()

    async def complete(self, request: CompletionRequest) -> Completion:
        try:
            async with asyncio.timeout(self._spec.timeout_seconds):
                response = await self._client.messages.create(**self._params(request), stream=False)
        except _SDK_FAILURES as exc:
            raise self._translate(exc, started=False) from None
        if not isinstance(response, AnthropicMessage):
            raise self._bad(f"sent a {type(response).__name__} body, not a message")
        try:
            content = "".join(block.text for block in response.content if block.type == "text")
            calls = _tool_calls(response)
            finish = _stop(response.stop_reason)
            usage = response.usage
            cached = _count(usage.cache_read_input_tokens)
            prompt_tokens = _count(usage.input_tokens) + cached + _count(usage.cache_creation_input_tokens)
            tokens = TokenUsage(
                input_tokens=prompt_tokens, output_tokens=_count(usage.output_tokens), cached_tokens=cached
            )
        except _SHAPE_FAILURES as exc:
            raise self._bad(f"sent an invalid message ({exc})") from None
        return Completion(
            content=content,
            finish_reason=finish,
            usage=tokens,
            served_by=self._served_by,
            tool_calls=calls,
            stop_sequence=response.stop_sequence if isinstance(response.stop_sequence, str) else None,
        )

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        try:
            upstream = await self._client.messages.create(**self._params(request), stream=True)
        except _SDK_FAILURES as exc:
            raise self._translate(exc, started=False) from None
        state = _StreamState()
        try:
            async for event in upstream:
                delta = self._read_event(event, state)
                if delta is not None:
                    yield delta
        except _SDK_FAILURES + _SHAPE_FAILURES as exc:
            raise self._partial(self._translate(exc, started=True), request, state) from None
        finally:
            await upstream.close()  # the consumer went away, or the stream is over: release the connection
        if state.finish is None or not state.stopped or state.input_tokens is None:
            raise self._partial(self._bad("ended the stream before the answer was finished"), request, state)
        usage = TokenUsage(
            input_tokens=state.input_tokens, output_tokens=state.output_tokens, cached_tokens=state.cached_tokens
        )
        completion = Completion(
            content=state.text,
            finish_reason=state.finish,
            usage=usage,
            served_by=self._served_by,
            tool_calls=state.tool_calls(),
            stop_sequence=state.stop_sequence,
        )
        yield StreamEnd(completion)

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        try:
            system, messages = prompt(request)
        except UpstreamRejected as exc:
            raise UpstreamRejected(exc.detail, provider="anthropic", model=self._spec.name) from None
        # This SDK no longer lists temperature and top_p (newer models fix them); they are sent when asked for, and
        # a model that refuses them answers 400, which the caller sees as UpstreamRejected.
        sampling = {"temperature": request.temperature, "top_p": request.top_p}
        return {
            "model": self._spec.upstream_model,
            "messages": messages,
            "system": omit if system is None else system,
            "max_tokens": request.max_tokens or self._spec.max_output_tokens,
            "stop_sequences": list(request.stop) if request.stop else omit,
            "metadata": omit if request.user is None else {"user_id": request.user},
            "output_config": _output_config(request),
            "extra_body": {k: v for k, v in sampling.items() if v is not None} or None,
            **_tool_params(request),
        }

    @staticmethod
    def _read_event(event: RawMessageStreamEvent, state: _StreamState) -> TextDelta | ToolCallDelta | None:
        if event.type == "message_start":
            usage = event.message.usage
            state.cached_tokens = _count(usage.cache_read_input_tokens)
            state.input_tokens = (
                _count(usage.input_tokens) + state.cached_tokens + _count(usage.cache_creation_input_tokens)
            )
            state.output_tokens = _count(usage.output_tokens)
        elif event.type == "content_block_start" and event.content_block.type == "tool_use":
            block = event.content_block
            if not isinstance(block.id, str) or not isinstance(block.name, str):
                raise TypeError("a tool_use block without id or name")
            state.calls[event.index] = [block.id, block.name]
            return ToolCallDelta(index=len(state.calls) - 1, id=block.id, name=block.name)
        elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            piece = event.delta.partial_json
            if not isinstance(piece, str) or event.index not in state.calls:
                raise TypeError("an input_json_delta outside a tool_use block")
            state.calls[event.index].append(piece)
            return ToolCallDelta(index=list(state.calls).index(event.index), arguments=piece)
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            text = event.delta.text
            if not isinstance(text, str):
                raise TypeError("text delta is not text")
            if text:
                state.pieces.append(text)
                return TextDelta(text)
        elif event.type == "message_delta":
            state.output_tokens = _count(event.usage.output_tokens)  # cumulative
            if event.delta.stop_reason is not None:
                state.finish = _stop(event.delta.stop_reason)
            if isinstance(event.delta.stop_sequence, str):
                state.stop_sequence = event.delta.stop_sequence
        elif event.type == "message_stop":
            state.stopped = True
        return None

    def _partial(self, error: UpstreamError, request: CompletionRequest, state: _StreamState) -> UpstreamError:
        if state.pieces:
            usage = estimated_usage(request, state.text, input_tokens=state.input_tokens)
            partial = Completion(
                content=state.text, finish_reason=FinishReason.ERROR, usage=usage, served_by=self._served_by
            )
            with_partial(error, partial)
        return error

    def _bad(self, what: str) -> UpstreamBadResponse:
        return UpstreamBadResponse(f"anthropic {what}", provider="anthropic", model=self._spec.name)

    def _translate(self, exc: BaseException, *, started: bool) -> UpstreamError:
        model = self._spec.name
        where = {"provider": "anthropic", "model": model}
        if isinstance(exc, anthropic.APITimeoutError):
            return UpstreamTimeout("anthropic did not answer in time", **where)
        if isinstance(exc, anthropic.APIConnectionError):
            cause = transport_error(exc.__cause__ or exc, started=started, provider="anthropic", model=model)
            return cause or UpstreamUnavailable("anthropic could not be reached", **where)
        if isinstance(exc, anthropic.APIStatusError):
            message = self._error_message(exc.body)
            if 200 <= exc.status_code < 300:  # an error event inside a 200 stream
                error_type = exc.type if isinstance(exc.type, str) else None
                return error_for_type(error_type, message=message, **where)
            headers: Mapping[str, str] = exc.response.headers
            code = exc.error_code or (exc.type if isinstance(exc.type, str) else None)
            return error_for_status(exc.status_code, message=message, code=code, headers=headers, **where)
        if isinstance(exc, anthropic.APIResponseValidationError):
            return self._bad("sent a body that does not match the API")
        mapped = transport_error(exc, started=started, provider="anthropic", model=model)
        if mapped is not None:
            return mapped
        return self._bad("sent an unreadable response")

    def _error_message(self, body: object) -> str:
        if isinstance(body, Mapping):
            error = body.get("error")
            message = error.get("message") if isinstance(error, Mapping) else None
            return redact(str(message), self._secret) if message else ""
        if isinstance(body, str):
            return "(an HTML page)" if body.lstrip().startswith("<") else redact(body, self._secret)
        return ""
