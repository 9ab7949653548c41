"""The OpenAPI document of the ``/v1`` API, served at ``/v1/openapi.json``: built from the request models the
handlers validate with (``openai_schemas``, ``anthropic_schemas``), so it cannot drift from them, plus what those
models leave to code and the schema can state (the catalog's model names, the stop-sequence cap, text-only content).

Responses are described by their outer shape (OpenAI's and Anthropic's own documents hold the rest); errors by both
APIs' shapes, with the statuses each SDK expects.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from domain.llm.model import MAX_EMBEDDING_INPUTS, TOOL_NAME_PATTERN, ModelKind, ModelSpec
from infrastructure.llm.local_embeddings import DEFAULT_DIMENSIONS as LOCAL_DIMENSIONS
from interfaces.http.compat.anthropic_schemas import CountTokensRequest, CreateMessageRequest
from interfaces.http.compat.batches_openapi import BATCH_REQUESTS, files_and_batches_paths, state_batch_request_rules
from interfaces.http.compat.legacy_completions import LegacyCompletionRequest
from interfaces.http.compat.message_batch_lines import MessageBatchParams
from interfaces.http.compat.message_batches import CUSTOM_ID_PATTERN, MAX_LIST_LIMIT
from interfaces.http.compat.openai_schemas import MAX_STOP_SEQUENCES, ChatCompletionRequest, EmbeddingsRequest
from interfaces.http.compat.responses_schemas import CreateResponseRequest, InputTokensRequest
from interfaces.http.compat.vector_stores_openapi import VECTOR_STORE_REQUESTS, state_batch_rules, vector_store_paths

REF = "#/components/schemas/{model}"
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
ERROR_STATUSES = ("400", "401", "402", "403", "404", "409", "413", "422", "429", "500", "502", "503", "504", "529")
OPENAI_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
ANTHROPIC_ERROR = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
        "request_id": {"type": ["string", "null"]},
    },
}
OBJECT = {"type": "object"}
MESSAGE_BATCH = {
    "type": "object",
    "required": ["requests"],
    "properties": {
        "requests": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["custom_id", "params"],
                "additionalProperties": False,
                "properties": {
                    "custom_id": {"type": "string", "pattern": CUSTOM_ID_PATTERN},
                    "params": {"$ref": "#/components/schemas/MessageBatchParams"},
                },
            },
        }
    },
}
NON_EMPTY = {"id", "name", "tool_call_id", "tool_use_id"}


def compat_openapi(models: list[ModelSpec]) -> dict[str, Any]:
    """The document for this catalog: the model fields list the models each endpoint can serve."""
    schemas = _request_schemas(models)
    schemas.update(OpenAIError=OPENAI_ERROR, AnthropicError=ANTHROPIC_ERROR, CreateMessageBatchRequest=MESSAGE_BATCH)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Switchboard: OpenAI- and Anthropic-compatible API",
            "version": "0.1.0",
            "description": "Any catalog model through OpenAI's and Anthropic's SDKs (point their base URL here).",
        },
        "paths": {
            "/v1/chat/completions": {"post": _post("ChatCompletionRequest", "OpenAIError", "Create a chat completion")},
            "/v1/completions": {
                "post": _post("LegacyCompletionRequest", "OpenAIError", "Create a completion (legacy)")
            },
            "/v1/embeddings": {"post": _post("EmbeddingsRequest", "OpenAIError", "Create embeddings", stream=False)},
            "/v1/messages": {"post": _post("CreateMessageRequest", "AnthropicError", "Create a message")},
            "/v1/messages/count_tokens": {
                "post": _post("CountTokensRequest", "AnthropicError", "Count a message's input tokens", stream=False)
            },
            **_message_batch_paths(),
            "/v1/responses": {"post": _post("CreateResponseRequest", "OpenAIError", "Create a response")},
            "/v1/responses/input_tokens": {
                "post": _post("InputTokensRequest", "OpenAIError", "Count a response's input tokens", stream=False)
            },
            "/v1/responses/{response_id}": {
                "get": _stored("A stored response (?stream=true: its events again)"),
                "delete": _stored("Delete a stored response"),
            },
            "/v1/responses/{response_id}/cancel": {"post": _stored("Cancel a background response")},
            "/v1/models": {"get": _get("List the catalog's models")},
            "/v1/models/{model_id}": {"get": _get("One model of the catalog", path_parameter=True)},
            **vector_store_paths(_errors("OpenAIError")),
            **files_and_batches_paths(_errors("OpenAIError")),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A Switchboard API key or token."},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
        "security": SECURITY,
    }


def _request_schemas(models: list[ModelSpec]) -> dict[str, Any]:
    documented = (
        ChatCompletionRequest,
        LegacyCompletionRequest,
        EmbeddingsRequest,
        CreateMessageRequest,
        CountTokensRequest,
        MessageBatchParams,
        CreateResponseRequest,
        InputTokensRequest,
        *VECTOR_STORE_REQUESTS,
        *BATCH_REQUESTS,
    )
    requests = [(m, "validation") for m in documented]
    _, top = models_json_schema(requests, ref_template=REF)  # type: ignore[arg-type]
    schemas: dict[str, Any] = top["$defs"]
    chat = sorted(m.name for m in models if m.kind is ModelKind.CHAT)
    embedding = sorted(m.name for m in models if m.kind is ModelKind.EMBEDDING)
    for name, known in (
        ("ChatCompletionRequest", chat),
        ("LegacyCompletionRequest", chat),
        ("CreateMessageRequest", chat),
        ("CountTokensRequest", chat),
        ("MessageBatchParams", chat),
        ("CreateResponseRequest", chat),
        ("InputTokensRequest", chat),
        ("EmbeddingsRequest", embedding),
    ):
        schemas[name]["properties"]["model"] = {"type": "string", "enum": known or [""]}
    schemas["CreateVectorStoreRequest"]["properties"]["embedding_model"] = {
        "anyOf": [{"type": "string", "enum": embedding or [""]}, {"type": "null"}],
        "description": "Switchboard's extension: the catalog's embedding model for this store (unset: the default).",
    }
    _state_caps(schemas, models)
    _state_rules(schemas)
    state_batch_rules(schemas)
    state_batch_request_rules(schemas)
    return schemas


def _state_caps(schemas: dict[str, Any], models: list[ModelSpec]) -> None:
    """The largest ``max_tokens`` and ``dimensions`` any model takes (each model's own cap is in ``/v1/models``)."""
    output_caps = [m.max_output_tokens for m in models if m.kind is ModelKind.CHAT]
    for name, field in (
        ("ChatCompletionRequest", "max_tokens"),
        ("ChatCompletionRequest", "max_completion_tokens"),
        ("LegacyCompletionRequest", "max_tokens"),
        ("CreateMessageRequest", "max_tokens"),
        ("MessageBatchParams", "max_tokens"),
        ("CreateResponseRequest", "max_output_tokens"),
    ):
        _cap(schemas[name]["properties"][field], max(output_caps, default=1))
    dimensions = [_dimensions(m) for m in models if m.kind is ModelKind.EMBEDDING]
    if dimensions and None not in dimensions:
        _cap(schemas["EmbeddingsRequest"]["properties"]["dimensions"], max(d for d in dimensions if d is not None))


def _dimensions(model: ModelSpec) -> int | None:
    """The most dimensions a model makes, when known: the catalog's, or the local embedder's default."""
    return model.dimensions or (LOCAL_DIMENSIONS if model.provider == "local" else None)


def _cap(field: dict[str, Any], maximum: int) -> None:
    for schema in field.get("anyOf", [field]):
        if schema.get("type") == "integer":
            schema["maximum"] = maximum


def _state_rules(schemas: dict[str, Any]) -> None:
    """Rules the handlers check in code, stated where a schema can say them (a valid document request is served)."""
    for request in ("ChatCompletionRequest", "LegacyCompletionRequest"):
        stop = schemas[request]["properties"]["stop"]
        stop["anyOf"] = [
            {"type": "array", "items": {"type": "string"}, "maxItems": MAX_STOP_SEQUENCES}
            if s.get("type") == "array"
            else s
            for s in stop["anyOf"]
        ]
    _state_legacy_rules(schemas["LegacyCompletionRequest"]["properties"])
    for schema in schemas.values():  # ids and names the handlers need non-empty to pair calls with results
        for name, field in schema.get("properties", {}).items():
            if name in NON_EMPTY and field.get("type") == "string":
                field["minLength"] = 1
    for tool in ("FunctionDefinition", "interfaces__http__compat__anthropic_schemas__ToolIn"):
        schemas[tool]["properties"]["name"] = {"type": "string", "pattern": TOOL_NAME_PATTERN}
    schemas["MessageIn"] = {"oneOf": [_turn("user", "ToolResultBlock"), _turn("assistant", "ToolUseBlock")]}
    for module, kinds in (
        ("openai_schemas", ["text", "refusal"]),
        ("responses_schemas", ["input_text", "output_text", "text", "refusal"]),
    ):
        part = _named(schemas, module, "ContentPart")
        part["properties"]["type"] = {"type": "string", "enum": kinds}
        part["required"] = ["type", "text"]
        part["properties"]["text"] = {"type": "string"}
    schemas["EmbeddingsRequest"]["properties"]["input"] = {
        "anyOf": [
            {"type": "string", "minLength": 1},
            {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 1,
                "maxItems": MAX_EMBEDDING_INPUTS,
            },
        ],
        "description": "Text, or a list of texts (token arrays are not supported).",
    }


def _named(schemas: dict[str, Any], module: str, name: str) -> dict[str, Any]:
    """A model's schema: by its name, or by its module-qualified one when two modules have a model of that name."""
    found: dict[str, Any] = schemas.get(f"interfaces__http__compat__{module}__{name}") or schemas[name]
    return found


def _state_legacy_rules(properties: dict[str, Any]) -> None:
    """One non-empty prompt; no insertion, echo or log probabilities (refused: the chat models cannot honour them)."""
    text = {"type": "string", "minLength": 1}
    properties["prompt"] = {"anyOf": [text, {"type": "array", "items": text, "minItems": 1, "maxItems": 1}]}
    properties["suffix"] = {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 0}]}
    properties["echo"] = {"anyOf": [{"type": "null"}, {"type": "boolean", "enum": [False]}]}
    properties["logprobs"] = {"type": "null"}


