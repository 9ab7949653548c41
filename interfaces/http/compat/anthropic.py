"""Anthropic's ``POST /v1/messages``, whole or streamed, answered by any chat model of the catalog."""

from __future__ import annotations

from typing import Annotated

from dependency_injector.wiring import Provide, inject
from fastapi import APIRouter, Depends, Header
from fastapi.responses import StreamingResponse

from application.compat.create_completion import CreateCompletion
from application.compat.stream_completion import StreamCompletion
from interfaces.container import Container
from interfaces.http.compat.anthropic_schemas import CreateMessageRequest
from interfaces.http.compat.anthropic_wire import message_body, message_events
from interfaces.http.compat.auth import CompatPrincipal
from interfaces.http.compat.commands import completion_command
from interfaces.http.compat.errors import JsonResponse
from interfaces.http.context import request_id_var
from interfaces.http.lifecycle import Shutdown, cut_on_shutdown
from interfaces.http.sse import SSE_HEADERS

router = APIRouter(tags=["anthropic"])


@router.post("/messages", response_model=None, summary="Anthropic Messages, whole or streamed")
@inject
async def create_message(
    body: CreateMessageRequest,
    principal: CompatPrincipal,
    cache_control: Annotated[str, Header()] = "",
    create: CreateCompletion = Depends(Provide[Container.create_completion]),
    stream: StreamCompletion = Depends(Provide[Container.stream_completion]),
    shutdown: Shutdown = Depends(Provide[Container.shutdown]),
) -> JsonResponse | StreamingResponse:
    request = body.to_domain()
    command = completion_command(principal, request, cache_control)
    headers = {"request-id": request_id_var.get()}
    if body.stream:
        events = await stream.open(command)  # a failure before the first token is an ordinary error response
        events = cut_on_shutdown(events, shutdown)  # type: ignore[assignment]  # ends with an error event if cut
        return StreamingResponse(
            message_events(events, request=request), media_type="text/event-stream", headers=SSE_HEADERS | headers
        )
    return JsonResponse(message_body(await create.execute(command), model=body.model), headers=headers)
