"""Anthropic's ``POST /v1/messages``, whole or streamed, answered by any chat model of the catalog, and
``POST /v1/messages/count_tokens`` (plain Starlette handlers: see ``interfaces.http.compat.completions`` for why)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from interfaces.http.compat.anthropic_schemas import CountTokensRequest, CreateMessageRequest
from interfaces.http.compat.anthropic_wire import message_body, message_events
from interfaces.http.compat.auth import compat_principal, container_of
from interfaces.http.compat.completions import Renderer, answer, command_for, read_body
from interfaces.http.compat.errors import JsonResponse
from interfaces.http.compat.file_search import ground
from interfaces.http.context import request_id_var


async def create_message(request: Request) -> Response:
    principal = await compat_principal(request)
    body = await read_body(request, CreateMessageRequest)
    completion, tail = await ground(request, principal, body.to_domain(), body.file_search())
    render = Renderer(
        whole=lambda answered: message_body(answered, model=body.model) | (tail(answered) if tail else {}),
        streamed=lambda events: message_events(events, request=completion, tail=tail),
        headers={"request-id": request_id_var.get()},
    )
    command = command_for(request, principal, completion)
    return await answer(request, command, stream=bool(body.stream), body=body, render=render)


async def count_tokens(request: Request) -> Response:
    """The input tokens the message would cost: the gateway's estimate, whichever provider serves the model."""
    principal = await compat_principal(request)
    body = await read_body(request, CountTokensRequest)
    tokens = await container_of(request).count_tokens().execute(principal, body.to_domain())
    return JsonResponse({"input_tokens": tokens}, headers={"request-id": request_id_var.get()})
