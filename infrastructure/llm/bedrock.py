"""The AWS Bedrock adapter: the Converse and ConverseStream APIs, direct on ``wire.UpstreamHTTP``, every request
signed with SigV4 by botocore's signer (never by hand), credentials from the standard AWS chain.

``POST {base}/model/{modelId}/converse`` answers JSON; ``.../converse-stream`` answers in the AWS event-stream
binary framing, read by botocore's ``EventStreamBuffer`` into the same events the SSE streams give (the event type
as the name, the JSON payload as the data). An exception inside the stream (throttling, a model error) is an
``UpstreamError`` like any other.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping
from typing import Any
from urllib.parse import quote

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer, ParserError

from domain.llm.model import (
    Completion,
    CompletionRequest,
    ModelSpec,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UpstreamEvent,
)
from domain.llm.ports import LLMProvider
from domain.llm.tokens import estimated_usage
from domain.shared.errors import UpstreamError
from infrastructure.llm.adapter import DeploymentAdapter
from infrastructure.llm.bedrock_format import StreamState, read_response, read_usage, request_body, stop
from infrastructure.llm.transport import Transport
from infrastructure.llm.upstream_errors import SHAPE_FAILURES, error_for_type
from infrastructure.llm.wire import DEFAULT_MAX_RESPONSE_BYTES, SSEEvent, UpstreamHTTP

EVENT_STREAM = "application/vnd.amazon.eventstream"
# ConverseStream's exceptions, in the vocabulary ``error_for_type`` knows.
_EXCEPTIONS = {
    "throttlingException": "rate_limit_error",
    "validationException": "invalid_request_error",
    "serviceUnavailableException": "overloaded_error",
    "internalServerException": "api_error",
    "modelStreamErrorException": "api_error",
}


def bedrock_base_url(region: str) -> str:
    return f"https://bedrock-runtime.{region}.amazonaws.com"


class EventStreamDecoder:
    """AWS event-stream messages (botocore's parser checks the framing and both CRCs) as events: an ``event``
    message is named by its ``:event-type``, an exception by ``exception:<its type>``."""

    def __init__(self) -> None:
        self._buffer = EventStreamBuffer()
        self._broken: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events completed by ``chunk``; a broken frame is a bad response (like unreadable JSON), raised once
        the events before it have been handed on."""
        if self._broken is not None:
            raise ValueError(self._broken)
        self._buffer.add_data(chunk)
        events: list[SSEEvent] = []
        try:
            self._read(events)
        except ParserError as exc:
            self._broken = f"a broken event-stream message ({type(exc).__name__})"
            if not events:
                raise ValueError(self._broken) from None
        return events

    def _read(self, events: list[SSEEvent]) -> None:
        for message in self._buffer:
            headers = message.headers
            if headers.get(":message-type") == "event":
                events.append(SSEEvent(str(headers.get(":event-type")), message.payload))
            else:
                kind = headers.get(":exception-type") or headers.get(":error-code") or "error"
                events.append(SSEEvent(f"exception:{kind}", message.payload))


def sigv4_signer(credentials: Credentials, region: str) -> Any:
    """Signs each request for the ``bedrock`` service with the current (possibly refreshed) credentials."""

    def sign(url: str, payload: bytes) -> Mapping[str, str]:
        request = AWSRequest(method="POST", url=url, data=payload, headers={"content-type": "application/json"})
        SigV4Auth(credentials.get_frozen_credentials(), "bedrock", region).add_auth(request)
        return {k: v for k, v in request.headers.items() if k.lower() != "content-type"}

    return sign


class BedrockProvider(DeploymentAdapter, LLMProvider):
    """One Bedrock model, on its own pool of keep-alive connections."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        transport: Transport,
        credentials: Credentials,
        region: str,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__(spec, transport=transport, api_key=credentials.secret_key)
        self._model_path = f"/model/{quote(spec.upstream_model, safe='')}"
        self._http = UpstreamHTTP(
            transport.base_url or bedrock_base_url(region),
            headers={},
            provider=spec.provider,
            model=spec.name,
            timeout_seconds=transport.timeout_seconds,
            connect_timeout_seconds=transport.connect_timeout_seconds,
            secret=credentials.secret_key,
            max_response_bytes=max_response_bytes,
            signer=sigv4_signer(credentials, region),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def complete(self, request: CompletionRequest) -> Completion:
        body = await self._http.post_json(f"{self._model_path}/converse", request_body(self._spec, request))
        try:
            return read_response(body, self._served_by)
        except SHAPE_FAILURES as exc:
            raise self._bad(f"sent an invalid response ({exc})") from None

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[UpstreamEvent, None]:
        state = StreamState()
        batches = self._http.stream(
            f"{self._model_path}/converse-stream",
            request_body(self._spec, request),
            decoder=EventStreamDecoder(),
            accept=EVENT_STREAM,
        )
        forwarded = self._forward(batches, lambda e: self._read(e, state), lambda x: self._partial(x, request, state))
        async with contextlib.aclosing(forwarded) as events:  # a consumer leaving early closes the upstream
            async for event in events:
                yield event
        if state.finish is None or state.usage is None:
            raise self._partial(self._bad("ended the stream before the answer was finished"), request, state)
        yield StreamEnd(state.completion(self._served_by))

    def _read(self, event: SSEEvent, state: StreamState) -> list[StreamEvent]:
        data = orjson.loads(event.data) if event.data else {}
        kind = event.event or ""
        if kind.startswith("exception:"):
            message = str(data.get("message", "")) if isinstance(data, dict) else ""
            error_type = _EXCEPTIONS.get(kind.removeprefix("exception:"), "api_error")
            raise error_for_type(error_type, message=message, provider=self._spec.provider, model=self._spec.name)
        return _stream_event(kind, data, state)

    def _partial(self, error: UpstreamError, request: CompletionRequest, state: StreamState) -> UpstreamError:
        usage = estimated_usage(request, state.text) if state.pieces else None
        return self._with_partial(error, request, state.text, usage)


def _stream_event(kind: str, data: Any, state: StreamState) -> list[StreamEvent]:
    """What one ConverseStream event adds: a text or tool-call delta, or news for ``state``."""
    if kind == "contentBlockStart" and "toolUse" in data["start"]:
        use = data["start"]["toolUse"]
        state.calls[data["contentBlockIndex"]] = [str(use["toolUseId"]), str(use["name"])]
        return [ToolCallDelta(index=len(state.calls) - 1, id=str(use["toolUseId"]), name=str(use["name"]))]
    if kind == "contentBlockDelta":
        delta = data["delta"]
        if isinstance(delta.get("text"), str):
            state.pieces.append(delta["text"])
            return [TextDelta(delta["text"])] if delta["text"] else []
        if "toolUse" in delta:
            piece = str(delta["toolUse"]["input"])
            state.calls[data["contentBlockIndex"]].append(piece)
            return [ToolCallDelta(index=list(state.calls).index(data["contentBlockIndex"]), arguments=piece)]
    elif kind == "messageStop":
        state.finish = stop(data["stopReason"])
    elif kind == "metadata":
        state.usage = read_usage(data["usage"])
    return []