def _turn(role: str, tool_block: str) -> dict[str, Any]:
    """An Anthropic turn: tool results belong to user turns, tool calls to assistant turns."""
    blocks = [REF.format(model=name) for name in ("TextBlock", tool_block, "ThinkingBlock")]
    return {
        "type": "object",
        "required": ["role", "content"],
        "properties": {
            "role": {"const": role},
            "content": {
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"anyOf": [{"$ref": b} for b in blocks]}}]
            },
        },
    }


def _errors(error_schema: str) -> dict[str, Any]:
    body = {"application/json": {"schema": {"$ref": REF.format(model=error_schema)}}}
    return {status: {"description": "An error in the API's own shape.", "content": body} for status in ERROR_STATUSES}


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
    "description": "Makes a retry safe: the same key and body get the first answer again.",
}


def _post(request: str, error: str, summary: str, *, stream: bool = True) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": OBJECT}}
    if stream:
        content["text/event-stream"] = {"schema": {"description": "Each event's data, in the API's own shape."}}
    body = {"application/json": {"schema": {"$ref": REF.format(model=request)}}}
    return {
        "summary": summary,
        "parameters": [IDEMPOTENCY_KEY] if stream else [],
        "requestBody": {"required": True, "content": body},
        "responses": {"200": {"description": "The answer, whole or streamed.", "content": content}, **_errors(error)},
    }


