"""OpenAI's vector stores API, ``/v1/vector_stores``: stores, the files in them (one by one or in batches), and
search (plain Starlette handlers: parse, call the use case, render)."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

from application.vectors.attach_file import AttachFileCommand
from application.vectors.create_vector_store import CreateVectorStoreCommand
from application.vectors.file_batches import CreateFileBatchCommand, FileBatchQuery
from application.vectors.get_store_file import StoreFileQuery
from application.vectors.get_vector_store import StoreQuery
from application.vectors.list_store_files import ListStoreFilesQuery
from application.vectors.list_vector_stores import ListVectorStoresQuery
from application.vectors.search_vector_stores import SearchCommand
from application.vectors.update_store_file import UpdateStoreFileCommand
from application.vectors.update_vector_store import UpdateVectorStoreCommand
from domain.auth.model import Principal
from domain.files.model import parse_file_id, public_file_id
from domain.shared.errors import RuleViolation
from domain.vectors.stores import parse_batch_id, parse_store_id
from interfaces.http.compat.auth import compat_principal, container_of
from interfaces.http.compat.completions import read_body
from interfaces.http.compat.errors import JsonResponse
from interfaces.http.compat.vector_stores_schemas import (
    CreateFileBatchRequest,
    CreateVectorStoreFileRequest,
    CreateVectorStoreRequest,
    SearchVectorStoreRequest,
    UpdateVectorStoreFileRequest,
    UpdateVectorStoreRequest,
    chunking_of,
    filter_of,
)
from interfaces.http.compat.vector_stores_wire import (
    batch_body,
    content_body,
    deleted_body,
    list_body,
    search_body,
    store_body,
    store_file_body,
)
from interfaces.http.context import request_id_var


def _store_id(request: Request) -> uuid.UUID:
    return parse_store_id(request.path_params["vector_store_id"])


def _file_query(request: Request, principal: Principal) -> StoreFileQuery:
    return StoreFileQuery(principal, _store_id(request), parse_file_id(request.path_params["file_id"]))


async def create_vector_store(request: Request) -> Response:
    principal = await compat_principal(request)
    body = await read_body(request, CreateVectorStoreRequest)
    command = CreateVectorStoreCommand(
        principal=principal,
        name=body.name,
        description=body.description,
        file_ids=tuple(body.file_ids),
        chunking=chunking_of(body.chunking_strategy),
        metadata=body.metadata or {},
        expires_after_days=None if body.expires_after is None else body.expires_after.days,
        embedding_model=body.embedding_model,
    )
    return JsonResponse(store_body(await container_of(request).create_vector_store().execute(command)))


async def list_vector_stores(request: Request) -> Response:
    principal = await compat_principal(request)
    params = request.query_params
    query = ListVectorStoresQuery(
        principal=principal,
        limit=_integer(params.get("limit", "20"), "limit"),
        newest_first=_newest_first(params.get("order", "desc")),
        after=params.get("after"),
        before=params.get("before"),
    )
    page = await container_of(request).list_vector_stores().execute(query)
    return JsonResponse(list_body([store_body(s) for s in page.stores], page.has_more))


async def retrieve_vector_store(request: Request) -> Response:
    query = StoreQuery(await compat_principal(request), _store_id(request))
    return JsonResponse(store_body(await container_of(request).get_vector_store().execute(query)))


async def modify_vector_store(request: Request) -> Response:
    principal = await compat_principal(request)
    body = await read_body(request, UpdateVectorStoreRequest)
    command = UpdateVectorStoreCommand(
        principal=principal,
        store_id=_store_id(request),
        name=body.name,
        metadata=body.metadata,
        expires_after_days=None if body.expires_after is None else body.expires_after.days,
        change_expiry="expires_after" in body.model_fields_set,
    )
    return JsonResponse(store_body(await container_of(request).update_vector_store().execute(command)))


async def delete_vector_store(request: Request) -> Response:
    query = StoreQuery(await compat_principal(request), _store_id(request))
    store = await container_of(request).delete_vector_store().execute(query)
    return JsonResponse(deleted_body(store.public_id, "vector_store"))


async def create_store_file(request: Request) -> Response:
    principal = await compat_principal(request)
    body = await read_body(request, CreateVectorStoreFileRequest)
    command = AttachFileCommand(
        principal=principal,
        store_id=_store_id(request),
        file_id=body.file_id,
        chunking=chunking_of(body.chunking_strategy),
        attributes=body.attributes,
    )
    return JsonResponse(store_file_body(await container_of(request).attach_file().execute(command)))


async def list_store_files(request: Request) -> Response:
    principal = await compat_principal(request)
    params = request.query_params
    query = ListStoreFilesQuery(
        principal=principal,
        store_id=_store_id(request),
        limit=_integer(params.get("limit", "20"), "limit"),
        newest_first=_newest_first(params.get("order", "desc")),
        after=params.get("after"),
        before=params.get("before"),
        status=params.get("filter"),
    )
    page = await container_of(request).list_store_files().execute(query)
    return JsonResponse(list_body([store_file_body(f) for f in page.files], page.has_more))


async def retrieve_store_file(request: Request) -> Response:
    query = _file_query(request, await compat_principal(request))
    return JsonResponse(store_file_body(await container_of(request).get_store_file().execute(query)))


async def update_store_file(request: Request) -> Response:
    principal = await compat_principal(request)
    body = await read_body(request, UpdateVectorStoreFileRequest)
    query = _file_query(request, principal)
    command = UpdateStoreFileCommand(
        principal=principal, store_id=query.store_id, file_id=query.file_id, attributes=body.attributes or {}
    )
    return JsonResponse(store_file_body(await container_of(request).update_store_file().execute(command)))


async def delete_store_file(request: Request) -> Response:
    query = _file_query(request, await compat_principal(request))
    file = await container_of(request).detach_file().execute(query)
    return JsonResponse(deleted_body(public_file_id(file.file_id), "vector_store.file"))


async def store_file_content(request: Request) -> Response:
    query = _file_query(request, await compat_principal(request))
    file, chunks = await container_of(request).get_store_file_content().execute(query)
    return JsonResponse(content_body(file, chunks))


async def search_vector_store(request: Request) -> Response:
    principal = await compat_principal(request)
    body = await read_body(request, SearchVectorStoreRequest)
    command = SearchCommand(
        principal=principal,
        store_ids=(_store_id(request),),
        queries=body.queries(),
        filter=None if body.filters is None else filter_of(body.filters),
        max_num_results=body.max_num_results,
        score_threshold=0.0 if body.ranking_options is None else body.ranking_options.score_threshold,
        request_id=request_id_var.get(),
    )
    results = await container_of(request).search_vector_stores().execute(command)
    return JsonResponse(search_body(results, body.queries()))


def _batch_query(request: Request, principal: Principal) -> FileBatchQuery:
    return FileBatchQuery(principal, _store_id(request), parse_batch_id(request.path_params["batch_id"]))


async def create_file_batch(request: Request) -> Response:
    principal = await compat_principal(request)
    body = await read_body(request, CreateFileBatchRequest)
    command = CreateFileBatchCommand(principal=principal, store_id=_store_id(request), files=body.batch_files())
    return JsonResponse(batch_body(await container_of(request).create_file_batch().execute(command)))


async def retrieve_file_batch(request: Request) -> Response:
    query = _batch_query(request, await compat_principal(request))
    return JsonResponse(batch_body(await container_of(request).get_file_batch().execute(query)))


async def cancel_file_batch(request: Request) -> Response:
    query = _batch_query(request, await compat_principal(request))
    return JsonResponse(batch_body(await container_of(request).cancel_file_batch().execute(query)))


async def list_batch_files(request: Request) -> Response:
    principal = await compat_principal(request)
    batch = _batch_query(request, principal)
    params = request.query_params
    query = ListStoreFilesQuery(
        principal=principal,
        store_id=batch.store_id,
        limit=_integer(params.get("limit", "20"), "limit"),
        newest_first=_newest_first(params.get("order", "desc")),
        after=params.get("after"),
        before=params.get("before"),
        status=params.get("filter"),
        batch_id=batch.batch_id,
    )
    page = await container_of(request).list_store_files().execute(query)
    return JsonResponse(list_body([store_file_body(f) for f in page.files], page.has_more))


def _newest_first(order: str) -> bool:
    if order not in ("asc", "desc"):
        raise RuleViolation("order: must be 'asc' or 'desc'")
    return order == "desc"


def _integer(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RuleViolation(f"{name}: must be an integer") from None
