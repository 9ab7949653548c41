"""The ``/v1/vector_stores`` operations of the ``/v1`` OpenAPI document (``interfaces.http.compat.openapi``): their
request bodies are the models the handlers validate with, their query and path parameters as the handlers read them.
"""

from __future__ import annotations

from typing import Any

from application.vectors.list_vector_stores import MAX_LIMIT
from domain.vectors.stores import FileStatus
from interfaces.http.compat.vector_stores_schemas import (
    CreateVectorStoreFileRequest,
    CreateVectorStoreRequest,
    SearchVectorStoreRequest,
    UpdateVectorStoreFileRequest,
    UpdateVectorStoreRequest,
)

VECTOR_STORE_REQUESTS = (
    CreateVectorStoreRequest,
    UpdateVectorStoreRequest,
    CreateVectorStoreFileRequest,
    UpdateVectorStoreFileRequest,
    SearchVectorStoreRequest,
)
REF = "#/components/schemas/{model}"
STORE = "/v1/vector_stores/{vector_store_id}"
ID_PATTERN = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,100}$"}  # what an id can hold


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": ID_PATTERN}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


PAGE = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
    _query("order", {"type": "string", "enum": ["asc", "desc"]}),
    _query("after", ID_PATTERN),
    _query("before", ID_PATTERN),
]


def _operation(
    summary: str, errors: dict[str, Any], *, request: str | None = None, parameters: list[dict[str, Any]]
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "In OpenAI's shape.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            **errors,
        },
    }
    if request is not None:
        body = {"application/json": {"schema": {"$ref": REF.format(model=request)}}}
        operation["requestBody"] = {"required": True, "content": body}
    return operation


def vector_store_paths(errors: dict[str, Any]) -> dict[str, Any]:
    """The operations, each with ``errors`` (OpenAI's error shape at every status)."""
    store, file = [_path("vector_store_id")], [_path("vector_store_id"), _path("file_id")]
    status = _query("filter", {"type": "string", "enum": [s.value for s in FileStatus]})
    return {
        "/v1/vector_stores": {
            "post": _operation("Create a vector store", errors, request="CreateVectorStoreRequest", parameters=[]),
            "get": _operation("List your vector stores", errors, parameters=PAGE),
        },
        STORE: {
            "get": _operation("One of your vector stores", errors, parameters=store),
            "post": _operation("Modify a vector store", errors, request="UpdateVectorStoreRequest", parameters=store),
            "delete": _operation("Delete a vector store and its chunks", errors, parameters=store),
        },
        f"{STORE}/search": {
            "post": _operation("Search a vector store", errors, request="SearchVectorStoreRequest", parameters=store),
        },
        f"{STORE}/files": {
            "post": _operation(
                "Attach a file to a vector store", errors, request="CreateVectorStoreFileRequest", parameters=store
            ),
            "get": _operation("List a vector store's files", errors, parameters=[*store, *PAGE, status]),
        },
        f"{STORE}/files/{{file_id}}": {
            "get": _operation("One file of a vector store", errors, parameters=file),
            "post": _operation(
                "Replace a vector store file's attributes",
                errors,
                request="UpdateVectorStoreFileRequest",
                parameters=file,
            ),
            "delete": _operation("Remove a file from a vector store (and its chunks)", errors, parameters=file),
        },
        f"{STORE}/files/{{file_id}}/content": {
            "get": _operation("A vector store file's parsed chunks", errors, parameters=file),
        },
    }