def _stored(summary: str) -> dict[str, Any]:
    """An operation on one stored response of the caller's, by its id (someone else's is a 404)."""
    return {
        "summary": summary,
        "parameters": [{"name": "response_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {
            "200": {"description": "The response object.", "content": {"application/json": {"schema": OBJECT}}},
            **_errors("OpenAIError"),
        },
    }


def _get(summary: str, *, path_parameter: bool = False) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {
            "name": "anthropic-version",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "When sent, the answer is in Anthropic's shape; else OpenAI's.",
        }
    ]
    if path_parameter:
        parameters.append({"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}})
    errors = {
        "application/json": {
            "schema": {"anyOf": [{"$ref": REF.format(model=n)} for n in ("OpenAIError", "AnthropicError")]}
        }
    }
    return {
        "summary": summary,
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "In OpenAI's list shape, or Anthropic's.",
                "content": {"application/json": {"schema": OBJECT}},
            },
            **{status: {"description": "An error.", "content": errors} for status in ERROR_STATUSES},
        },
    }


def _message_batch_paths() -> dict[str, Any]:
    """Anthropic's Message Batches: the batch object, its list and its results are described by their outer shape."""
    batch_id = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string"}}
    ok = {"200": {"description": "In Anthropic's shape.", "content": {"application/json": {"schema": OBJECT}}}}
    errors = _errors("AnthropicError")

    def operation(summary: str, parameters: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"summary": summary, "parameters": parameters, "responses": {**ok, **errors}, **extra}

    cursor = {"type": "string", "minLength": 1}
    page = [
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT}},
        {"name": "after_id", "in": "query", "schema": cursor, "description": "The page just older than this batch."},
        {"name": "before_id", "in": "query", "schema": cursor, "description": "The page just newer than this batch."},
    ]
    body = {"application/json": {"schema": {"$ref": REF.format(model="CreateMessageBatchRequest")}}}
    results = {
        "200": {
            "description": "JSONL: one `{custom_id, result}` per request.",
            "content": {"application/binary": {"schema": {"type": "string"}}},
        },
        **errors,
    }
    return {
        "/v1/messages/batches": {
            "post": operation("Create a message batch", [], requestBody={"required": True, "content": body}),
            "get": operation("List your message batches, newest first", page),
        },
        "/v1/messages/batches/{batch_id}": {
            "get": operation("One of your message batches", [batch_id]),
            "delete": operation("Delete a message batch that has ended", [batch_id]),
        },
        "/v1/messages/batches/{batch_id}/cancel": {"post": operation("Cancel a message batch", [batch_id])},
        "/v1/messages/batches/{batch_id}/results": {
            "get": {"summary": "A message batch's results", "parameters": [batch_id], "responses": results}
        },
    }
