"""The OpenAI Chat Completions and Embeddings adapter, direct (the default ``client``); also serves
OpenAI-compatible servers (vLLM, Ollama, LM Studio, TGI).

It speaks ``openai_format`` over ``wire.UpstreamHTTP`` (pooled ``aiohttp``, ``orjson``): no SDK on the request
path. ``infrastructure.llm.openai_sdk`` is the same adapter on the official SDK. Every failure is an
``UpstreamError``, raised ``from None``; the router's resilience layer decides on retries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from domain.llm.model import (
    Completion,
    CompletionRequest,
    EmbeddingRequest,
    Embeddings,
    FinishReason,
    ModelSpec,
    ServedBy,
    StreamEnd,
    StreamEvent,
    TextDelta,
    with_partial,
)
from domain.llm.ports import EmbeddingProvider, LLMProvider
from domain.llm.tokens import estimated_usage
from domain.shared.errors import UpstreamBadResponse, UpstreamError, UpstreamUnavailable
from infrastructure.llm.openai_format import (
    OPENAI_BASE_URL,
    SHAPE_FAILURES,
    StreamState,
    embeddings_body,
    read_chunk,
    read_completion,
    read_embeddings,
    request_body,
)
from infrastructure.llm.wire import DEFAULT_MAX_RESPONSE_BYTES, UpstreamHTTP, error_details

# Sent to OpenAI-compatible servers run without a key: an unset key must never fall back to the process's
# OPENAI_API_KEY, which would hand the real OpenAI key to a third-party server.
NO_KEY = "no-key"
_DONE = b"[DONE]"


def joined(pieces: list[str]) -> TextDelta:
    """The text deltas that arrived in one network read, as one (emptying ``pieces``): everything after the read
    (the gateway, the SSE writer, the socket) then works once per read instead of once per token."""
    delta = TextDelta("".join(pieces))
    pieces.clear()
    return delta


class OpenAIBase(LLMProvider, EmbeddingProvider):
    """What both OpenAI adapters share: the deployment, its key (never shown) and how a failure is reported."""

    def __init__(self, spec: ModelSpec, *, api_key: str | None) -> None:
        self._spec = spec
        self._secret = api_key
        self._served_by = ServedBy(
            model=spec.name, provider=spec.provider, upstream_model=spec.upstream_model, variant=spec.variant
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self._spec.name!r}, upstream_model={self._spec.upstream_model!r})"

    def _partial(self, error: UpstreamError, request: CompletionRequest, state: StreamState) -> UpstreamError:
        if state.pieces:
            usage = state.usage or estimated_usage(request, state.text)
            partial = Completion(
                content=state.text, finish_reason=FinishReason.ERROR, usage=usage, served_by=self._served_by
            )
            with_partial(error, partial)
        return error

    def _bad(self, what: str) -> UpstreamBadResponse:
        return UpstreamBadResponse(f"{self._spec.provider} {what}", provider=self._spec.provider, model=self._spec.name)


class OpenAIProvider(OpenAIBase):
    """One OpenAI (``openai``) or OpenAI-compatible (``openai_compatible``) deployment, of a chat or an embedding
    model, on its own pool of keep-alive connections."""

    def __init__(
        self, spec: ModelSpec, *, api_key: str | None = None, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    ) -> None:
        super().__init__(spec, api_key=api_key)
        self._http = UpstreamHTTP(
            spec.base_url or OPENAI_BASE_URL,
            headers={"authorization": f"Bearer {api_key or NO_KEY}"},
            provider=spec.provider,
            model=spec.name,
            timeout_seconds=spec.timeout_seconds,
            connect_timeout_seconds=spec.connect_timeout_seconds,
            secret=api_key,
            max_response_bytes=max_response_bytes,
        )

    async def aclose(self) -> None:
        """Closes the pooled connections."""
        await self._http.aclose()

    async def complete(self, request: CompletionRequest) -> Completion:
        body = await self._http.post_json("/chat/completions", request_body(self._spec, request))
        try:
            return read_completion(body, request, self._served_by)
        except SHAPE_FAILURES as exc:
            raise self._bad(f"sent an invalid chat completion ({exc})") from None

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        body = request_body(self._spec, request)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        state = StreamState()
        batches = self._http.stream("/chat/completions", body)
        done = False
        text: list[str] = []  # the text deltas of one network read, forwarded together
        try:
            async for batch in batches:
                for sse in batch:
                    if done:
                        continue  # read to the end, so the connection goes back to the pool
                    if sse.data == _DONE:
                        done = True
                        continue
                    chunk = orjson.loads(sse.data)
                    if isinstance(chunk, dict) and chunk.get("error") is not None:
                        raise self._stream_error(sse.data)
                    for event in read_chunk(chunk, state):
                        if isinstance(event, TextDelta):
                            text.append(event.text)
                            continue
                        if text:
                            yield joined(text)
                        yield event
                if text:
                    yield joined(text)
        except UpstreamError as exc:
            if text:  # read before the failure: it is in the partial answer, so the caller must see it first
                yield joined(text)
            raise self._partial(exc, request, state) from None
        except (*SHAPE_FAILURES, orjson.JSONDecodeError) as exc:
            if text:
                yield joined(text)
            raise self._partial(self._bad(f"sent an unreadable stream event ({exc})"), request, state) from None
        finally:
            await batches.aclose()  # type: ignore[attr-defined]  # the consumer went away: release the connection
        if state.finish is None:
            raise self._partial(self._bad("ended the stream before the answer was finished"), request, state)
        yield StreamEnd(state.completion(request, self._served_by))

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        body = await self._http.post_json("/embeddings", embeddings_body(self._spec, request))
        try:
            return read_embeddings(body, request, self._served_by)
        except SHAPE_FAILURES as exc:
            raise self._bad(f"sent invalid embeddings ({exc})") from None

    def _stream_error(self, data: bytes) -> UpstreamError:
        """An error event inside a 200 stream: the upstream gave up mid-answer."""
        message, _ = error_details(data, self._secret)
        provider = self._spec.provider
        return UpstreamUnavailable(f"{provider} failed mid-stream: {message}", provider=provider, model=self._spec.name)
