"""The Anthropic Messages adapter on the official ``anthropic`` SDK (``client = "sdk"`` in the catalog).

The wire format is ``anthropic_format``'s, shared with the direct adapter (``infrastructure.llm.anthropic``): the
body is built as plain JSON and handed to the SDK, and what the SDK returns is read back as plain JSON, so both
adapters send and understand exactly the same things and pass one contract suite. The SDK does no retry and nothing
of it leaves this module.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import anthropic
import httpx2
from anthropic import AsyncAnthropic

from domain.llm.model import Completion, CompletionRequest, ModelSpec, StreamEnd, StreamOpened, UpstreamEvent
from domain.shared.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from infrastructure.llm.anthropic import AnthropicBase
from infrastructure.llm.anthropic_format import (
    ANTHROPIC_BASE_URL,
    StreamState,
    count_tokens_body,
    read_count,
    read_event,
    read_message,
    request_body,
)
from infrastructure.llm.http_client import is_html_response, pooled_http_client, transport_error
from infrastructure.llm.transport import Transport
from infrastructure.llm.upstream_errors import SHAPE_FAILURES, error_for_status, error_for_type, is_html, redact
from infrastructure.llm.wire import DEFAULT_MAX_RESPONSE_BYTES

_SDK_FAILURES = (anthropic.AnthropicError, httpx2.HTTPError, TimeoutError, ValueError)
# This SDK no longer lists temperature and top_p in create() (newer models fix them): they go in extra_body.
_EXTRA = ("temperature", "top_p")


class AnthropicSDKProvider(AnthropicBase):
    """One Anthropic deployment, called through the official SDK."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        transport: Transport,
        api_key: str,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__(spec, transport=transport, api_key=api_key)
        self._client = AsyncAnthropic(
            api_key=api_key,
            base_url=transport.base_url or ANTHROPIC_BASE_URL,
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
                response = await self._client.messages.create(**self._params(request), stream=False)
        except _SDK_FAILURES as exc:
            raise self._translate(exc, started=False) from None
        try:
            return read_message(response.to_dict(), self._served_by)
        except SHAPE_FAILURES as exc:
            raise self._bad(f"sent an invalid message ({exc})") from None

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[UpstreamEvent, None]:
        try:
            upstream = await self._client.messages.create(**self._params(request), stream=True)
        except _SDK_FAILURES as exc:
            raise self._translate(exc, started=False) from None
        state = StreamState()
        opened = False
        try:
            async for event in upstream:
                delta = read_event(event.to_dict(), state)
                if not opened:  # the first event understood (``message_start``): the stream is open
                    opened = True
                    yield StreamOpened()
                if delta is not None:
                    yield delta
        except _SDK_FAILURES + SHAPE_FAILURES as exc:
            raise self._partial(self._translate(exc, started=True), request, state) from None
        finally:
            await upstream.close()  # the consumer went away, or the stream is over: release the connection
        if not state.complete:
            raise self._partial(self._bad("ended the stream before the answer was finished"), request, state)
        yield StreamEnd(state.completion(self._served_by))

    async def count_tokens(self, request: CompletionRequest) -> int | None:
        """Anthropic's own count (``messages.count_tokens``)."""
        body = count_tokens_body(self._spec, request)
        extra = {name: body.pop(name) for name in _EXTRA if name in body}
        try:
            async with asyncio.timeout(self._transport.timeout_seconds):
                counted = await self._client.messages.count_tokens(**body, extra_body=extra or None)
        except _SDK_FAILURES as exc:
            raise self._translate(exc, started=False) from None
        try:
            return read_count(counted.to_dict())
        except SHAPE_FAILURES as exc:
            raise self._bad(f"sent an invalid token count ({exc})") from None

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        body = request_body(self._spec, request)
        extra = {name: body.pop(name) for name in _EXTRA if name in body}
        return {**body, "extra_body": extra or None}

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
            html_page = is_html_response(exc.response, exc.body)
            code = exc.error_code or (exc.type if isinstance(exc.type, str) else None)
            return error_for_status(
                exc.status_code, message=message, code=code, headers=headers, html=html_page, **where
            )
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
            return "(an HTML page)" if is_html(body) else redact(body, self._secret)
        return ""
