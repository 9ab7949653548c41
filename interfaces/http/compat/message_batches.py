"""Anthropic's Message Batches API, ``/v1/messages/batches``: create (from inline requests), retrieve, list, cancel,
delete, and the results as JSONL (plain Starlette handlers: see ``interfaces.http.compat.completions`` for why).
Parse, call the use case, render: the batch is the same as an OpenAI one, in Anthropic's shapes."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from application.batches.create_message_batch import CreateMessageBatchCommand, MessageBatchRequest
from application.batches.get_batch import BatchQuery
from application.batches.list_batches import ListBatchesQuery
from domain.batches.model import MESSAGE_BATCH_PREFIX, BatchKind, parse_batch_id
from domain.shared.errors import RuleViolation
from interfaces.http.compat.auth import compat_principal, container_of
from interfaces.http.compat.errors import JsonResponse, RequestBodyInvalid
from interfaces.http.compat.message_batches_wire import deleted_body, message_batch_body, message_batch_page_body
from interfaces.http.context import request_id_var

CUSTOM_ID_PATTERN = "^[a-zA-Z0-9_-]{1,64}$"
MAX_LIST_LIMIT = 1000
KIND = BatchKind.ANTHROPIC


class MessageBatchRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    custom_id: Annotated[str, Field(pattern=CUSTOM_ID_PATTERN)]
    params: dict[str, Any]  # checked as POST /v1/messages checks a body, naming the request (the use case)


class CreateMessageBatchIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    requests: list[MessageBatchRequestIn] = Field(min_length=1)


def _answer(body: dict[str, Any]) -> Response:
    return JsonResponse(body, headers={"request-id": request_id_var.get()})


def _base_url(request: Request) -> str:
    """This API's URL as the client reached it (``https://host/v1``, behind whatever prefix): the request's own URL
    up to its ``/messages/batches``."""
    url = str(request.url.replace(query=""))
    return url[: url.index("/messages/batches")]


async def _read_requests(request: Request) -> CreateMessageBatchIn:
    """The body, validated off the event loop: a batch may hold tens of thousands of requests."""
    raw = await request.body()
    try:
        return await asyncio.to_thread(CreateMessageBatchIn.model_validate_json, raw)
    except ValidationError as exc:
        raise RequestBodyInvalid(exc.errors(include_url=False)) from None


async def _query(request: Request) -> BatchQuery:
    principal = await compat_principal(request)
    return BatchQuery(principal, parse_batch_id(request.path_params["batch_id"], MESSAGE_BATCH_PREFIX), KIND)


async def create_message_batch(request: Request) -> Response:
    principal = await compat_principal(request)
    body = await _read_requests(request)
    requests = [MessageBatchRequest(r.custom_id, r.params) for r in body.requests]
    command = CreateMessageBatchCommand(principal=principal, requests=requests)
    batch = await container_of(request).create_message_batch().execute(command)
    return _answer(message_batch_body(batch, base_url=_base_url(request)))


async def retrieve_message_batch(request: Request) -> Response:
    batch = await container_of(request).get_batch().execute(await _query(request))
    return _answer(message_batch_body(batch, base_url=_base_url(request)))


async def cancel_message_batch(request: Request) -> Response:
    batch = await container_of(request).cancel_batch().execute(await _query(request))
    return _answer(message_batch_body(batch, base_url=_base_url(request)))


async def delete_message_batch(request: Request) -> Response:
    return _answer(deleted_body(await container_of(request).delete_message_batch().execute(await _query(request))))


async def message_batch_results(request: Request) -> Response:
    pages = await container_of(request).batch_results().execute(await _query(request))
    return StreamingResponse(pages, media_type="application/binary", headers={"request-id": request_id_var.get()})


async def list_message_batches(request: Request) -> Response:
    principal = await compat_principal(request)
    params = request.query_params
    after, before = params.get("after_id"), params.get("before_id")
    query = ListBatchesQuery(
        principal=principal,
        limit=_integer(params.get("limit", "20"), "limit"),
        after=None if after is None else parse_batch_id(after, MESSAGE_BATCH_PREFIX),
        before=None if before is None else parse_batch_id(before, MESSAGE_BATCH_PREFIX),
        kind=KIND,
        max_limit=MAX_LIST_LIMIT,
    )
    page = await container_of(request).list_batches().execute(query)
    return _answer(message_batch_page_body(page, base_url=_base_url(request)))


def _integer(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RuleViolation(f"{name}: must be an integer") from None
