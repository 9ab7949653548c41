"""The ``/v1/files`` and ``/v1/batches`` operations of the ``/v1`` OpenAPI document
(``interfaces.http.compat.openapi``): the batch request body is the model the handler validates with, with the
rules the use cases check stated where a schema can say them; the upload is the multipart form the handler reads.
"""

from __future__ import annotations

from typing import Any

from application.batches.create_batch import MAX_METADATA_KEY, MAX_METADATA_PAIRS, MAX_METADATA_VALUE
from application.batches.list_batches import MAX_LIMIT as MAX_BATCHES
from application.files.list_files import MAX_LIMIT as MAX_FILES
from domain.batches.model import COMPLETION_WINDOWS
from domain.files.model import MAX_EXPIRY_SECONDS, MIN_EXPIRY_SECONDS, UPLOADABLE_PURPOSES, FilePurpose
from interfaces.http.compat.batch_lines import openai_line_codecs
from interfaces.http.compat.batches import CreateBatchRequest

BATCH_REQUESTS = (CreateBatchRequest,)
REF = "#/components/schemas/{model}"
ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,100}$"}  # what an id can hold
JSON_OBJECT = {"application/json": {"schema": {"type": "object"}}}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": ID}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _operation(
    summary: str,
    errors: dict[str, Any],
    *,
    parameters: list[dict[str, Any]],
    body: dict[str, Any] | None = None,
    answer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": parameters,
        "responses": {"200": {"description": "In OpenAI's shape.", "content": answer or JSON_OBJECT}, **errors},
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": body}
    return operation


def state_batch_request_rules(schemas: dict[str, Any]) -> None:
    """What ``CreateBatch`` checks in code: the endpoints batches run, the completion windows, metadata's size."""
    properties = schemas["CreateBatchRequest"]["properties"]
    properties["endpoint"] = {"type": "string", "enum": sorted(openai_line_codecs())}
    properties["completion_window"] = {"type": "string", "enum": list(COMPLETION_WINDOWS)}
    properties["metadata"] = {
        "anyOf": [
            {
                "type": "object",
                "maxProperties": MAX_METADATA_PAIRS,
                "propertyNames": {"maxLength": MAX_METADATA_KEY},
                "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE},
            },
            {"type": "null"},
        ]
    }


UPLOAD = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["file", "purpose"],
            "properties": {
                "file": {"type": "string", "format": "binary", "description": "The file (its name: 1 to 255 chars)."},
                "purpose": {"type": "string", "enum": [p.value for p in UPLOADABLE_PURPOSES]},
                "expires_after[anchor]": {"type": "string", "enum": ["created_at"]},
                "expires_after[seconds]": {
                    "type": "integer",
                    "minimum": MIN_EXPIRY_SECONDS,
                    "maximum": MAX_EXPIRY_SECONDS,
                },
            },
        }
    }
}


def files_and_batches_paths(errors: dict[str, Any]) -> dict[str, Any]:
    """The operations, each with ``errors`` (OpenAI's error shape at every status)."""
    file, batch = [_path("file_id")], [_path("batch_id")]
    purposes = [p.value for p in FilePurpose]
    octets = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    create = {"application/json": {"schema": {"$ref": REF.format(model="CreateBatchRequest")}}}
    return {
        "/v1/files": {
            "post": _operation("Upload a file (multipart)", errors, parameters=[], body=UPLOAD),
            "get": _operation(
                "List your files",
                errors,
                parameters=[
                    _query("purpose", {"type": "string", "enum": purposes}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_FILES}),
                    _query("order", {"type": "string", "enum": ["asc", "desc"]}),
                    _query("after", ID),
                ],
            ),
        },
        "/v1/files/{file_id}": {
            "get": _operation("One of your files", errors, parameters=file),
            "delete": _operation("Delete one of your files", errors, parameters=file),
        },
        "/v1/files/{file_id}/content": {
            "get": _operation("A file's bytes", errors, parameters=file, answer=octets),
        },
        "/v1/batches": {
            "post": _operation("Create a batch from a JSONL file", errors, parameters=[], body=create),
            "get": _operation(
                "List your batches, newest first",
                errors,
                parameters=[
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_BATCHES}),
                    _query("after", ID),
                ],
            ),
        },
        "/v1/batches/{batch_id}": {"get": _operation("One of your batches", errors, parameters=batch)},
        "/v1/batches/{batch_id}/cancel": {"post": _operation("Cancel a batch", errors, parameters=batch)},
    }
