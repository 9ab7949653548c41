"""The Anthropic Messages adapter, direct (the default ``client``).

It speaks ``anthropic_format`` over ``wire.UpstreamHTTP`` (pooled ``aiohttp``, ``orjson``): no SDK on the request
path. ``infrastructure.llm.anthropic_sdk`` is the same adapter on the official SDK. Every failure is an
``UpstreamError``, raised ``from None``; the router's resilience layer decides on retries.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import orjson

from domain.llm.model import Completion, CompletionRequest, ModelSpec, StreamEnd, StreamEvent, UpstreamEvent
from domain.llm.ports import LLMProvider
from domain.llm.tokens import estimated_usage
from domain.shared.errors import UpstreamError
from infrastructure.llm.adapter import DeploymentAdapter
from infrastructure.llm.anthropic_format import (
    ANTHROPIC_BASE_URL,
    ANTHROPIC_VERSION,
    StreamState,
    count_tokens_body,
    read_count,
    read_event,
    read_message,
    request_body,
)
from infrastructure.llm.transport import Transport
from infrastructure.llm.upstream_errors import SHAPE_FAILURES, error_for_type
from infrastructure.llm.wire import DEFAULT_MAX_RESPONSE_BYTES, SSEEvent, UpstreamHTTP, error_details


class AnthropicBase(DeploymentAdapter, LLMProvider):
    """What both Anthropic adapters share: a broken stream's partial usage counts the prompt as Anthropic did."""

    def _partial(self, error: UpstreamError, request: CompletionRequest, state: StreamState) -> UpstreamError:
        usage = estimated_usage(request, state.text, input_tokens=state.input_tokens) if state.pieces else None
        return self._with_partial(error, request, state.text, usage)


class AnthropicProvider(AnthropicBase):
    """One Anthropic deployment, on its own pool of keep-alive connections."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        transport: Transport,
        api_key: str,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__(spec, transport=transport, api_key=api_key)
        self._http = UpstreamHTTP(
            (transport.base_url or ANTHROPIC_BASE_URL).rstrip("/") + "/v1",
            # As the official SDK (2.x) sends it.
            headers={"authorization": f"Bearer {api_key}", "anthropic-version": ANTHROPIC_VERSION},
            provider="anthropic",
            model=spec.name,
            timeout_seconds=transport.timeout_seconds,
            connect_timeout_seconds=transport.connect_timeout_seconds,
            secret=api_key,
            max_response_bytes=max_response_bytes,
        )

    async def aclose(self) -> None:
        """Closes the pooled connections."""
        await self._http.aclose()

    @property
    def accepts_user_keys(self) -> bool:
        return True

    def with_credential(self, secret: str) -> AnthropicProvider:
        return self._keyed(secret, {"authorization": f"Bearer {secret}"})

    async def verify_credential(self, secret: str) -> None:
        await self.with_credential(secret)._http.get_json("/models")  # the model list: authenticated, free

    async def complete(self, request: CompletionRequest) -> Completion:
        body = await self._http.post_json("/messages", request_body(self._spec, request))
        try:
            return read_message(body, self._served_by)
        except SHAPE_FAILURES as exc:
            raise self._bad(f"sent an invalid message ({exc})") from None

    async def count_tokens(self, request: CompletionRequest) -> int | None:
        """Anthropic's own count (``/v1/messages/count_tokens``)."""
        body = await self._http.post_json("/messages/count_tokens", count_tokens_body(self._spec, request))
        try:
            return read_count(body)
        except SHAPE_FAILURES as exc:
            raise self._bad(f"sent an invalid token count ({exc})") from None

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[UpstreamEvent, None]:
        body = request_body(self._spec, request)
        body["stream"] = True
        state = StreamState()
        forwarded = self._forward(
            self._http.stream("/messages", body),
            lambda sse: self._read(sse, state),
            lambda error: self._partial(error, request, state),
        )
        async with contextlib.aclosing(forwarded) as events:  # a consumer leaving early closes the upstream
            async for event in events:
                yield event
        if not state.complete:
            raise self._partial(self._bad("ended the stream before the answer was finished"), request, state)
        yield StreamEnd(state.completion(self._served_by))

    def _read(self, sse: SSEEvent, state: StreamState) -> list[StreamEvent]:
        if state.stopped or sse.event == "ping":
            return []  # after message_stop: read to the end anyway, so the connection goes back to the pool
        if sse.event == "error":  # an error event inside a 200 stream, named by its type (overloaded_error...)
            message, error_type = error_details(sse.data, self._secret)
            raise error_for_type(error_type, message=message, provider="anthropic", model=self._spec.name)
        delta = read_event(orjson.loads(sse.data), state)
        return [] if delta is None else [delta]
