"""On PostgreSQL, whose ``text`` cannot hold a NUL: a message with one makes no model call and no usage record,
whether it comes through the HTTP edge or straight to the use case; an upstream's NUL is stored as U+FFFD."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dependency_injector import providers
from sqlalchemy import func, select

from application.chat.exchange import PostMessageCommand
from domain.llm.model import Completion, CompletionRequest, StreamEvent
from domain.llm.ports import LLMProvider
from domain.shared.errors import RuleViolation
from infrastructure.db.tables import usage_records
from interfaces.container import Container
from interfaces.http.app import create_app
from tests.api.conftest import Api, make_settings, running_api
from tests.fakes.llm import ScriptedProvider

pytestmark = pytest.mark.integration


class CountingProvider(LLMProvider):
    """The real router, counting the calls that reach it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    async def complete(self, request: CompletionRequest, *, caller: uuid.UUID | None = None) -> Completion:
        self.calls += 1
        return await self.inner.complete(request)  # type: ignore[no-any-return]

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        self.calls += 1
        async for event in self.inner.stream(request):
            yield event

    async def aclose(self) -> None:
        aclose = getattr(self.inner, "aclose", None)
        if aclose is not None:
            await aclose()


async def _usage_records(api: Api) -> int:
    container = api.app.state.container
    await container.usage_recorder().flush()
    async with container.engine().connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(usage_records))).scalar_one())


async def test_a_message_with_nul_makes_no_model_call_and_no_usage_record(postgres_url: str) -> None:
    settings = make_settings(database_url=postgres_url)
    container = Container(settings=settings)
    counting = CountingProvider(container.llm())
    container.llm.override(providers.Object(counting))
    async with running_api(settings, create_app(settings, container=container)) as api:
        before = await _usage_records(api)
        ada = await api.user("nul-ada@example.com")
        cid = (await api.http.post("/api/v1/conversations", json={}, headers=ada)).json()["id"]
        for body in ({"content": "hi\u0000"}, {"content": "hi\u0000", "stream": True}):
            posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json=body, headers=ada)
            assert posted.status_code == 422, posted.text
        principal = await container.authenticate().execute(ada["Authorization"].removeprefix("Bearer "))
        with pytest.raises(RuleViolation, match="NUL"):  # past the edge, the domain refuses it as well
            await container.post_message().execute(PostMessageCommand(principal, cid, "hi\x00there"))
        assert counting.calls == 0
        assert await _usage_records(api) == before
        stored = (await api.http.get(f"/api/v1/conversations/{cid}", headers=ada)).json()
        assert stored["messages"] == []


async def test_an_upstream_answer_with_nul_is_stored_with_a_replacement_character(postgres_url: str) -> None:
    settings = make_settings(database_url=postgres_url)
    container = Container(settings=settings)
    container.llm.override(providers.Object(CountingProvider(ScriptedProvider(["a\x00", "b"]))))
    async with running_api(settings, create_app(settings, container=container)) as api:
        ada = await api.user("nul-bob@example.com")
        cid = (await api.http.post("/api/v1/conversations", json={}, headers=ada)).json()["id"]
        posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=ada)
        assert posted.status_code == 201, posted.text
        assert posted.json()["assistant_message"]["content"] == "a\ufffdb"
        stored = (await api.http.get(f"/api/v1/conversations/{cid}", headers=ada)).json()
        assert stored["messages"][1]["content"] == "a\ufffdb"
