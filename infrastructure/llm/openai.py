"""The OpenAI Chat Completions and Embeddings adapter, on the official ``openai`` SDK; also serves OpenAI-compatible
servers.

Tools map one to one: a ``ToolDefinition`` is a ``function`` tool, an assistant's ``ToolCall``s its ``tool_calls``,
a ``TOOL`` message a ``role: tool`` message; streamed ``tool_calls`` deltas become ``ToolCallDelta``s.

One instance per catalog deployment, each with its own pooled HTTP client. The SDK does no retry
(``max_retries=0``): the router's resilience layer decides. Nothing of the SDK leaves this module: every failure is
an ``UpstreamError``, raised ``from None``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI, omit
from openai.types import CompletionUsage, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam

from domain.llm.model import (
    ChatMessage,
    ChatRole,
    Completion,
    CompletionRequest,
    EmbeddingRequest,
    Embeddings,
    FinishReason,
    ModelSpec,
    ResponseFormat,
    ResponseFormatType,
    ServedBy,
    StreamEnd,
    StreamEvent,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    with_partial,
)
from domain.llm.ports import EmbeddingProvider, LLMProvider
from domain.llm.tokens import estimated_usage
from domain.shared.errors import UpstreamBadResponse, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from infrastructure.llm.http_client import DEFAULT_MAX_RESPONSE_BYTES, pooled_http_client, transport_error
from infrastructure.llm.upstream_errors import error_for_status, redact

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
    if message.role is ChatRole.TOOL:
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content}
    if message.role is ChatRole.ASSISTANT and message.tool_calls:
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
        return {"role": "assistant", "content": message.content or None, "tool_calls": calls}
    if message.role is ChatRole.ASSISTANT:
        return {"role": "assistant", "content": message.content}
    return {"role": "user", "content": message.content}


def _tool_choice(choice: ToolChoice | None) -> Any:
    if choice is None:
        return omit
    if choice.name is not None:
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode.value  # auto, none, required: the same words


def _response_format(wanted: ResponseFormat | None) -> Any:
    if wanted is None:
        return omit
    if wanted.type is not ResponseFormatType.JSON_SCHEMA:
        return {"type": wanted.type.value}
    schema: dict[str, Any] = {"name": wanted.name or "response"}
    if wanted.schema_json is not None:
        schema["schema"] = json.loads(wanted.schema_json)
    if wanted.strict is not None:
        schema["strict"] = wanted.strict
    return {"type": "json_schema", "json_schema": schema}


def _tools_params(request: CompletionRequest) -> dict[str, Any]:
    if not request.tools:
        return {}
    tools = [
        {
            "type": "function",
            "function": {
                "name": t.name,
                **({"description": t.description} if t.description else {}),
                "parameters": json.loads(t.parameters_json),
            },
        }
        for t in request.tools
    ]
    params: dict[str, Any] = {"tools": tools, "tool_choice": _tool_choice(request.tool_choice)}
    if request.tool_choice is not None and not request.tool_choice.parallel:
        params["parallel_tool_calls"] = False
    return params


def _tool_calls(calls: Sequence[Any] | None) -> tuple[ToolCall, ...]:
    found: list[ToolCall] = []
    for call in calls or []:
        if call.type != "function":
            raise TypeError(f"a {call.type} tool call is not supported")
        arguments = call.function.arguments
        if not isinstance(call.id, str) or not isinstance(arguments, str):
            raise TypeError("a tool call without id or arguments")
        found.append(ToolCall(id=call.id, name=call.function.name, arguments=arguments or "{}"))
    return tuple(found)


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
    calls: dict[int, list[str]] = field(default_factory=dict)  # upstream index -> [id, name, arguments...], in order

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(id=parts[0], name=parts[1], arguments="".join(parts[2:]) or "{}") for parts in self.calls.values()
        )


def _read_tool_call_delta(call: Any, state: _StreamState) -> ToolCallDelta:
    """A streamed piece of a tool call: the first names the call, the rest carry pieces of its arguments."""
    index = call.index
    if not isinstance(index, int) or isinstance(index, bool):
        raise TypeError("a tool call delta without index")
    function = call.function
    arguments = (function.arguments if function is not None else None) or ""
    if not isinstance(arguments, str):
        raise TypeError("tool call arguments are not text")
    if index not in state.calls:
        name = function.name if function is not None else None
        if not isinstance(call.id, str) or not isinstance(name, str):
            raise TypeError("a tool call starts without its id and name")
        state.calls[index] = [call.id, name, arguments]
        return ToolCallDelta(index=len(state.calls) - 1, id=call.id, name=name, arguments=arguments)
    state.calls[index].append(arguments)
    return ToolCallDelta(index=list(state.calls).index(index), arguments=arguments)


class OpenAIProvider(LLMProvider, EmbeddingProvider):
    """One OpenAI (``openai``) or OpenAI-compatible (``openai_compatible``: vLLM, Ollama, LM Studio, TGI) deployment,
    of a chat or an embedding model."""

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
            calls = _tool_calls(choice.message.tool_calls)
            usage = _usage(response.usage) if response.usage is not None else estimated_usage(request, content)
        except _SHAPE_FAILURES as exc:
            raise self._bad(f"sent an invalid chat completion ({exc})") from None
        return Completion(
            content=content, finish_reason=finish, usage=usage, served_by=self._served_by, tool_calls=calls
        )

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
                for event in self._read_chunk(chunk, state):
                    yield event
        except _SDK_FAILURES + _SHAPE_FAILURES as exc:
            raise self._partial(self._translate(exc, started=True), request, state) from None
        finally:
            await upstream.close()  # the consumer went away, or the stream is over: release the connection
        if state.finish is None:
            raise self._partial(self._bad("ended the stream before the answer was finished"), request, state)
        usage = state.usage or estimated_usage(request, state.text)
        completion = Completion(
            content=state.text,
            finish_reason=state.finish,
            usage=usage,
            served_by=self._served_by,
            tool_calls=state.tool_calls(),
        )
        yield StreamEnd(completion)

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        dimensions = request.dimensions or self._spec.dimensions
        try:
            async with asyncio.timeout(self._spec.timeout_seconds):
                response = await self._client.embeddings.create(
                    model=self._spec.upstream_model,
                    input=list(request.inputs),
                    dimensions=omit if dimensions is None else dimensions,
                    user=omit if request.user is None else request.user,
                    encoding_format="float",
                )
        except _SDK_FAILURES as exc:
            raise self._translate(exc, started=False) from None
        try:
            return self._embeddings(request, response)
        except _SHAPE_FAILURES as exc:
            raise self._bad(f"sent invalid embeddings ({exc})") from None

    def _embeddings(self, request: EmbeddingRequest, response: CreateEmbeddingResponse) -> Embeddings:
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(request.inputs):
            raise ValueError(f"{len(data)} vectors for {len(request.inputs)} inputs")
        vectors = tuple(tuple(float(v) for v in item.embedding) for item in data)
        tokens = response.usage.prompt_tokens
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
            raise ValueError("token counts are not non-negative integers")
        return Embeddings(vectors=vectors, usage=TokenUsage(input_tokens=tokens), served_by=self._served_by)

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
            "response_format": _response_format(request.response_format),
            "user": omit if request.user is None else request.user,
            **_tools_params(request),
        }

    @staticmethod
    def _read_chunk(chunk: ChatCompletionChunk, state: _StreamState) -> list[StreamEvent]:
        if chunk.usage is not None:
            state.usage = _usage(chunk.usage)
        events: list[StreamEvent] = []
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            content = delta.content if delta is not None else None
            if content is not None and not isinstance(content, str):
                raise TypeError("delta content is not text")
            if content:
                state.pieces.append(content)
                events.append(TextDelta(content))
            for call in (delta.tool_calls if delta is not None else None) or []:
                events.append(_read_tool_call_delta(call, state))
            if choice.finish_reason is not None:
                state.finish = _finish(choice.finish_reason)
        return events

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
