"""Anthropic's ``POST /v1/messages``, whole or streamed, answered by any chat model of the catalog (a plain
Starlette handler: see ``interfaces.http.compat.completions`` for why)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from interfaces.http.compat.anthropic_schemas import CreateMessageRequest
from interfaces.http.compat.anthropic_wire import message_body, message_events
from interfaces.http.compat.auth import compat_principal
from interfaces.http.compat.completions import Renderer, answer, command_for, read_body
from interfaces.http.context import request_id_var


async def create_message(request: Request) -> Response:
    principal = await compat_principal(request)
    body = await read_body(request, CreateMessageRequest)
    completion = body.to_domain()
    render = Renderer(
        whole=lambda answered: message_body(answered, model=body.model),
        streamed=lambda events: message_events(events, request=completion),
        headers={"request-id": request_id_var.get()},
    )
    command = command_for(request, principal, completion)
    return await answer(request, command, stream=bool(body.stream), body=body, render=render)
