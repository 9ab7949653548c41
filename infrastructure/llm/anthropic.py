"""The Anthropic Messages adapter, direct (the default ``client``).

It speaks ``anthropic_format`` over ``wire.UpstreamHTTP`` (pooled ``aiohttp``, ``orjson``): no SDK on the request
path. ``infrastructure.llm.anthropic_sdk`` is the same adapter on the official SDK. Every failure is an
``UpstreamError``, raised ``from None``; the router's resilience layer decides on retries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from domain.llm.model import (
    Completion,
    CompletionRequest,
    FinishReason,
    ModelSpec,
    ServedBy,
    StreamEnd,
    StreamEvent,
    TextDelta,
    with_partial,
)
from domain.llm.ports import LLMProvider
from domain.llm.tokens import estimated_usage
from domain.shared.errors import UpstreamBadResponse, UpstreamError
from infrastructure.llm.anthropic_format import (
    ANTHROPIC_BASE_URL,
    ANTHROPIC_VERSION,
    SHAPE_FAILURES,
    StreamState,
    read_event,
    read_message,
    request_body,
)
from infrastructure.llm.openai import joined
from infrastructure.llm.upstream_errors import error_for_type
from infrastructure.llm.wire import DEFAULT_MAX_RESPONSE_BYTES, UpstreamHTTP, error_details


class AnthropicBase(LLMProvider):
    """What both Anthropic adapters share: the deployment, its key (never shown) and how a failure is reported."""

    def __init__(self, spec: ModelSpec, *, api_key: str) -> None:
        self._spec = spec
        self._secret = api_key
        self._served_by = ServedBy(
            model=spec.name, provider=spec.provider, upstream_model=spec.upstream_model, variant=spec.variant
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self._spec.name!r}, upstream_model={self._spec.upstream_model!r})"

    def _partial(self, error: UpstreamError, request: CompletionRequest, state: StreamState) -> UpstreamError:
        if state.pieces:
            usage = estimated_usage(request, state.text, input_tokens=state.input_tokens)
            partial = Completion(
                content=state.text, finish_reason=FinishReason.ERROR, usage=usage, served_by=self._served_by
            )
            with_partial(error, partial)
        return error

    def _bad(self, what: str) -> UpstreamBadResponse:
        return UpstreamBadResponse(f"anthropic {what}", provider="anthropic", model=self._spec.name)


class AnthropicProvider(AnthropicBase):
    """One Anthropic deployment, on its own pool of keep-alive connections."""

    def __init__(self, spec: ModelSpec, *, api_key: str, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        super().__init__(spec, api_key=api_key)
        self._http = UpstreamHTTP(
            (spec.base_url or ANTHROPIC_BASE_URL).rstrip("/") + "/v1",
            # As the official SDK (2.x) sends it.
            headers={"authorization": f"Bearer {api_key}", "anthropic-version": ANTHROPIC_VERSION},
            provider="anthropic",
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
        body = await self._http.post_json("/messages", request_body(self._spec, request))
        try:
            return read_message(body, self._served_by)
        except SHAPE_FAILURES as exc:
            raise self._bad(f"sent an invalid message ({exc})") from None

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        body = request_body(self._spec, request)
        body["stream"] = True
        state = StreamState()
        batches = self._http.stream("/messages", body)
        text: list[str] = []  # the text deltas of one network read, forwarded together
        try:
            async for batch in batches:
                for sse in batch:
                    if state.stopped:
                        continue  # read to the end, so the connection goes back to the pool
                    if sse.event == "ping":
                        continue
                    if sse.event == "error":
                        raise self._stream_error(sse.data)
                    delta = read_event(orjson.loads(sse.data), state)
                    if isinstance(delta, TextDelta):
                        text.append(delta.text)
                    elif delta is not None:
                        if text:
                            yield joined(text)
                        yield delta
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
        if not state.complete:
            raise self._partial(self._bad("ended the stream before the answer was finished"), request, state)
        yield StreamEnd(state.completion(self._served_by))

    def _stream_error(self, data: bytes) -> UpstreamError:
        """An ``event: error`` inside a 200 stream, named by its type (``overloaded_error``, ...)."""
        message, error_type = error_details(data, self._secret)
        return error_for_type(error_type, message=message, provider="anthropic", model=self._spec.name)
