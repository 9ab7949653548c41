"""The Google Gemini adapter (the Gemini API, ``generativelanguage.googleapis.com``), direct on ``wire.UpstreamHTTP``.

A call is ``POST {base}/models/{model}:generateContent``; a stream ``:streamGenerateContent?alt=sse`` (one server-sent
event per response chunk; function calls arrive whole, so a call is one ``ToolCallDelta`` with its arguments);
embeddings ``:batchEmbedContents``. The key goes in the ``x-goog-api-key`` header, never in the URL. Gemini does not
count embedding tokens: their usage is estimated (flagged ``estimated``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from urllib.parse import quote

import orjson

from domain.llm.model import (
    Completion,
    CompletionRequest,
    EmbeddingRequest,
    Embeddings,
    ModelSpec,
    StreamEnd,
    StreamEvent,
    TextDelta,
    TokenUsage,
    ToolCallDelta,
    UpstreamEvent,
)
from domain.llm.ports import EmbeddingProvider, LLMProvider
from domain.llm.tokens import estimate_tokens, estimated_usage
from domain.shared.errors import UpstreamError, UpstreamUnavailable
from infrastructure.llm.adapter import DeploymentAdapter
from infrastructure.llm.gemini_format import (
    GEMINI_BASE_URL,
    ResponseState,
    embeddings_body,
    read_chunk,
    read_response,
    read_vectors,
    request_body,
)
from infrastructure.llm.transport import Transport
from infrastructure.llm.upstream_errors import SHAPE_FAILURES
from infrastructure.llm.wire import DEFAULT_MAX_RESPONSE_BYTES, SSEEvent, UpstreamHTTP, error_details


class GeminiProvider(DeploymentAdapter, LLMProvider, EmbeddingProvider):
    """One Gemini model (chat or embeddings), on its own pool of keep-alive connections."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        transport: Transport,
        api_key: str | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__(spec, transport=transport, api_key=api_key)
        self._model_path = f"/models/{quote(spec.upstream_model, safe='')}"
        self._http = UpstreamHTTP(
            transport.base_url or GEMINI_BASE_URL,
            headers={"x-goog-api-key": api_key or ""},
            provider=spec.provider,
            model=spec.name,
            timeout_seconds=transport.timeout_seconds,
            connect_timeout_seconds=transport.connect_timeout_seconds,
            secret=api_key,
            max_response_bytes=max_response_bytes,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def accepts_user_keys(self) -> bool:
        return True

    def with_credential(self, secret: str) -> GeminiProvider:
        return self._keyed(secret, {"x-goog-api-key": secret})

    async def verify_credential(self, secret: str) -> None:
        await self.with_credential(secret)._http.get_json("/models?pageSize=1")  # the model list: authenticated, free

    async def complete(self, request: CompletionRequest) -> Completion:
        body = await self._http.post_json(f"{self._model_path}:generateContent", request_body(self._spec, request))
        try:
            return read_response(body, self._served_by)
        except SHAPE_FAILURES as exc:
            raise self._bad(f"sent an invalid response ({exc})") from None

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[UpstreamEvent, None]:
        state = ResponseState()
        path = f"{self._model_path}:streamGenerateContent?alt=sse"
        forwarded = self._forward(
            self._http.stream(path, request_body(self._spec, request)),
            lambda sse: self._read(sse, state),
            lambda error: self._partial(error, request, state),
        )
        async with contextlib.aclosing(forwarded) as events:  # a consumer leaving early closes the upstream
            async for event in events:
                yield event
        if state.reason is None or state.usage is None:
            raise self._partial(self._bad("ended the stream before the answer was finished"), request, state)
        yield StreamEnd(state.completion(self._served_by))

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        body = await self._http.post_json(
            f"{self._model_path}:batchEmbedContents", embeddings_body(self._spec, request)
        )
        try:
            vectors = read_vectors(body, request)
        except SHAPE_FAILURES as exc:
            raise self._bad(f"sent invalid embeddings ({exc})") from None
        tokens = sum(estimate_tokens(text) for text in request.inputs)
        usage = TokenUsage(input_tokens=tokens, estimated=True)
        return Embeddings(vectors=vectors, usage=usage, served_by=self._served_by)

    def _read(self, sse: SSEEvent, state: ResponseState) -> list[StreamEvent]:
        first_call = len(state.calls)
        chunk = orjson.loads(sse.data)
        if isinstance(chunk, dict) and chunk.get("error") is not None:
            message, _ = error_details(sse.data, self._secret)  # an error event inside a 200 stream
            where = {"provider": self._spec.provider, "model": self._spec.name}
            raise UpstreamUnavailable(f"{self._spec.provider} failed mid-stream: {message}", **where)
        texts, calls = read_chunk(chunk, state)
        events: list[StreamEvent] = [TextDelta(text) for text in texts if text]
        for index, call in enumerate(calls, start=first_call):
            events.append(ToolCallDelta(index=index, id=call.id, name=call.name, arguments=call.arguments))
        return events

    def _partial(self, error: UpstreamError, request: CompletionRequest, state: ResponseState) -> UpstreamError:
        """A broken stream's partial answer: its text, the prompt as Gemini counted it, the answer estimated."""
        prompt = state.usage.input_tokens if state.usage is not None else None
        usage = estimated_usage(request, state.text, input_tokens=prompt) if state.pieces else None
        return self._with_partial(error, request, state.text, usage)
