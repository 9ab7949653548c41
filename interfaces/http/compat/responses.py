"""OpenAI's Responses API under ``/v1/responses``, answered by any chat model of the catalog (plain Starlette
handlers: see ``interfaces.http.compat.completions`` for why). Parse, call the use case, render: nothing else.

An ``Idempotency-Key`` makes a response run at most once, as on chat completions: a whole one's replay is the same
bytes, a streamed one's streams the events of the response it ended with again (same id, same output), and a
background one's answers the queued response it created.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from functools import partial

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from application.idempotency.guard import IdempotentRequest
from application.responses.prepare import ResponseCommand
from application.responses.stream_response import ResponseOutcome, ResponseStream
from domain.auth.model import Principal
from domain.idempotency.model import StoredResponse
from domain.llm.model import TextDelta, ToolCallDelta
from domain.responses.errors import response_not_found
from domain.responses.model import ResponseStatus, parse_public_id
from domain.shared.errors import RuleViolation
from interfaces.container import Container
from interfaces.http.cache_control import cache_policy
from interfaces.http.compat.auth import compat_principal, container_of
from interfaces.http.compat.completions import read_body
from interfaces.http.compat.errors import JsonResponse
from interfaces.http.compat.responses_events import background_events, replayed_events, response_events
from interfaces.http.compat.responses_schemas import CreateResponseRequest, InputTokensRequest
from interfaces.http.compat.responses_wire import deleted_body, input_items_body, response_body
from interfaces.http.context import request_id_var
from interfaces.http.idempotency import REPLAYED_HEADER, as_response, fingerprint, stored_json
from interfaces.http.lifecycle import cut_on_shutdown
from interfaces.http.sse import SSE, SSE_HEADERS, EventStreamResponse

FOLLOW_SECONDS = 0.2  # how often a background response's stream reads it again


def _command(request: Request, principal: Principal, body: CreateResponseRequest) -> ResponseCommand:
    return ResponseCommand(
        principal=principal,
        request=body.to_domain(),
        instructions=body.instructions,
        previous_response_id=body.previous_id(),
        store=body.store is not False,
        settings_json=body.settings_json(),
        request_id=request_id_var.get(),
        cache=cache_policy(request.headers.get("cache-control", "")),
        file_search=body.file_search(),
    )


async def create_response(request: Request) -> Response:
    principal = await compat_principal(request)
    body = await read_body(request, CreateResponseRequest)
    command = _command(request, principal, body)
    container = container_of(request)
    key = request.headers.get("idempotency-key")
    # An empty key is a malformed key (refused by the guard), not no key.
    keyed = None if key is None else IdempotentRequest(principal.user_id, key, fingerprint(request.url.path, body))
    if body.stream and not body.background:
        return await _streamed(container, command, keyed)
    run = partial(_background if body.background else _whole, container, command)
    stored, replayed = (await run(), False) if keyed is None else await container.idempotency().run(keyed, run)
    if body.stream:  # a streamed background response: its events as it runs (a replay: the same response's)
        response_id = parse_public_id(orjson.loads(stored.body)["id"])
        assert response_id is not None
        return _followed(container, principal, response_id, after=-1, replayed=replayed)
    return as_response(stored, replayed=replayed)


async def _streamed(container: Container, command: ResponseCommand, keyed: IdempotentRequest | None) -> Response:
    """A streamed response; with a key, its replay streams the events of the response it ended with again."""
    opened: list[ResponseStream] = []

    async def open_stream() -> ResponseStream:
        opened.append(await container.stream_response().open(command))
        return opened[0]

    stream = await container.idempotency().stream(keyed, open_stream, _stored_events)
    if isinstance(stream, StoredResponse):
        return Response(stream.body, media_type=SSE, headers=SSE_HEADERS | {REPLAYED_HEADER: "true"})
    events = response_events(cut_on_shutdown(stream, container.shutdown()), opened[0].record)
    return EventStreamResponse(events, stream=stream, headers={})


def _stored_events(item: TextDelta | ToolCallDelta | ResponseOutcome) -> StoredResponse | None:
    """What a replay of a streamed response answers: its events, once it ended completed or incomplete (a failed
    or cut stream frees its key for the retry)."""
    if not isinstance(item, ResponseOutcome) or item.error is not None:
        return None
    if item.record.status not in (ResponseStatus.COMPLETED, ResponseStatus.INCOMPLETE):
        return None
    return StoredResponse(status=200, media_type=SSE, body=replayed_events(item.record).decode())


async def _whole(container: Container, command: ResponseCommand) -> StoredResponse:
    return stored_json(200, response_body(await container.create_response().execute(command)))


async def _background(container: Container, command: ResponseCommand) -> StoredResponse:
    return stored_json(200, response_body(await container.start_background_response().execute(command)))


def _response_id(request: Request) -> uuid.UUID:
    text: str = request.path_params["response_id"]
    found = parse_public_id(text)
    if found is None:
        raise response_not_found(text)
    return found


async def get_response(request: Request) -> Response:
    principal = await compat_principal(request)
    container = container_of(request)
    record = await container.get_response().execute(principal, _response_id(request))
    if request.query_params.get("stream", "").lower() != "true":
        return JsonResponse(response_body(record))
    after = request.query_params.get("starting_after", "-1")
    if not after.lstrip("-").isdigit():
        raise RuleViolation("starting_after must be a sequence number")
    if record.background:
        return _followed(container, principal, record.id, after=int(after))
    frames = replayed_events(record).split(b"\n\n")
    return Response(b"".join(f + b"\n\n" for f in frames[int(after) + 1 :] if f), media_type=SSE, headers=SSE_HEADERS)


def _followed(
    container: Container, principal: Principal, response_id: uuid.UUID, *, after: int, replayed: bool = False
) -> Response:
    """A background response's events after ``after``, as it runs: its stored state read again every
    ``FOLLOW_SECONDS`` until it finished (the client leaving stops the reading, never the response)."""

    async def frames() -> AsyncIterator[bytes]:
        sent = after
        while True:
            record = await container.get_response().execute(principal, response_id)
            events = background_events(record)
            if len(events) > sent + 1:
                yield b"".join(events[sent + 1 :])
                sent = len(events) - 1
            if record.status.finished:
                return
            await asyncio.sleep(FOLLOW_SECONDS)

    headers = SSE_HEADERS | ({REPLAYED_HEADER: "true"} if replayed else {})
    return StreamingResponse(frames(), media_type=SSE, headers=headers)


async def cancel_response(request: Request) -> Response:
    principal = await compat_principal(request)
    record = await container_of(request).cancel_response().execute(principal, _response_id(request))
    return JsonResponse(response_body(record))


async def delete_response(request: Request) -> Response:
    principal = await compat_principal(request)
    await container_of(request).delete_response().execute(principal, _response_id(request))
    return JsonResponse(deleted_body(request.path_params["response_id"]))


async def list_input_items(request: Request) -> Response:
    principal = await compat_principal(request)
    query = request.query_params
    order, limit = query.get("order", "desc"), query.get("limit", "20")
    if order not in ("asc", "desc") or not limit.isdigit() or not 1 <= int(limit) <= 100:
        raise RuleViolation("order must be asc or desc, and limit a number from 1 to 100")
    record = await container_of(request).get_response().execute(principal, _response_id(request))
    return JsonResponse(input_items_body(record, order=order, after=query.get("after"), limit=int(limit)))


async def count_input_tokens(request: Request) -> Response:
    principal = await compat_principal(request)
    body = await read_body(request, InputTokensRequest)
    tokens = await container_of(request).count_input_tokens().execute(_command(request, principal, body))
    return JsonResponse({"object": "response.input_tokens", "input_tokens": tokens})
