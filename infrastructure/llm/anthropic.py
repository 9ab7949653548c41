"""The Anthropic Messages adapter, on the official ``anthropic`` SDK.

System messages go, merged, into the top-level ``system`` parameter; consecutive turns of one role are merged as
the API requires; ``max_tokens`` is always sent. Usage is normalised to the domain's meaning: ``input_tokens``
counts every prompt token (Anthropic reports cache reads and writes apart), ``cached_tokens`` the cache reads.
The SDK does no retry and nothing of it leaves this module.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
from anthropic import AsyncAnthropic, omit
from anthropic.types import AssistantMessageParam, Message, MessageParam, RawMessageStreamEvent, UserMessageParam

from domain.llm.model import (
    ChatRole,
    Completion,
    CompletionRequest,
    FinishReason,
    ModelSpec,
    ServedBy,
    StreamEnd,
    StreamEvent,
    TextDelta,
    TokenUsage,
    with_partial,
)
from domain.llm.ports import LLMProvider
from domain.shared.errors import UpstreamBadResponse, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from infrastructure.llm.http_client import DEFAULT_MAX_RESPONSE_BYTES, pooled_http_client, transport_error
from infrastructure.llm.upstream_errors import error_for_status, error_for_type, redact
from infrastructure.llm.usage import estimated_usage

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


def prompt(request: CompletionRequest) -> tuple[str | None, list[MessageParam]]:
    """The ``system`` parameter (every system message, merged) and the turns, same-role neighbours merged."""
    system = "\n\n".join(m.content for m in request.messages if m.role is ChatRole.SYSTEM)
    turns: list[tuple[ChatRole, list[str]]] = []
    for message in request.messages:
        if message.role is ChatRole.SYSTEM:
            continue
        if turns and turns[-1][0] is message.role:
            turns[-1][1].append(message.content)
        else:
            turns.append((message.role, [message.content]))
    messages: list[MessageParam] = []
    for role, parts in turns:
        content = "\n\n".join(parts)
        if role is ChatRole.ASSISTANT:
            messages.append(AssistantMessageParam(role="assistant", content=content))
        else:
            messages.append(UserMessageParam(role="user", content=content))
    return system or None, messages


@dataclass
class _StreamState:
    """What a stream has delivered so far."""

    pieces: list[str] = field(default_factory=list)
    input_tokens: int | None = None
    cached_tokens: int = 0
    output_tokens: int = 0
    finish: FinishReason | None = None
    stopped: bool = False

    @property
    def text(self) -> str:
        return "".join(self.pieces)


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
        if not isinstance(response, Message):
            raise self._bad(f"sent a {type(response).__name__} body, not a message")
        try:
            content = "".join(block.text for block in response.content if block.type == "text")
            finish = _stop(response.stop_reason)
            usage = response.usage
            cached = _count(usage.cache_read_input_tokens)
            prompt_tokens = _count(usage.input_tokens) + cached + _count(usage.cache_creation_input_tokens)
            tokens = TokenUsage(
                input_tokens=prompt_tokens, output_tokens=_count(usage.output_tokens), cached_tokens=cached
            )
        except _SHAPE_FAILURES as exc:
            raise self._bad(f"sent an invalid message ({exc})") from None
        return Completion(content=content, finish_reason=finish, usage=tokens, served_by=self._served_by)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        try:
            upstream = await self._client.messages.create(**self._params(request), stream=True)
        except _SDK_FAILURES as exc:
            raise self._translate(exc, started=False) from None
        state = _StreamState()
        try:
            async for event in upstream:
                piece = self._read_event(event, state)
                if piece:
                    state.pieces.append(piece)
                    yield TextDelta(piece)
        except _SDK_FAILURES + _SHAPE_FAILURES as exc:
            raise self._partial(self._translate(exc, started=True), request, state) from None
        finally:
            await upstream.close()  # the consumer went away, or the stream is over: release the connection
        if state.finish is None or not state.stopped or state.input_tokens is None:
            raise self._partial(self._bad("ended the stream before the answer was finished"), request, state)
        usage = TokenUsage(
            input_tokens=state.input_tokens, output_tokens=state.output_tokens, cached_tokens=state.cached_tokens
        )
        completion = Completion(content=state.text, finish_reason=state.finish, usage=usage, served_by=self._served_by)
        yield StreamEnd(completion)

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        system, messages = prompt(request)
        # This SDK no longer lists temperature and top_p (newer models fix them); they are sent when asked for, and
        # a model that refuses them answers 400, which the caller sees as UpstreamRejected.
        sampling = {"temperature": request.temperature, "top_p": request.top_p}
        return {
            "model": self._spec.upstream_model,
            "messages": messages,
            "system": omit if system is None else system,
            "max_tokens": request.max_tokens or self._spec.max_output_tokens,
            "stop_sequences": list(request.stop) if request.stop else omit,
            "extra_body": {k: v for k, v in sampling.items() if v is not None} or None,
        }

    @staticmethod
    def _read_event(event: RawMessageStreamEvent, state: _StreamState) -> str | None:
        if event.type == "message_start":
            usage = event.message.usage
            state.cached_tokens = _count(usage.cache_read_input_tokens)
            state.input_tokens = (
                _count(usage.input_tokens) + state.cached_tokens + _count(usage.cache_creation_input_tokens)
            )
            state.output_tokens = _count(usage.output_tokens)
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            text = event.delta.text
            if not isinstance(text, str):
                raise TypeError("text delta is not text")
            return text
        elif event.type == "message_delta":
            state.output_tokens = _count(event.usage.output_tokens)  # cumulative
            if event.delta.stop_reason is not None:
                state.finish = _stop(event.delta.stop_reason)
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
