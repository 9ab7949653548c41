"""What both compatible completion endpoints do once the body is read: run the call, whole or streamed, at most once
per ``Idempotency-Key``, and answer in the API's own shape.

The endpoints are plain Starlette handlers, not FastAPI routes: on the hot path FastAPI's dependency solving (and a
thread-pool hop for each ``Provide`` marker) cost more CPU than the whole upstream call (bench/PROFILE.md). Use
cases are taken from the container on each request, so a test's overrides still apply.

Idempotency follows the native endpoints' rules (``application.idempotency.guard``): a replay of a whole answer is
the same bytes with ``Idempotent-Replayed: true``; a replay of a streamed one streams the stored final answer again
(the SDKs that asked for a stream can only read a stream); the same key with another body is 422, a duplicate still
running 409. A stream that fails or is cut releases its key, so the client may retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from application.compat.create_completion import CompletionCommand
from application.idempotency.guard import IdempotencyGuard, IdempotentRequest
from domain.auth.model import Principal
from domain.idempotency.model import StoredResponse
from domain.llm.model import (
    Completion,
    CompletionRequest,
    FinishReason,
    ServedBy,
    StreamEnd,
    StreamEvent,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
)
from interfaces.http.cache_control import cache_policy
from interfaces.http.compat.auth import container_of
from interfaces.http.compat.errors import JsonResponse, RequestBodyInvalid
from interfaces.http.context import request_id_var
from interfaces.http.idempotency import REPLAYED_HEADER, as_response, fingerprint, stored_json
from interfaces.http.lifecycle import cut_on_shutdown
from interfaces.http.sse import SSE_HEADERS

STREAM = "text/event-stream"
# Settling an idempotency key after a client left must outlive the cancelled request; strong references live here.
_BACKGROUND: set[asyncio.Task[None]] = set()

Events = AsyncIterator[StreamEvent]
M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, model: type[M]) -> M:
    """The body, validated by the API's schema straight from its bytes (a 400 in the API's shape when invalid)."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestBodyInvalid(exc.errors(include_url=False)) from None


@dataclass(frozen=True)
class Renderer:
    """How one API shows an answer: whole (a JSON body) and streamed (SSE frames, ending the stream themselves)."""

    whole: Callable[[Completion], dict[str, Any]]
    streamed: Callable[[Events], AsyncIterator[bytes]]
    headers: dict[str, str]


def command_for(request: Request, principal: Principal, completion: CompletionRequest) -> CompletionCommand:
    return CompletionCommand(
        principal=principal,
        request=completion,
        request_id=request_id_var.get(),
        cache=cache_policy(request.headers.get("cache-control", "")),
    )


async def answer(
    request: Request, command: CompletionCommand, *, stream: bool, body: BaseModel, render: Renderer
) -> Response:
    container = container_of(request)
    key = request.headers.get("idempotency-key")
    if key is None:
        if stream:
            events = await container.stream_completion().open(command)  # a failure before any output: an error
            return _sse(render.streamed(cut_on_shutdown(events, container.shutdown())), render.headers)
        completion = await container.create_completion().execute(command)
        return JsonResponse(render.whole(completion), headers=render.headers)

    guard: IdempotencyGuard = container.idempotency()
    keyed = IdempotentRequest(command.principal.user_id, key, fingerprint(request.url.path, body))
    if not stream:

        async def run() -> StoredResponse:
            completion = await container.create_completion().execute(command)
            return stored_json(200, render.whole(completion))

        stored, was_replayed = await guard.run(keyed, run)
        return as_response(stored, replayed=was_replayed, headers=render.headers)

    replay = await guard.reserve(keyed)
    if replay is not None:
        replayed = {**render.headers, REPLAYED_HEADER: "true"}
        return _sse(render.streamed(_replayed(completion_from_json(replay.body))), replayed)
    try:
        opened = await container.stream_completion().open(command)
    except BaseException:
        await guard.release(keyed)
        raise
    recording = _Recording(opened)
    frames = render.streamed(cut_on_shutdown(recording, container.shutdown()))
    return _sse(_settling(frames, recording, guard, keyed), render.headers)


def _sse(frames: AsyncIterator[bytes], headers: dict[str, str]) -> StreamingResponse:
    return StreamingResponse(frames, media_type=STREAM, headers=SSE_HEADERS | headers)


class _Recording:
    """A stream's events passed on unchanged, keeping its final answer (for an idempotent replay)."""

    def __init__(self, events: Events) -> None:
        self._events = events
        self.final: Completion | None = None

    def __aiter__(self) -> _Recording:
        return self

    async def __anext__(self) -> StreamEvent:
        event = await anext(self._events)
        if isinstance(event, StreamEnd):
            self.final = event.completion
        return event

    async def aclose(self) -> None:
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()


async def _settling(
    frames: AsyncIterator[bytes], recording: _Recording, guard: IdempotencyGuard, keyed: IdempotentRequest
) -> AsyncIterator[bytes]:
    """The frames; once they end, however they end, the key keeps the final answer or is released."""
    try:
        async for frame in frames:
            yield frame
    finally:
        final = recording.final
        if final is not None and final.finish_reason not in (FinishReason.ERROR, FinishReason.CANCELLED):
            stored = StoredResponse(status=200, media_type=STREAM, body=completion_to_json(final))
            work = guard.complete(keyed, stored)
        else:
            work = guard.release(keyed)
        task = asyncio.ensure_future(work)  # shielded from a cancelled request
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)


async def _replayed(completion: Completion) -> Events:
    """A stored answer as the events of a stream: its text, its tool calls, its end."""
    if completion.content:
        yield TextDelta(completion.content)
    for index, call in enumerate(completion.tool_calls):
        yield ToolCallDelta(index=index, id=call.id, name=call.name, arguments=call.arguments)
    yield StreamEnd(completion)


def completion_to_json(completion: Completion) -> str:
    usage, served = completion.usage, completion.served_by
    return orjson.dumps(
        {
            "content": completion.content,
            "finish_reason": completion.finish_reason.value,
            "usage": [usage.input_tokens, usage.output_tokens, usage.cached_tokens],
            "served_by": [served.model, served.provider, served.upstream_model],
            "tool_calls": [[c.id, c.name, c.arguments] for c in completion.tool_calls],
            "stop_sequence": completion.stop_sequence,
        }
    ).decode()


def completion_from_json(text: str) -> Completion:
    value = orjson.loads(text)
    input_tokens, output_tokens, cached_tokens = value["usage"]
    model, provider, upstream_model = value["served_by"]
    return Completion(
        content=value["content"],
        finish_reason=FinishReason(value["finish_reason"]),
        usage=TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens, cached_tokens=cached_tokens),
        served_by=ServedBy(model=model, provider=provider, upstream_model=upstream_model),
        tool_calls=tuple(ToolCall(id=i, name=n, arguments=a) for i, n, a in value["tool_calls"]),
        stop_sequence=value["stop_sequence"],
    )
