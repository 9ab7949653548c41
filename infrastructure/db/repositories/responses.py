"""SQLAlchemy adapter of the responses repository, and the mapping of a response to its row."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import RowMapping, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from domain.llm.model import (
    ChatMessage,
    ChatRole,
    CompletionRequest,
    Reasoning,
    ReasoningEffort,
    ResponseFormat,
    ResponseFormatType,
    TokenUsage,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
)
from domain.responses.errors import response_not_found
from domain.responses.model import BackgroundCall, ResponseRecord, ResponseStatus, public_id
from domain.responses.ports import ResponseRepository
from domain.shared.errors import NotFound
from infrastructure.db.citations_json import file_search_from_json, file_search_json
from infrastructure.db.errors import is_foreign_key_violation
from infrastructure.db.repositories.base import SqlAlchemyRepository
from infrastructure.db.tables import responses

_FIXED = ("id", "user_id", "created_at")


class SqlAlchemyResponseRepository(SqlAlchemyRepository, ResponseRepository):
    async def add(self, record: ResponseRecord) -> None:
        try:
            async with self._recoverable():
                await self._session.execute(insert(responses).values(response_values(record)))
        except IntegrityError as exc:
            if is_foreign_key_violation(exc):
                raise NotFound(f"user {record.owner_id} not found") from exc
            raise

    async def get_owned(self, response_id: uuid.UUID, owner_id: uuid.UUID) -> ResponseRecord:
        statement = select(responses).where(responses.c.id == response_id, responses.c.user_id == owner_id)
        row = (await self._session.execute(statement)).mappings().first()
        if row is None:
            raise response_not_found(public_id(response_id))
        return response_from_row(row)

    async def update(self, record: ResponseRecord) -> None:
        values = {k: v for k, v in response_values(record).items() if k not in _FIXED}
        statement = update(responses).where(responses.c.id == record.id).values(values)
        if await self._rowcount(statement) == 0:
            raise response_not_found(record.public_id)

    async def find(self, response_id: uuid.UUID) -> ResponseRecord | None:
        row = (await self._session.execute(select(responses).where(responses.c.id == response_id))).mappings().first()
        return None if row is None else response_from_row(row)

    async def update_if(self, record: ResponseRecord, status: ResponseStatus) -> bool:
        values = {k: v for k, v in response_values(record).items() if k not in _FIXED}
        where = (responses.c.id == record.id, responses.c.status == status.value)
        return await self._rowcount(update(responses).where(*where).values(values)) == 1

    async def list_unfinished_background(self, limit: int) -> list[ResponseRecord]:
        unfinished = (ResponseStatus.QUEUED.value, ResponseStatus.IN_PROGRESS.value)
        statement = (
            select(responses)
            .where(responses.c.status.in_(unfinished), responses.c.background.is_(True))
            .order_by(responses.c.created_at)
            .limit(limit)
        )
        return [response_from_row(row) for row in (await self._session.execute(statement)).mappings()]

    async def delete_owned(self, response_id: uuid.UUID, owner_id: uuid.UUID) -> None:
        statement = delete(responses).where(responses.c.id == response_id, responses.c.user_id == owner_id)
        if await self._rowcount(statement) == 0:
            raise response_not_found(public_id(response_id))


def messages_json(messages: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    return [
        {
            "role": m.role.value,
            "content": m.content,
            "tool_calls": calls_json(m.tool_calls),
            "tool_call_id": m.tool_call_id,
        }
        for m in messages
    ]


def messages_from_json(values: list[dict[str, Any]]) -> tuple[ChatMessage, ...]:
    return tuple(
        ChatMessage(
            ChatRole(v["role"]),
            v["content"],
            tool_calls=calls_from_json(v["tool_calls"]),
            tool_call_id=v["tool_call_id"],
        )
        for v in values
    )


def calls_json(calls: tuple[ToolCall, ...]) -> list[list[str]]:
    return [[c.id, c.name, c.arguments] for c in calls]


def calls_from_json(values: list[list[str]]) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(id=i, name=n, arguments=a) for i, n, a in values)


def response_values(record: ResponseRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "user_id": record.owner_id,
        "model": record.model,
        "status": record.status.value,
        "created_at": record.created_at,
        "completed_at": record.completed_at,
        "previous_response_id": record.previous_response_id,
        "instructions": record.instructions,
        "history": messages_json(record.history),
        "input": messages_json(record.input),
        "output_text": record.output_text,
        "tool_calls": calls_json(record.tool_calls),
        "input_tokens": record.usage.input_tokens,
        "output_tokens": record.usage.output_tokens,
        "cached_tokens": record.usage.cached_tokens,
        "cache_write_tokens": record.usage.cache_write_tokens,
        "incomplete_reason": record.incomplete_reason,
        "error_code": record.error_code,
        "error_message": record.error_message,
        "settings": record.settings_json,
        "file_search": file_search_json(record.file_search),
        "background": record.background,
        "call": None if record.call is None else call_json(record.call),
        "heartbeat_at": record.heartbeat_at,
        "stream_marks": list(record.marks) if record.marks else None,
    }


def response_from_row(row: RowMapping) -> ResponseRecord:
    return ResponseRecord(
        id=row["id"],
        owner_id=row["user_id"],
        model=row["model"],
        status=ResponseStatus(row["status"]),
        created_at=row["created_at"],
        completed_at=row["completed_at"],
        previous_response_id=row["previous_response_id"],
        instructions=row["instructions"],
        history=messages_from_json(row["history"]),
        input=messages_from_json(row["input"]),
        output_text=row["output_text"],
        tool_calls=calls_from_json(row["tool_calls"]),
        usage=TokenUsage(
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cached_tokens=row["cached_tokens"],
            cache_write_tokens=row["cache_write_tokens"],
        ),
        incomplete_reason=row["incomplete_reason"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        settings_json=row["settings"],
        file_search=file_search_from_json(row["file_search"]),
        background=row["background"],
        call=None if row["call"] is None else call_from_json(row["call"]),
        heartbeat_at=row["heartbeat_at"],
        marks=tuple(row["stream_marks"] or ()),
    )


def call_json(call: BackgroundCall) -> dict[str, Any]:
    """A background call's request settings (its messages are the record's own) and its caller's context."""
    request = call.request
    choice, format_, reasoning = request.tool_choice, request.response_format, request.reasoning
    return {
        "model": request.model,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        "stop": list(request.stop),
        "tools": [[t.name, t.description, t.parameters_json] for t in request.tools],
        "tool_choice": None if choice is None else [choice.mode.value, choice.name, choice.parallel],
        "response_format": None
        if format_ is None
        else [format_.type.value, format_.schema_json, format_.name, format_.strict],
        "user": request.user,
        "reasoning": None
        if reasoning is None
        else [None if reasoning.effort is None else reasoning.effort.value, reasoning.summary],
        "api_key_id": None if call.api_key_id is None else str(call.api_key_id),
        "request_id": call.request_id,
        "cache": call.cache,
    }


def call_from_json(value: dict[str, Any]) -> BackgroundCall:
    choice, format_, reasoning = value["tool_choice"], value["response_format"], value["reasoning"]
    request = CompletionRequest(
        model=value["model"],
        messages=(),
        temperature=value["temperature"],
        top_p=value["top_p"],
        max_tokens=value["max_tokens"],
        stop=tuple(value["stop"]),
        tools=tuple(ToolDefinition(name=n, description=d, parameters_json=p) for n, d, p in value["tools"]),
        tool_choice=None
        if choice is None
        else ToolChoice(mode=ToolChoiceMode(choice[0]), name=choice[1], parallel=choice[2]),
        response_format=None
        if format_ is None
        else ResponseFormat(
            type=ResponseFormatType(format_[0]), schema_json=format_[1], name=format_[2], strict=format_[3]
        ),
        user=value["user"],
        reasoning=None
        if reasoning is None
        else Reasoning(effort=None if reasoning[0] is None else ReasoningEffort(reasoning[0]), summary=reasoning[1]),
    )
    api_key_id = value["api_key_id"]
    return BackgroundCall(
        request=request,
        api_key_id=None if api_key_id is None else uuid.UUID(api_key_id),
        request_id=value["request_id"],
        cache=value["cache"],
    )
