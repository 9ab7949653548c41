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

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

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
    TokenUsage,
    ToolCall,
)
from domain.llm.stream import ModelStream
from interfaces.http.cache_control import cache_policy
from interfaces.http.compat.auth import container_of
from interfaces.http.compat.errors import JsonResponse, RequestBodyInvalid
from interfaces.http.context import request_id_var
from interfaces.http.idempotency import REPLAYED_HEADER, as_response, fingerprint, stored_json
from interfaces.http.lifecycle import cut_on_shutdown
from interfaces.http.sse import SSE, Events, EventStreamResponse

if TYPE_CHECKING:
    from interfaces.container import Container
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
    # An empty key is a malformed key (refused by the guard), not no key.
    keyed = (
        None if key is None else IdempotentRequest(command.principal.user_id, key, fingerprint(request.url.path, body))
    )
    guard: IdempotencyGuard = container.idempotency()
    if stream:
        opened = await guard.stream(keyed, partial(container.stream_completion().open, command), _stored)
        if isinstance(opened, StoredResponse):  # a stream's replay streams its stored answer again
            replay = ModelStream.replay(completion_from_json(opened.body))
            headers = render.headers | {REPLAYED_HEADER: "true"}
            return EventStreamResponse(render.streamed(replay), stream=None, headers=headers)
        frames = render.streamed(cut_on_shutdown(opened, container.shutdown()))
        return EventStreamResponse(frames, stream=opened, headers=render.headers)
    if keyed is None:
        answered = await container.create_completion().execute(command)
        return JsonResponse(render.whole(answered.completion), headers=render.headers)
    stored, replayed = await guard.run(keyed, partial(_whole, container, command, render))
    return as_response(stored, replayed=replayed, headers=render.headers)


async def _whole(container: Container, command: CompletionCommand, render: Renderer) -> StoredResponse:
    answered = await container.create_completion().execute(command)
    return stored_json(200, render.whole(answered.completion))


def _stored(event: StreamEvent) -> StoredResponse | None:
    """What an idempotent replay of a stream answers: its final answer, when the stream ended whole."""
    if isinstance(event, StreamEnd) and event.completion.finish_reason not in (
        FinishReason.ERROR,
        FinishReason.CANCELLED,
    ):
        return StoredResponse(status=200, media_type=SSE, body=completion_to_json(event.completion))
    return None


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
