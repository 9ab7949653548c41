"""SQLAlchemy adapter for the chat context's repository: conversations and their messages."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, insert, literal, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from domain.chat.model import Conversation, Message, PageCursor
from domain.chat.ports import ConversationRepository
from domain.shared.errors import NotFound
from infrastructure.db.errors import is_foreign_key_violation
from infrastructure.db.mapping import (
    conversation_from_row,
    conversation_values,
    message_from_row,
    message_values,
)
from infrastructure.db.repositories.base import SqlAlchemyRepository
from infrastructure.db.tables import conversations, messages

CONVERSATION_NOT_FOUND = "conversation not found"


class SqlAlchemyConversationRepository(SqlAlchemyRepository, ConversationRepository):
    async def add(self, conversation: Conversation) -> None:
        try:
            await self._session.execute(insert(conversations).values(conversation_values(conversation)))
        except IntegrityError as exc:
            if is_foreign_key_violation(exc):
                raise NotFound(f"user {conversation.owner_id} not found") from exc
            raise

    async def get_owned(self, conversation_id: uuid.UUID, owner_id: uuid.UUID) -> Conversation:
        statement = select(conversations).where(
            conversations.c.id == conversation_id, conversations.c.owner_id == owner_id
        )
        row = (await self._session.execute(statement)).mappings().first()
        if row is None:
            raise NotFound(CONVERSATION_NOT_FOUND)
        return conversation_from_row(row)

    async def list_by_owner(self, owner_id: uuid.UUID, *, limit: int, after: PageCursor | None) -> list[Conversation]:
        if limit <= 0:
            return []
        statement = select(conversations).where(conversations.c.owner_id == owner_id)
        if after is not None:
            # Row-value comparison: PostgreSQL and SQLite (3.15+) both walk the (owner, created_at, id) index.
            # Typed binds: an untyped datetime would skip UTCDateTime and compare wrongly on SQLite.
            position = tuple_(conversations.c.created_at, conversations.c.id)
            cursor = tuple_(
                literal(after.created_at, conversations.c.created_at.type),
                literal(after.id, conversations.c.id.type),
            )
            statement = statement.where(position < cursor)
        statement = statement.order_by(conversations.c.created_at.desc(), conversations.c.id.desc()).limit(limit)
        return [conversation_from_row(row) for row in (await self._session.execute(statement)).mappings()]

    async def count_by_owner(self, owner_id: uuid.UUID) -> int:
        statement = select(func.count()).select_from(conversations).where(conversations.c.owner_id == owner_id)
        return (await self._session.execute(statement)).scalar_one()

    async def update(self, conversation: Conversation) -> None:
        values = conversation_values(conversation)
        for fixed in ("id", "owner_id", "created_at"):
            del values[fixed]
        statement = update(conversations).where(conversations.c.id == conversation.id).values(values)
        if await self._rowcount(statement) == 0:
            raise NotFound(CONVERSATION_NOT_FOUND)

    async def touch(self, conversation_id: uuid.UUID, owner_id: uuid.UUID, at: datetime) -> None:
        statement = (
            update(conversations)
            .where(conversations.c.id == conversation_id, conversations.c.owner_id == owner_id)
            .values(updated_at=at)
        )
        if await self._rowcount(statement) == 0:
            raise NotFound(CONVERSATION_NOT_FOUND)

    async def delete(self, conversation: Conversation) -> None:
        """Messages go with it through the foreign key's ``ON DELETE CASCADE``."""
        await self._session.execute(delete(conversations).where(conversations.c.id == conversation.id))

    async def add_messages(self, *new_messages: Message) -> None:
        if not new_messages:
            return
        try:
            await self._session.execute(insert(messages), [message_values(message) for message in new_messages])
        except IntegrityError as exc:
            if is_foreign_key_violation(exc):  # the conversation was deleted under us
                raise NotFound(CONVERSATION_NOT_FOUND) from exc
            raise

    async def count_messages(self, conversation_id: uuid.UUID) -> int:
        statement = select(func.count()).select_from(messages).where(messages.c.conversation_id == conversation_id)
        return (await self._session.execute(statement)).scalar_one()

    async def list_messages(self, conversation_id: uuid.UUID, *, limit: int | None = None) -> list[Message]:
        statement = select(messages).where(messages.c.conversation_id == conversation_id)
        if limit is None:
            statement = statement.order_by(messages.c.created_at, messages.c.id)
            return [message_from_row(row) for row in (await self._session.execute(statement)).mappings()]
        if limit <= 0:
            return []
        statement = statement.order_by(messages.c.created_at.desc(), messages.c.id.desc()).limit(limit)
        newest = [message_from_row(row) for row in (await self._session.execute(statement)).mappings()]
        newest.reverse()
        return newest
