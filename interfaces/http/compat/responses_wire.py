"""Responses-API shapes of the domain's results (pure functions): the response object, its input items, and the
streamed events, each with its ``sequence_number``.

Item ids are derived from the response's id, so a response rendered again (``GET``, a streamed replay) shows the
same ids it was created with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson

from domain.files.model import public_file_id
from domain.llm.model import ChatMessage, ChatRole, ToolCall
from domain.responses.model import ResponseRecord, ResponseStatus, public_id

# The error codes a Responses object may carry; any other failure is a server error.
_ERROR_CODES = {"rate_limited": "rate_limit_exceeded", "context_too_long": "invalid_prompt"}


def item_id(record: ResponseRecord, prefix: str, key: str) -> str:
    return prefix + hashlib.sha256(f"{record.id}:{key}".encode()).hexdigest()[:40]


def _seconds(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


def text_part(text: str, annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": annotations or [], "logprobs": []}


def citation_annotations(record: ResponseRecord, text: str) -> list[dict[str, Any]]:
    """The ``file_citation`` annotations of ``text``, when the response searched files."""
    if record.file_search is None or not text:
        return []
    return [
        {"type": "file_citation", "file_id": public_file_id(c.file_id), "filename": c.filename, "index": c.index}
        for c in record.file_search.cite(text)
    ]


def file_search_item(record: ResponseRecord, *, status: str) -> dict[str, Any]:
    """The ``file_search_call`` output item; its passages only when the request's ``include`` asked for them."""
    search = record.file_search
    assert search is not None
    results = None
    if search.results_shown and status == "completed":
        results = [
            {
                "file_id": public_file_id(s.file_id),
                "filename": s.filename,
                "score": s.score,
                "text": s.text,
                "attributes": dict(s.attributes),
            }
            for s in search.sources
        ]
    item_id_ = item_id(record, "fs_", "file_search")
    return {"id": item_id_, "type": "file_search_call", "status": status, "queries": list(search.queries)} | {
        "results": results
    }


def message_item(record: ResponseRecord, text: str, *, status: str) -> dict[str, Any]:
    content = [text_part(text, citation_annotations(record, text))] if status != "in_progress" else []
    item_id_ = item_id(record, "msg_", "output")
    return {"id": item_id_, "type": "message", "status": status, "role": "assistant", "content": content}


def call_item(record: ResponseRecord, call: ToolCall, *, status: str) -> dict[str, Any]:
    return {
        "id": item_id(record, "fc_", call.id),
        "type": "function_call",
        "status": status,
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
    }


def output_items(record: ResponseRecord) -> list[dict[str, Any]]:
    status = "incomplete" if record.status is not ResponseStatus.COMPLETED else "completed"
    items = [message_item(record, record.output_text, status=status)] if record.output_text else []
    if record.file_search is not None:
        items.insert(0, file_search_item(record, status="completed"))
    return items + [call_item(record, call, status="completed") for call in record.tool_calls]


def usage_body(record: ResponseRecord) -> dict[str, Any]:
    usage = record.usage
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": usage.cache_write_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def response_body(record: ResponseRecord, *, status: ResponseStatus | None = None) -> dict[str, Any]:
    """The response object; ``status`` shows it in another state than its own (``in_progress`` at a stream's
    start: no output, no usage yet)."""
    shown = status or record.status
    done = shown not in (ResponseStatus.QUEUED, ResponseStatus.IN_PROGRESS)
    error = None
    if shown is ResponseStatus.FAILED:
        error = {"code": _ERROR_CODES.get(record.error_code or "", "server_error"), "message": record.error_message}
    incomplete = {"reason": record.incomplete_reason} if shown is ResponseStatus.INCOMPLETE else None
    previous = None if record.previous_response_id is None else public_id(record.previous_response_id)
    body: dict[str, Any] = {
        "id": record.public_id,
        "object": "response",
        "created_at": _seconds(record.created_at),
        "status": shown.value,
        "completed_at": _seconds(record.completed_at) if done else None,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": record.instructions,
        "model": record.model,
        "output": output_items(record) if done else [],
        "previous_response_id": previous,
        "usage": usage_body(record) if done else None,
    }
    settings: dict[str, Any] = orjson.loads(record.settings_json)
    return body | settings


def input_item(record: ResponseRecord, message: ChatMessage, index: int) -> Iterator[dict[str, Any]]:
    """One input message as the items it came from: a message, then its function calls; or a call's output."""
    if message.role is ChatRole.TOOL:
        yield {
            "id": item_id(record, "fco_", str(index)),
            "type": "function_call_output",
            "status": "completed",
            "call_id": message.tool_call_id,
            "output": message.content,
        }
        return
    if message.content or not message.tool_calls:
        kind = "output_text" if message.role is ChatRole.ASSISTANT else "input_text"
        role = "system" if message.role is ChatRole.SYSTEM else message.role.value
        content = [{"type": kind, "text": message.content}]
        item = {"type": "message", "role": role, "status": "completed", "content": content}
        yield {"id": item_id(record, "msg_", str(index)), **item}
    for call in message.tool_calls:
        yield call_item(record, call, status="completed") | {"id": item_id(record, "fc_", f"{index}:{call.id}")}


def input_items_body(record: ResponseRecord, *, order: str, after: str | None, limit: int) -> dict[str, Any]:
    """``GET /v1/responses/{id}/input_items``: this request's own input, newest first unless ``order`` is asc."""
    items = [item for index, message in enumerate(record.input) for item in input_item(record, message, index)]
    if order != "asc":
        items.reverse()
    if after is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }


def deleted_body(response_id: str) -> dict[str, Any]:
    return {"id": response_id, "object": "response", "deleted": True}
