from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from application.chat.create_conversation import CreateConversation, CreateConversationCommand
from application.chat.delete_conversation import DeleteConversation, DeleteConversationCommand
from application.chat.exchange import PostMessageCommand
from application.chat.get_conversation import GetConversation, GetConversationCommand
from application.chat.list_conversations import ListConversations, ListConversationsCommand
from application.chat.post_message import PostMessage
from application.chat.stream_message import StreamMessage, StreamOutcome
from application.chat.update_conversation import UpdateConversation, UpdateConversationCommand
from application.idempotency.guard import IdempotencyGuard, IdempotentRequest
from application.streams import Streamed
from domain.idempotency.model import StoredResponse
from domain.llm.model import TextDelta
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
from interfaces.http.errors import PROBLEM_JSON, domain_problem, problem_responses, status_for
from interfaces.http.idempotency import IdempotencyKey, as_response, fingerprint, stored_json
from interfaces.http.lifecycle import Shutdown, cut_on_shutdown
from interfaces.http.security import CurrentPrincipal
from interfaces.http.sse import EventStreamResponse, sse_event

router = APIRouter(prefix="/conversations", tags=["conversations"])
UPSTREAM_ERRORS = (502, 503, 504)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(400, 401, 403, 404, 413, 422),
    summary="Start a conversation",
)
async def create_conversation(
    body: CreateConversationRequest,
    principal: CurrentPrincipal,
    use_case: CreateConversation = Depends(provided(Container.create_conversation)),
) -> ConversationResponse:
    command = CreateConversationCommand(
        principal=principal,
        title=body.title,
        model=body.model,
        system_prompt=body.system_prompt,
        vector_store_ids=body.store_ids(),
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
        vector_store_ids=body.store_ids(),
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


STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "With `stream: true` or `Accept: text/event-stream`: Server-Sent Events. A `start` event as soon as the "
            'model answered (`{"conversation_id": ...}`, before any text); `delta` events carry text as the '
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
        prompt_cache=body.prompt_cache,
    )
    key = idempotency_key
    keyed = IdempotentRequest(principal.user_id, key, fingerprint(request.url.path, body)) if key else None
    if body.stream or "text/event-stream" in accept:
        final = partial(_stored, instance=request.url.path)
        opened = await guard.stream(keyed, partial(stream_use_case.open, command), final)
        if isinstance(opened, StoredResponse):  # a streamed request's replay is its stored final result, as JSON
            return as_response(opened, replayed=True)
        frames = _sse(opened, request.app.state.shutdown, request.url.path, conversation_id)
        return EventStreamResponse(frames, stream=opened, headers={CACHE_HEADER: opened.cache_status})
    if keyed is not None:
        stored, replayed = await guard.run(keyed, partial(_answer, use_case, command))
        return as_response(stored, replayed=replayed)
    result = await use_case.execute(command)
    response.headers[CACHE_HEADER] = result.cache_status.value
    return PostMessageResponse.of(result)


async def _answer(use_case: PostMessage, command: PostMessageCommand) -> StoredResponse:
    return stored_json(201, PostMessageResponse.of(await use_case.execute(command)))


async def _sse(
    stream: Streamed[TextDelta | StreamOutcome], shutdown: Shutdown, instance: str, conversation_id: uuid.UUID
) -> AsyncIterator[bytes]:
    """The SSE frames of a message stream: ``start`` at once (the stream is open: the model answered, its text may
    come later), deltas, then its ``done`` or ``error`` event (or the shutdown's)."""
    events = cut_on_shutdown(stream, shutdown)
    try:
        yield sse_event("start", {"conversation_id": str(conversation_id)})
        async for event in events:
            if isinstance(event, StreamOutcome):
                yield _final_event(event, instance)[0]
                return
            yield sse_event("delta", {"text": event.text})
    except DomainError as exc:  # the server is stopping, or storing the answer failed (the conversation was deleted)
        yield sse_event("error", _problem(exc, instance))
    finally:
        await events.aclose()  # at once: a stream left early closes the model call and stores what it had


def _stored(event: TextDelta | StreamOutcome, *, instance: str) -> StoredResponse | None:
    """What an idempotent replay of the stream answers: its final result (a 201, or the problem of a broken one)."""
    return _final_event(event, instance)[1] if isinstance(event, StreamOutcome) else None


def _final_event(outcome: StreamOutcome, instance: str) -> tuple[bytes, StoredResponse]:
    response = PostMessageResponse.of(outcome)
    if outcome.error is None:
        return sse_event("done", response.model_dump(mode="json")), stored_json(201, response)
    problem = _problem(outcome.error, instance) | {"result": response.model_dump(mode="json")}
    stored = stored_json(status_for(outcome.error), problem, PROBLEM_JSON)
    return sse_event("error", problem), stored


def _problem(exc: DomainError, instance: str) -> dict[str, Any]:
    if isinstance(exc, ShuttingDown):
        exc = ShuttingDown("the server is restarting; the partial answer was stored, send the message again")
    return domain_problem(exc, instance)
