"""Many short transactions at once, the way concurrent requests use the database.

On SQLite this pins a design choice in ``infrastructure.db.engine``: transactions begin at the first write,
so a use case that reads, then writes after another one committed, waits its turn instead of failing with
"database is locked".
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.auth.model import Role, User
from domain.chat.model import Conversation, Message
from domain.llm.model import ChatRole
from infrastructure.db.unit_of_work import SqlAlchemyUnitOfWorkFactory

pytestmark = pytest.mark.integration

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def session_factory(request: pytest.FixtureRequest) -> async_sessionmaker[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = request.getfixturevalue(f"{request.param}_session_factory")
    return factory


async def test_concurrent_read_then_write_transactions_all_commit(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    uow_factory = SqlAlchemyUnitOfWorkFactory(session_factory)
    owner = User(
        id=uuid.uuid4(),
        email="busy@example.com",
        password_hash="x",
        role=Role.MEMBER,
        is_active=True,
        created_at=T0,
        updated_at=T0,
    )
    conversation = Conversation(
        id=uuid.uuid4(),
        owner_id=owner.id,
        title="t",
        model="m",
        system_prompt=None,
        created_at=T0,
        updated_at=T0,
    )
    async with uow_factory() as uow:
        await uow.users.add(owner)
        await uow.conversations.add(conversation)
        await uow.commit()

    async def post(turn: int) -> None:
        async with uow_factory() as uow:
            current = await uow.conversations.get_owned(conversation.id, owner.id)
            await uow.conversations.list_messages(conversation.id, limit=20)
            await asyncio.sleep(0)  # let the others read too before anyone writes
            sent = T0 + timedelta(seconds=turn)
            message = Message(
                id=uuid.uuid4(),
                conversation_id=conversation.id,
                role=ChatRole.USER,
                content="hi",
                created_at=sent,
            )
            await uow.conversations.add_messages(message)
            current.updated_at = max(current.updated_at, sent)
            await uow.conversations.update(current)
            await uow.commit()

    await asyncio.gather(*(post(turn) for turn in range(40)))

    async with uow_factory() as uow:
        assert len(await uow.conversations.list_messages(conversation.id)) == 40
