"""The OpenAI Chat Completions and Embeddings adapter, direct (the default ``client``); also serves
OpenAI-compatible servers (vLLM, Ollama, LM Studio, TGI).

It speaks ``openai_format`` over ``wire.UpstreamHTTP`` (pooled ``aiohttp``, ``orjson``): no SDK on the request
path. ``infrastructure.llm.openai_sdk`` is the same adapter on the official SDK. Every failure is an
``UpstreamError``, raised ``from None``; the router's resilience layer decides on retries.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import orjson

from domain.credentials.errors import ProviderNotSupported
from domain.llm.model import (
    Completion,
    CompletionRequest,
    EmbeddingRequest,
    Embeddings,
    ModelSpec,
    StreamEnd,
    StreamEvent,
    UpstreamEvent,
)
from domain.llm.ports import EmbeddingProvider, LLMProvider
from domain.shared.errors import UpstreamError, UpstreamUnavailable
from infrastructure.llm.adapter import DeploymentAdapter
from infrastructure.llm.openai_format import (
    OPENAI_BASE_URL,
    StreamState,
    embeddings_body,
    input_tokens_body,
    read_chunk,
    read_completion,
    read_embeddings,
    read_input_tokens,
    request_body,
)
from infrastructure.llm.presets import takes_user_keys
from infrastructure.llm.transport import Transport
from infrastructure.llm.upstream_errors import SHAPE_FAILURES
from infrastructure.llm.wire import DEFAULT_MAX_RESPONSE_BYTES, SSEEvent, UpstreamHTTP, error_details

# Sent to OpenAI-compatible servers run without a key: an unset key must never fall back to the process's
# OPENAI_API_KEY, which would hand the real OpenAI key to a third-party server.
NO_KEY = "no-key"
_DONE = b"[DONE]"


class OpenAIBase(DeploymentAdapter, LLMProvider, EmbeddingProvider):
    """What both OpenAI adapters share: a broken stream's partial answer carries the usage the upstream reported."""

    def _partial(self, error: UpstreamError, request: CompletionRequest, state: StreamState) -> UpstreamError:
        return self._with_partial(error, request, state.text, state.usage)


class OpenAIProvider(OpenAIBase):
    """One OpenAI (``openai``) or OpenAI-compatible (``openai_compatible``) deployment, of a chat or an embedding
    model, on its own pool of keep-alive connections."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        transport: Transport,
        api_key: str | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__(spec, transport=transport, api_key=api_key)
        base_url, headers = self._endpoint(transport, api_key)
        self._http = UpstreamHTTP(
            base_url,
            headers=headers,
            provider=spec.provider,
            model=spec.name,
            timeout_seconds=transport.timeout_seconds,
            connect_timeout_seconds=transport.connect_timeout_seconds,
            secret=api_key,
            max_response_bytes=max_response_bytes,
        )

    def _endpoint(self, transport: Transport, api_key: str | None) -> tuple[str, dict[str, str]]:
        """The base URL every path hangs from, and the credentials header."""
        return transport.base_url or OPENAI_BASE_URL, {"authorization": f"Bearer {api_key or NO_KEY}"}

    def _path(self, operation: str) -> str:
        """The path of ``operation`` (``chat/completions``, ``embeddings``) under the base URL."""
        return f"/{operation}"

    @property
    def accepts_user_keys(self) -> bool:
        return takes_user_keys(self._spec.provider)

    def with_credential(self, secret: str) -> OpenAIProvider | None:
        if not self.accepts_user_keys:
            return None
        return self._keyed(secret, self._endpoint(self._transport, secret)[1])

    async def verify_credential(self, secret: str) -> None:
        keyed = self.with_credential(secret)
        if keyed is None:
            raise ProviderNotSupported(f"provider '{self._spec.provider}' takes no key of a user")
        await keyed._http.get_json(self._path("models"))  # the model list: authenticated, free

    async def aclose(self) -> None:
        """Closes the pooled connections."""
        await self._http.aclose()

    async def complete(self, request: CompletionRequest) -> Completion:
        body = await self._http.post_json(self._path("chat/completions"), request_body(self._spec, request))
        try:
            return read_completion(body, request, self._served_by)
        except SHAPE_FAILURES as exc:
            raise self._bad(f"sent an invalid chat completion ({exc})") from None

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[UpstreamEvent, None]:
        body = request_body(self._spec, request)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        state = StreamState()
        forwarded = self._forward(
            self._http.stream(self._path("chat/completions"), body),
            lambda sse: self._read(sse, state),
            lambda error: self._partial(error, request, state),
        )
        async with contextlib.aclosing(forwarded) as events:  # a consumer leaving early closes the upstream
            async for event in events:
                yield event
        if state.finish is None:
            raise self._partial(self._bad("ended the stream before the answer was finished"), request, state)
        yield StreamEnd(state.completion(request, self._served_by))

    async def count_tokens(self, request: CompletionRequest) -> int | None:
        """OpenAI's own count (``/v1/responses/input_tokens``); Azure and OpenAI-compatible servers have none."""
        if self._spec.provider != "openai":
            return None
        body = await self._http.post_json(self._path("responses/input_tokens"), input_tokens_body(self._spec, request))
        try:
            return read_input_tokens(body)
        except SHAPE_FAILURES as exc:
            raise self._bad(f"sent an invalid token count ({exc})") from None

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        body = await self._http.post_json(self._path("embeddings"), embeddings_body(self._spec, request))
        try:
            return read_embeddings(body, request, self._served_by)
        except SHAPE_FAILURES as exc:
            raise self._bad(f"sent invalid embeddings ({exc})") from None

    def _read(self, sse: SSEEvent, state: StreamState) -> list[StreamEvent]:
        if state.done:
            return []  # read to the end anyway, so the connection goes back to the pool
        if sse.data == _DONE:
            state.done = True
            return []
        chunk = orjson.loads(sse.data)
        if isinstance(chunk, dict) and chunk.get("error") is not None:
            message, _ = error_details(sse.data, self._secret)  # an error event inside a 200 stream
            where = {"provider": self._spec.provider, "model": self._spec.name}
            raise UpstreamUnavailable(f"{self._spec.provider} failed mid-stream: {message}", **where)
        return read_chunk(chunk, state)
