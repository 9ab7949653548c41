"""OpenAI's ``POST /v1/chat/completions``, the legacy ``POST /v1/completions`` and ``POST /v1/embeddings`` (plain
Starlette handlers: see ``interfaces.http.compat.completions`` for why)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from application.compat.create_embeddings import EmbeddingsCommand
from interfaces.http.compat import legacy_completions as legacy
from interfaces.http.compat.auth import compat_principal, container_of
from interfaces.http.compat.completions import Renderer, answer, command_for, read_body
from interfaces.http.compat.errors import JsonResponse
from interfaces.http.compat.file_search import ground
from interfaces.http.compat.legacy_completions import LegacyCompletionRequest
from interfaces.http.compat.openai_schemas import ChatCompletionRequest, EmbeddingsRequest
from interfaces.http.compat.openai_wire import completion_body, completion_events, embeddings_body
from interfaces.http.context import request_id_var


async def create_chat_completion(request: Request) -> Response:
    principal = await compat_principal(request)
    body = await read_body(request, ChatCompletionRequest)
    completion, tail = await ground(request, principal, body.to_domain(), body.file_search())
    render = Renderer(
        whole=lambda answer: completion_body(answer, model=body.model) | (tail(answer) if tail else {}),
        streamed=lambda events: completion_events(
            events, model=body.model, include_usage=body.include_usage, tail=tail
        ),
        headers={},
    )
    command = command_for(request, principal, completion)
    return await answer(request, command, stream=bool(body.stream), body=body, render=render)


async def create_completion(request: Request) -> Response:
    """The legacy ``POST /v1/completions``: a prompt in, text out."""
    principal = await compat_principal(request)
    body = await read_body(request, LegacyCompletionRequest)
    render = Renderer(
        whole=lambda completion: legacy.completion_body(completion, model=body.model),
        streamed=lambda events: legacy.completion_events(events, model=body.model, include_usage=body.include_usage),
        headers={},
    )
    command = command_for(request, principal, body.to_domain())
    return await answer(request, command, stream=bool(body.stream), body=body, render=render)


async def create_embeddings(request: Request) -> Response:
    principal = await compat_principal(request)
    body = await read_body(request, EmbeddingsRequest)
    command = EmbeddingsCommand(principal=principal, request=body.to_domain(), request_id=request_id_var.get())
    embeddings = await container_of(request).create_embeddings().execute(command)
    return JsonResponse(embeddings_body(embeddings, model=body.model, encoding=body.encoding_format))
