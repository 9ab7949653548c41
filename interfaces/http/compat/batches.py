"""OpenAI's Batches API, ``/v1/batches``: create (from an uploaded JSONL file), retrieve, list, cancel (plain
Starlette handlers: see ``interfaces.http.compat.completions`` for why). Parse, call the use case, render."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from application.batches.create_batch import CreateBatchCommand
from application.batches.get_batch import BatchQuery
from application.batches.list_batches import ListBatchesQuery
from domain.batches.model import parse_batch_id
from domain.shared.errors import RuleViolation
from interfaces.http.compat.auth import compat_principal, container_of
from interfaces.http.compat.batches_wire import batch_body, batch_list_body
from interfaces.http.compat.completions import read_body
from interfaces.http.compat.errors import JsonResponse


class CreateBatchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input_file_id: str = Field(min_length=1, max_length=200)
    endpoint: str = Field(min_length=1, max_length=100)
    completion_window: str = Field(min_length=1, max_length=16)
    metadata: dict[str, str] | None = None


async def create_batch(request: Request) -> Response:
    principal = await compat_principal(request)
    body = await read_body(request, CreateBatchRequest)
    command = CreateBatchCommand(
        principal=principal,
        input_file_id=body.input_file_id,
        endpoint=body.endpoint,
        completion_window=body.completion_window,
        metadata=body.metadata or {},
    )
    return JsonResponse(batch_body(await container_of(request).create_batch().execute(command)))


async def retrieve_batch(request: Request) -> Response:
    query = BatchQuery(await compat_principal(request), parse_batch_id(request.path_params["batch_id"]))
    return JsonResponse(batch_body(await container_of(request).get_batch().execute(query)))


async def cancel_batch(request: Request) -> Response:
    query = BatchQuery(await compat_principal(request), parse_batch_id(request.path_params["batch_id"]))
    return JsonResponse(batch_body(await container_of(request).cancel_batch().execute(query)))


async def list_batches(request: Request) -> Response:
    principal = await compat_principal(request)
    params = request.query_params
    after = params.get("after")
    query = ListBatchesQuery(
        principal=principal,
        limit=_integer(params.get("limit", "20"), "limit"),
        after=None if after is None else parse_batch_id(after),
    )
    return JsonResponse(batch_list_body(await container_of(request).list_batches().execute(query)))


def _integer(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RuleViolation(f"{name}: must be an integer") from None
