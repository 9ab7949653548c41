from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from application.chat.create_conversation import CreateConversation, CreateConversationCommand
from application.chat.delete_conversation import DeleteConversation, DeleteConversationCommand
from application.chat.exchange import PostMessageCommand
from application.chat.get_conversation import GetConversation, GetConversationCommand
from application.chat.list_conversations import ListConversations, ListConversationsCommand
from application.chat.post_message import PostMessage
from application.chat.stream_message import MessageStream, StreamMessage, StreamOutcome, close_stream
from application.chat.update_conversation import UpdateConversation, UpdateConversationCommand
from application.idempotency.guard import IdempotencyGuard, IdempotentRequest
from domain.idempotency.model import StoredResponse
from domain.shared.errors import DomainError, ShuttingDown
from interfaces.container import Container
from interfaces.http.cache_control import CACHE_HEADER, cache_policy
from interfaces.http.context import request_id_var
from interfaces.http.conversations.schemas import (
    ConversationDetailResponse,
    ConversationPageResponse,
    ConversationResponse,
    CreateConversationRequest,
    MessageResponse,
    PostMessageRequest,
    PostMessageResponse,
    StreamDeltaEvent,
    UpdateConversationRequest,
)
from interfaces.http.dependencies import provided
from interfaces.http.errors import PROBLEM_JSON, problem_responses, status_for
from interfaces.http.idempotency import IdempotencyKey, as_response, fingerprint, stored_json
from interfaces.http.lifecycle import Shutdown, cut_on_shutdown
from interfaces.http.security import CurrentPrincipal
from interfaces.http.sse import SSE_HEADERS, sse_event

router = APIRouter(prefix="/conversations", tags=["conversations"])
UPSTREAM_ERRORS = (502, 503, 504)
Settle = Callable[[StoredResponse | None], Awaitable[None]]
# Releasing an idempotency key after a client left must outlive the cancelled request; strong references live here.
_BACKGROUND: set[asyncio.Task[None]] = set()


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(400, 401, 403, 413, 422),
    summary="Start a conversation",
)
async def create_conversation(
    body: CreateConversationRequest,
    principal: CurrentPrincipal,
    use_case: CreateConversation = Depends(provided(Container.create_conversation)),
) -> ConversationResponse:
    command = CreateConversationCommand(
        principal=principal, title=body.title, model=body.model, system_prompt=body.system_prompt
    )
    return ConversationResponse.of(await use_case.execute(command))


@router.get("", responses=problem_responses(401, 403, 422), summary="The caller's conversations, newest first")
async def list_conversations(
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    use_case: ListConversations = Depends(provided(Container.list_conversations)),
) -> ConversationPageResponse:
    page = await use_case.execute(ListConversationsCommand(principal=principal, limit=limit, cursor=cursor))
    return ConversationPageResponse(
        items=[ConversationResponse.of(c) for c in page.items], next_cursor=page.next_cursor
    )


@router.get("/{conversation_id}", responses=problem_responses(401, 403, 404, 422), summary="A conversation")
async def get_conversation(
    conversation_id: uuid.UUID,
    principal: CurrentPrincipal,
    use_case: GetConversation = Depends(provided(Container.get_conversation)),
) -> ConversationDetailResponse:
    found = await use_case.execute(GetConversationCommand(principal=principal, conversation_id=conversation_id))
    return ConversationDetailResponse(
        **ConversationResponse.of(found.conversation).model_dump(),
        messages=[MessageResponse.of(m) for m in found.messages],
    )


@router.patch(
    "/{conversation_id}", responses=problem_responses(400, 401, 403, 404, 413, 422), summary="Rename or reconfigure"
)
async def update_conversation(
    conversation_id: uuid.UUID,
    body: UpdateConversationRequest,
    principal: CurrentPrincipal,
    use_case: UpdateConversation = Depends(provided(Container.update_conversation)),
) -> ConversationResponse:
    command = UpdateConversationCommand(
        principal=principal,
        conversation_id=conversation_id,
        title=body.title,
        model=body.model,
        system_prompt=body.system_prompt,
        clear_system_prompt="system_prompt" in body.model_fields_set and body.system_prompt is None,
    )
    return ConversationResponse.of(await use_case.execute(command))


@router.delete(
    "/{conversation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
    summary="Delete a conversation and its messages",
)
async def delete_conversation(
    conversation_id: uuid.UUID,
    principal: CurrentPrincipal,
    use_case: DeleteConversation = Depends(provided(Container.delete_conversation)),
) -> None:
    await use_case.execute(DeleteConversationCommand(principal=principal, conversation_id=conversation_id))


STREAM_DOC = {
    200: {
        "description": (
            "With `stream: true` or `Accept: text/event-stream`: Server-Sent Events. `delta` events carry text as the "
            'model produces it (`{"text": ...}`); then one `done` event with the stored messages and usage (the '
            "same body as the 201 answer), or one `error` event with a problem body and the partial message stored."
        ),
        "content": {"text/event-stream": {"schema": StreamDeltaEvent.model_json_schema()}},  # inline: no dangling ref
    }
}


