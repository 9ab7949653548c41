"""The responses repository behaves the same on every adapter: stored whole, owner-scoped, updated, deleted."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest

from application.unit_of_work import UnitOfWorkFactory
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
from domain.responses.errors import ResponseNotFound
from domain.responses.model import BackgroundCall, ResponseRecord, ResponseStatus
from domain.shared.errors import NotFound
from domain.shared.ids import new_id
from tests.contract.test_repositories import T0, at, saved_user

pytestmark = pytest.mark.contract
CALL = ToolCall(id="call_1", name="get_weather", arguments='{"city":"Par\\u00eds"}')


def a_response(owner_id: uuid.UUID, **overrides: Any) -> ResponseRecord:
    values: dict[str, Any] = {
        "id": new_id(),
        "owner_id": owner_id,
        "model": "local",
        "status": ResponseStatus.COMPLETED,
        "created_at": T0,
        "completed_at": at(2),
        "instructions": "Be brief.",
        "history": (
            ChatMessage(ChatRole.USER, "weather?"),
            ChatMessage(ChatRole.ASSISTANT, "", tool_calls=(CALL,)),
        ),
        "input": (ChatMessage(ChatRole.TOOL, "sunny, 21 °C", tool_call_id="call_1"),),
        "output_text": "It is sunny.",
        "usage": TokenUsage(input_tokens=12, output_tokens=4, cached_tokens=2, cache_write_tokens=3),
        "settings_json": '{"temperature":0.5}',
    }
    return ResponseRecord(**(values | overrides))


class TestResponseRepository:
    async def test_add_get_update_delete(self, uow_factory: UnitOfWorkFactory) -> None:
        user = await saved_user(uow_factory)
        record = a_response(user.id, previous_response_id=new_id(), tool_calls=(CALL,))
        async with uow_factory() as uow:
            await uow.responses.add(record)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.responses.get_owned(record.id, user.id) == record
            record.status, record.error_code, record.error_message = ResponseStatus.FAILED, "upstream", "it broke"
            record.incomplete_reason = None
            await uow.responses.update(record)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.responses.get_owned(record.id, user.id) == record
            await uow.responses.delete_owned(record.id, user.id)
            await uow.commit()
        async with uow_factory() as uow:
            with pytest.raises(ResponseNotFound):
                await uow.responses.get_owned(record.id, user.id)
            with pytest.raises(ResponseNotFound):
                await uow.responses.delete_owned(record.id, user.id)
            with pytest.raises(ResponseNotFound):
                await uow.responses.update(record)

    async def test_someone_elses_response_is_not_found(self, uow_factory: UnitOfWorkFactory) -> None:
        ada, bob = await saved_user(uow_factory), await saved_user(uow_factory)
        record = a_response(ada.id)
        async with uow_factory() as uow:
            await uow.responses.add(record)
            await uow.commit()
        async with uow_factory() as uow:
            with pytest.raises(ResponseNotFound):
                await uow.responses.get_owned(record.id, bob.id)
            with pytest.raises(ResponseNotFound):
                await uow.responses.delete_owned(record.id, bob.id)
        async with uow_factory() as uow:
            assert (await uow.responses.get_owned(record.id, ada.id)).id == record.id

    async def test_update_keeps_owner_and_creation_time(self, uow_factory: UnitOfWorkFactory) -> None:
        ada, bob = await saved_user(uow_factory), await saved_user(uow_factory)
        record = a_response(ada.id, status=ResponseStatus.IN_PROGRESS, completed_at=None)
        async with uow_factory() as uow:
            await uow.responses.add(record)
            await uow.commit()
        async with uow_factory() as uow:
            changed = a_response(bob.id, id=record.id, created_at=at(60), status=ResponseStatus.CANCELLED)
            await uow.responses.update(changed)
            await uow.commit()
        async with uow_factory() as uow:
            stored = await uow.responses.get_owned(record.id, ada.id)
            assert (stored.owner_id, stored.created_at, stored.status) == (ada.id, T0, ResponseStatus.CANCELLED)

    async def test_an_uncommitted_response_is_not_kept(self, uow_factory: UnitOfWorkFactory) -> None:
        user = await saved_user(uow_factory)
        record = a_response(user.id)
        async with uow_factory() as uow:
            await uow.responses.add(record)
        async with uow_factory() as uow:
            with pytest.raises(ResponseNotFound):
                await uow.responses.get_owned(record.id, user.id)

    async def test_an_unknown_owner_is_refused(self, uow_factory: UnitOfWorkFactory) -> None:
        async with uow_factory() as uow:
            with pytest.raises(NotFound):
                await uow.responses.add(a_response(uuid.uuid4()))


def a_background_call() -> BackgroundCall:
    request = CompletionRequest(
        model="local",
        messages=(),
        temperature=0.2,
        top_p=0.9,
        max_tokens=50,
        stop=("END",),
        tools=(ToolDefinition(name="get_weather", description="weather", parameters_json='{"type":"object"}'),),
        tool_choice=ToolChoice(mode=ToolChoiceMode.REQUIRED, name="get_weather", parallel=False),
        response_format=ResponseFormat(
            type=ResponseFormatType.JSON_SCHEMA, schema_json='{"type":"object"}', name="x", strict=True
        ),
        user="end-user-1",
        reasoning=Reasoning(effort=ReasoningEffort.HIGH, summary="auto"),
    )
    return BackgroundCall(request=request, api_key_id=new_id(), request_id="req-1", cache="bypass")


class TestBackgroundResponses:
    async def test_the_call_and_the_heartbeat_round_trip(self, uow_factory: UnitOfWorkFactory) -> None:
        user = await saved_user(uow_factory)
        record = a_response(
            user.id, status=ResponseStatus.QUEUED, background=True, call=a_background_call(), heartbeat_at=at(3)
        )
        async with uow_factory() as uow:
            await uow.responses.add(record)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.responses.find(record.id) == record
            assert await uow.responses.find(new_id()) is None

    async def test_a_conditional_update_applies_only_in_the_status_it_expects(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        user = await saved_user(uow_factory)
        record = a_response(user.id, status=ResponseStatus.QUEUED, background=True)
        async with uow_factory() as uow:
            await uow.responses.add(record)
            await uow.commit()
        claimed = replace(record, status=ResponseStatus.IN_PROGRESS, heartbeat_at=at(1))
        async with uow_factory() as uow:
            assert await uow.responses.update_if(claimed, ResponseStatus.QUEUED)
            await uow.commit()
        async with uow_factory() as uow:  # a second claim finds it in progress already
            assert not await uow.responses.update_if(claimed, ResponseStatus.QUEUED)
            assert not await uow.responses.update_if(replace(record, id=new_id()), ResponseStatus.QUEUED)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.responses.find(record.id) == claimed

    async def test_unfinished_background_responses_oldest_first(self, uow_factory: UnitOfWorkFactory) -> None:
        user = await saved_user(uow_factory)
        queued = a_response(user.id, status=ResponseStatus.QUEUED, background=True, created_at=at(2))
        running = a_response(user.id, status=ResponseStatus.IN_PROGRESS, background=True, created_at=at(1))
        done = a_response(user.id, status=ResponseStatus.COMPLETED, background=True)
        foreground = a_response(user.id, status=ResponseStatus.IN_PROGRESS)
        async with uow_factory() as uow:
            for record in (queued, running, done, foreground):
                await uow.responses.add(record)
            await uow.commit()
        async with uow_factory() as uow:
            found = [r.id for r in await uow.responses.list_unfinished_background(10)]
        assert [i for i in found if i in {queued.id, running.id, done.id, foreground.id}] == [running.id, queued.id]
