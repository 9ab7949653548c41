"""The OpenAI adapter on the official ``openai`` SDK (``client = "sdk"`` in the catalog); also serves
OpenAI-compatible servers.

The wire format is ``openai_format``'s, shared with the direct adapter (``infrastructure.llm.openai``): the body is
built as plain JSON and handed to the SDK, and what the SDK returns is read back as plain JSON, so both adapters
send and understand exactly the same things and pass one contract suite. The SDK brings its own HTTP stack
(``httpx2``), its typed models and its error classes, at about ten times the direct adapter's CPU per call.

One instance per catalog deployment, each with its own pooled HTTP client. The SDK does no retry
(``max_retries=0``): the router's resilience layer decides. Nothing of the SDK leaves this module: every failure is
an ``UpstreamError``, raised ``from None``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping

import httpx2
import openai
from openai import AsyncOpenAI

from domain.llm.model import (
    Completion,
    CompletionRequest,
    EmbeddingRequest,
    Embeddings,
    ModelSpec,
    StreamEnd,
    StreamOpened,
    UpstreamEvent,
)
from domain.shared.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from infrastructure.llm.http_client import is_html_response, pooled_http_client, transport_error
from infrastructure.llm.openai import NO_KEY, OpenAIBase
from infrastructure.llm.openai_format import (
    OPENAI_BASE_URL,
    StreamState,
    embeddings_body,
    read_chunk,
    read_completion,
    read_embeddings,
    request_body,
)
from infrastructure.llm.transport import Transport
from infrastructure.llm.upstream_errors import SHAPE_FAILURES, error_for_status, is_html, redact
from infrastructure.llm.wire import DEFAULT_MAX_RESPONSE_BYTES

_SDK_FAILURES = (openai.OpenAIError, httpx2.HTTPError, TimeoutError, ValueError)


class OpenAISDKProvider(OpenAIBase):
    """One OpenAI (``openai``) or OpenAI-compatible deployment, called through the official SDK."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        transport: Transport,
        api_key: str | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__(spec, transport=transport, api_key=api_key)
        self._client = AsyncOpenAI(
            api_key=api_key or NO_KEY,
            base_url=transport.base_url or OPENAI_BASE_URL,
            max_retries=0,
            timeout=httpx2.Timeout(transport.timeout_seconds, connect=transport.connect_timeout_seconds),
            http_client=pooled_http_client(transport, max_response_bytes=max_response_bytes),
        )

    async def aclose(self) -> None:
        """Closes the pooled connections; the provider is unusable afterwards."""
        await self._client.close()

    async def complete(self, request: CompletionRequest) -> Completion:
        try:
            async with asyncio.timeout(self._transport.timeout_seconds):
                response = await self._client.chat.completions.create(**request_body(self._spec, request), stream=False)
        except _SDK_FAILURES as exc:
            raise self._translate(exc, started=False) from None
        try:
            return read_completion(response.to_dict(), request, self._served_by)
        except SHAPE_FAILURES as exc:
            raise self._bad(f"sent an invalid chat completion ({exc})") from None

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[UpstreamEvent, None]:
        try:
            upstream = await self._client.chat.completions.create(
                **request_body(self._spec, request), stream=True, stream_options={"include_usage": True}
            )
        except _SDK_FAILURES as exc:
            raise self._translate(exc, started=False) from None
        state = StreamState()
        opened = False
        try:
            async for chunk in upstream:
                events = read_chunk(chunk.to_dict(), state)
                if not opened:  # the first chunk understood (its role, usually no text): the stream is open
                    opened = True
                    yield StreamOpened()
                for event in events:
                    yield event
        except _SDK_FAILURES + SHAPE_FAILURES as exc:
            raise self._partial(self._translate(exc, started=True), request, state) from None
        finally:
            await upstream.close()  # the consumer went away, or the stream is over: release the connection
        if state.finish is None:
            raise self._partial(self._bad("ended the stream before the answer was finished"), request, state)
        yield StreamEnd(state.completion(request, self._served_by))

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        try:
            async with asyncio.timeout(self._transport.timeout_seconds):
                response = await self._client.embeddings.create(**embeddings_body(self._spec, request))
        except _SDK_FAILURES as exc:
            raise self._translate(exc, started=False) from None
        try:
            return read_embeddings(response.to_dict(), request, self._served_by)
        except SHAPE_FAILURES as exc:
            raise self._bad(f"sent invalid embeddings ({exc})") from None

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
            html_page = is_html_response(exc.response, exc.body)
            message = self._error_message(exc.body)
            return error_for_status(
                exc.status_code, message=message, code=exc.code, headers=headers, html=html_page, **where
            )
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
            return "(an HTML page)" if is_html(body) else redact(body, self._secret)
        return ""