@router.post(
    "/{conversation_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=PostMessageResponse,
    responses={**STREAM_DOC, **problem_responses(400, 401, 403, 404, 409, 413, 422, 429, *UPSTREAM_ERRORS)},
    summary="Send a message and get the model's answer, whole or streamed",
)
async def post_message(
    request: Request,
    conversation_id: uuid.UUID,
    body: PostMessageRequest,
    principal: CurrentPrincipal,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    accept: Annotated[str, Header()] = "",
    cache_control: Annotated[
        str | None, Header(description="`no-store`: bypass the response cache; `max-age=N`: use it")
    ] = None,
    use_case: PostMessage = Depends(provided(Container.post_message)),
    stream_use_case: StreamMessage = Depends(provided(Container.stream_message)),
    guard: IdempotencyGuard = Depends(provided(Container.idempotency)),
) -> PostMessageResponse | Response:
    command = PostMessageCommand(
        principal=principal,
        conversation_id=conversation_id,
        content=body.content,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
        request_id=request_id_var.get(),
        cache=cache_policy(cache_control),
    )
    streaming = body.stream or "text/event-stream" in accept
    if idempotency_key is None:
        if streaming:
            stream = await stream_use_case.open(command)  # errors before the first token are ordinary problems
            headers = {**SSE_HEADERS, CACHE_HEADER: stream.cache_status.value}
            return StreamingResponse(
                _sse(stream, request.app.state.shutdown), media_type="text/event-stream", headers=headers
            )
        result = await use_case.execute(command)
        response.headers[CACHE_HEADER] = result.cache_status.value
        return PostMessageResponse.of(result)

    keyed = IdempotentRequest(principal.user_id, idempotency_key, fingerprint(request.url.path, body))
    if not streaming:

        async def answer() -> StoredResponse:
            return stored_json(201, PostMessageResponse.of(await use_case.execute(command)))

        stored, replayed = await guard.run(keyed, answer)
        return as_response(stored, replayed=replayed)
    replay = await guard.reserve(keyed)
    if replay is not None:  # a streamed request's replay is its stored final result, as JSON
        return as_response(replay, replayed=True)
    try:
        stream = await stream_use_case.open(command)
    except BaseException:
        await guard.release(keyed)
        raise

    async def settle(outcome: StoredResponse | None) -> None:
        await (guard.complete(keyed, outcome) if outcome is not None else guard.release(keyed))

    headers = {**SSE_HEADERS, CACHE_HEADER: stream.cache_status.value}
    return StreamingResponse(
        _sse(stream, request.app.state.shutdown, settle), media_type="text/event-stream", headers=headers
    )


async def _sse(stream: MessageStream, shutdown: Shutdown, settle: Settle | None = None) -> AsyncIterator[bytes]:
    """The SSE frames of a message stream. With ``settle``, the final result is stored for idempotent replays, or
    the key released when no result came (the client left, the server is stopping, or storing failed)."""
    settled = settle is None
    events = cut_on_shutdown(stream, shutdown)
    try:
        async for event in events:
            if isinstance(event, StreamOutcome):
                frame, stored = _final_event(event)
                if not settled:
                    settled = True
                    await settle(stored)  # type: ignore[misc]
                yield frame
                return
            yield sse_event("delta", StreamDeltaEvent(text=event.text).model_dump())
    except ShuttingDown:  # the server is about to stop: end here; the partial answer is stored
        yield sse_event("error", _shutting_down())
    except DomainError as exc:  # storing the answer failed, e.g. the conversation was deleted meanwhile
        yield sse_event("error", _problem(exc))
    finally:
        try:
            await close_stream(events)  # at once: a stream left early closes the upstream call and stores what it had
        finally:
            if not settled and settle is not None:
                task = asyncio.ensure_future(settle(None))  # shielded from the cancelled request
                _BACKGROUND.add(task)
                task.add_done_callback(_BACKGROUND.discard)


def _final_event(outcome: StreamOutcome) -> tuple[bytes, StoredResponse]:
    response = PostMessageResponse.of(outcome)
    if outcome.error is None:
        return sse_event("done", response.model_dump(mode="json")), stored_json(201, response)
    problem = _problem(outcome.error) | {"result": response.model_dump(mode="json")}
    stored = stored_json(status_for(outcome.error), problem | {"instance": _instance(outcome)}, PROBLEM_JSON)
    return sse_event("error", problem), stored


def _instance(outcome: StreamOutcome) -> str:
    return f"/api/v1/conversations/{outcome.user_message.conversation_id}/messages"


def _problem(exc: DomainError) -> dict[str, object]:
    return {
        "type": "urn:switchboard:problem:" + exc.code,
        "title": exc.title,
        "status": status_for(exc),
        "detail": exc.detail,
        "code": exc.code,
        "request_id": request_id_var.get(),
    }


def _shutting_down() -> dict[str, object]:
    return {
        "type": "urn:switchboard:problem:shutting_down",
        "title": "Service shutting down",
        "status": 503,
        "detail": "the server is restarting; the partial answer was stored, send the message again",
        "code": "shutting_down",
        "request_id": request_id_var.get(),
    }
