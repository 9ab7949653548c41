"""OpenAI's ``POST /v1/chat/completions`` and ``POST /v1/embeddings``."""

from __future__ import annotations

from typing import Annotated

from dependency_injector.wiring import Provide, inject
from fastapi import APIRouter, Depends, Header
from fastapi.responses import StreamingResponse

from application.compat.create_completion import CreateCompletion
from application.compat.create_embeddings import CreateEmbeddings, EmbeddingsCommand
from application.compat.stream_completion import StreamCompletion
from interfaces.container import Container
from interfaces.http.compat.auth import CompatPrincipal
from interfaces.http.compat.commands import completion_command
from interfaces.http.compat.errors import JsonResponse
from interfaces.http.compat.openai_schemas import ChatCompletionRequest, EmbeddingsRequest
from interfaces.http.compat.openai_wire import completion_body, completion_events, embeddings_body
from interfaces.http.context import request_id_var
from interfaces.http.lifecycle import Shutdown, cut_on_shutdown
from interfaces.http.sse import SSE_HEADERS

router = APIRouter(tags=["openai"])


@router.post("/chat/completions", response_model=None, summary="OpenAI Chat Completions, whole or streamed")
@inject
async def create_chat_completion(
    body: ChatCompletionRequest,
    principal: CompatPrincipal,
    cache_control: Annotated[str, Header()] = "",
    create: CreateCompletion = Depends(Provide[Container.create_completion]),
    stream: StreamCompletion = Depends(Provide[Container.stream_completion]),
    shutdown: Shutdown = Depends(Provide[Container.shutdown]),
) -> JsonResponse | StreamingResponse:
    command = completion_command(principal, body.to_domain(), cache_control)
    if body.stream:
        events = await stream.open(command)  # a failure before the first token is an ordinary error response
        events = cut_on_shutdown(events, shutdown)  # type: ignore[assignment]  # ends with an error event if cut
        sse = completion_events(events, model=body.model, include_usage=body.include_usage)
        return StreamingResponse(sse, media_type="text/event-stream", headers=SSE_HEADERS)
    return JsonResponse(completion_body(await create.execute(command), model=body.model))


@router.post("/embeddings", summary="OpenAI Embeddings")
@inject
async def create_embeddings(
    body: EmbeddingsRequest,
    principal: CompatPrincipal,
    use_case: CreateEmbeddings = Depends(Provide[Container.create_embeddings]),
) -> JsonResponse:
    command = EmbeddingsCommand(principal=principal, request=body.to_domain(), request_id=request_id_var.get())
    embeddings = await use_case.execute(command)
    return JsonResponse(embeddings_body(embeddings, model=body.model, encoding=body.encoding_format))
