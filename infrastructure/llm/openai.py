"""The OpenAI Chat Completions adapter, on the official ``openai`` SDK; also serves OpenAI-compatible servers.

One instance per catalog deployment, each with its own pooled HTTP client. The SDK does no retry
(``max_retries=0``): the router's resilience layer decides. Nothing of the SDK leaves this module: every failure is
an ``UpstreamError``, raised ``from None``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI, omit
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam

from domain.llm.model import (
    ChatMessage,
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
from infrastructure.llm.upstream_errors import error_for_status, redact
from infrastructure.llm.usage import estimated_usage

OPENAI_BASE_URL = "https://api.openai.com/v1"
# Sent to OpenAI-compatible servers run without a key: the SDK needs one, and an unset key must never make it fall
# back to the process's OPENAI_API_KEY, which would hand the real OpenAI key to a third-party server.
NO_KEY = "no-key"
_FINISH = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
}
_SDK_FAILURES = (openai.OpenAIError, httpx2.HTTPError, TimeoutError, ValueError)
_SHAPE_FAILURES = (AttributeError, TypeError, IndexError, KeyError, ValueError)


def _message(message: ChatMessage) -> ChatCompletionMessageParam:
    if message.role is ChatRole.SYSTEM:
        return {"role": "system", "content": message.content}
    if message.role is ChatRole.ASSISTANT:
        return {"role": "assistant", "content": message.content}
    return {"role": "user", "content": message.content}


def _usage(usage: CompletionUsage) -> TokenUsage:
    details = usage.prompt_tokens_details
    cached = details.cached_tokens if details is not None else None
    values = (usage.prompt_tokens, usage.completion_tokens, cached or 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise ValueError("token counts are not non-negative integers")
    return TokenUsage(input_tokens=values[0], output_tokens=values[1], cached_tokens=values[2])


def _finish(reason: object) -> FinishReason:
    if not isinstance(reason, str):
        raise ValueError("no finish_reason")
    return _FINISH.get(reason, FinishReason.STOP)


@dataclass
class _StreamState:
    """What a stream has delivered so far."""

    pieces: list[str]
    finish: FinishReason | None = None
    usage: TokenUsage | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)


class OpenAIProvider(LLMProvider):
    """One OpenAI (``openai``) or OpenAI-compatible (``openai_compatible``: vLLM, Ollama, LM Studio, TGI) deployment."""

    def __init__(
        self, spec: ModelSpec, *, api_key: str | None = None, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    ) -> None:
        self._spec = spec
        self._secret = api_key
        self._client = AsyncOpenAI(
            api_key=api_key or NO_KEY,
            base_url=spec.base_url or OPENAI_BASE_URL,
            max_retries=0,
            timeout=httpx2.Timeout(spec.timeout_seconds, connect=spec.connect_timeout_seconds),
            http_client=pooled_http_client(spec, max_response_bytes=max_response_bytes),
        )
        self._served_by = ServedBy(
            model=spec.name, provider=spec.provider, upstream_model=spec.upstream_model, variant=spec.variant
        )

    def __repr__(self) -> str:
        return f"OpenAIProvider(model={self._spec.name!r}, upstream_model={self._spec.upstream_model!r})"

    async def aclose(self) -> None:
        """Closes the pooled connections; the provider is unusable afterwards."""
        await self._client.close()

    async def complete(self, request: CompletionRequest) -> Completion:
        try:
            async with asyncio.timeout(self._spec.timeout_seconds):
                response = await self._client.chat.completions.create(**self._params(request), stream=False)
        except _SDK_FAILURES as exc:
            raise self._translate(exc, started=False) from None
        if not isinstance(response, ChatCompletion):
            raise self._bad(f"sent a {type(response).__name__} body, not a chat completion")
        try:
            choice = response.choices[0]
            content = choice.message.content or ""
            if not isinstance(content, str):
                raise TypeError("content is not text")
            finish = _finish(choice.finish_reason)
            usage = _usage(response.usage) if response.usage is not None else estimated_usage(request, content)
        except _SHAPE_FAILURES as exc:
            raise self._bad(f"sent an invalid chat completion ({exc})") from None
        return Completion(content=content, finish_reason=finish, usage=usage, served_by=self._served_by)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        try:
            upstream = await self._client.chat.completions.create(
                **self._params(request), stream=True, stream_options={"include_usage": True}
            )
        except _SDK_FAILURES as exc:
            raise self._translate(exc, started=False) from None
        state = _StreamState(pieces=[])
        try:
            async for chunk in upstream:
                piece = self._read_chunk(chunk, state)
                if piece:
                    state.pieces.append(piece)
                    yield TextDelta(piece)
        except _SDK_FAILURES + _SHAPE_FAILURES as exc:
            raise self._partial(self._translate(exc, started=True), request, state) from None
        finally:
            await upstream.close()  # the consumer went away, or the stream is over: release the connection
        if state.finish is None:
            raise self._partial(self._bad("ended the stream before the answer was finished"), request, state)
        usage = state.usage or estimated_usage(request, state.text)
        completion = Completion(content=state.text, finish_reason=state.finish, usage=usage, served_by=self._served_by)
        yield StreamEnd(completion)

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        compatible = self._spec.provider == "openai_compatible"
        return {
            "model": self._spec.upstream_model,
            "messages": [_message(m) for m in request.messages],
            "temperature": omit if request.temperature is None else request.temperature,
            "top_p": omit if request.top_p is None else request.top_p,
            # OpenAI's reasoning models only take max_completion_tokens; servers that mimic the API know max_tokens.
            "max_completion_tokens": omit if compatible or request.max_tokens is None else request.max_tokens,
            "max_tokens": omit if not compatible or request.max_tokens is None else request.max_tokens,
            "stop": list(request.stop) if request.stop else omit,
        }

    @staticmethod
    def _read_chunk(chunk: ChatCompletionChunk, state: _StreamState) -> str | None:
        if chunk.usage is not None:
            state.usage = _usage(chunk.usage)
        piece: str | None = None
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            content = choice.delta.content if choice.delta is not None else None
            if content is not None and not isinstance(content, str):
                raise TypeError("delta content is not text")
            piece = content or piece
            if choice.finish_reason is not None:
                state.finish = _finish(choice.finish_reason)
        return piece

    def _partial(self, error: UpstreamError, request: CompletionRequest, state: _StreamState) -> UpstreamError:
        if state.pieces:
            usage = state.usage or estimated_usage(request, state.text)
            partial = Completion(
                content=state.text, finish_reason=FinishReason.ERROR, usage=usage, served_by=self._served_by
            )
            with_partial(error, partial)
        return error

    def _bad(self, what: str) -> UpstreamBadResponse:
        return UpstreamBadResponse(f"{self._spec.provider} {what}", provider=self._spec.provider, model=self._spec.name)

    def _translate(self, exc: BaseException, *, started: bool) -> UpstreamError:
        provider, model = self._spec.provider, self._spec.name
        where = {"provider": provider, "model": model}
        if isinstance(exc, openai.APITimeoutError):
            return UpstreamTimeout(f"{provider} did not answer in time", **where)
        if isinstance(exc, openai.APIConnectionError):
            cause = transport_error(exc.__cause__ or exc, started=started, provider=provider, model=model)
            return cause or UpstreamUnavailable(f"{provider} could not be reached", **where)
        if isinstance(exc, openai.APIStatusError):
            headers: Mapping[str, str] = exc.response.headers
            message = self._error_message(exc.body)
            return error_for_status(exc.status_code, message=message, code=exc.code, headers=headers, **where)
        if isinstance(exc, openai.APIResponseValidationError):
            return self._bad("sent a body that does not match the API")
        if isinstance(exc, openai.APIError):  # an error event inside a 200 stream
            return UpstreamUnavailable(f"{provider} failed mid-stream: {self._error_message(exc.body)}", **where)
        mapped = transport_error(exc, started=started, provider=provider, model=model)
        if mapped is not None:
            return mapped
        return self._bad("sent an unreadable response")

    def _error_message(self, body: object) -> str:
        if isinstance(body, Mapping):
            message = body.get("message")
            return redact(str(message), self._secret) if message else ""
        if isinstance(body, str):
            return "(an HTML page)" if body.lstrip().startswith("<") else redact(body, self._secret)
        return ""
