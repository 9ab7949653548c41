"""SQLAlchemy adapter for the chat context's repository: conversations and their messages."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CursorResult,
    Insert,
    Integer,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError

from domain.chat.model import Conversation, ConversationHistory, Message, PageCursor
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
_MESSAGE_LABELS = {column.name: f"m_{column.name}" for column in messages.c}


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

    async def get_owned_with_history(
        self, conversation_id: uuid.UUID, owner_id: uuid.UUID, *, limit: int, count_up_to: int
    ) -> ConversationHistory:
        """One statement, one snapshot (see ``_history_statement``)."""
        parameters = {
            "conversation_id": conversation_id,
            "owner_id": owner_id,
            "history": max(limit, 0),
            "count_up_to": max(count_up_to, 0),
        }
        rows = (await self._session.execute(_HISTORY, parameters)).mappings().all()
        if not rows:
            raise NotFound(CONVERSATION_NOT_FOUND)
        history = [
            message_from_row({name: row[label] for name, label in _MESSAGE_LABELS.items()})
            for row in rows
            if row["m_id"] is not None
        ]
        return ConversationHistory(
            conversation=conversation_from_row(rows[0]), messages=history, message_count=rows[0]["message_count"]
        )

    async def add_turns(self, conversation_id: uuid.UUID, owner_id: uuid.UUID, at: datetime, *turns: Message) -> None:
        """On PostgreSQL one statement (see ``_add_turns_statement``). Elsewhere the two statements in a row."""
        if self._session.get_bind().dialect.name != "postgresql" or not turns:
            await super().add_turns(conversation_id, owner_id, at, *turns)
            return
        # No parameter is named like a column: the UPDATE in the CTE would take it as a value to set.
        parameters: dict[str, object] = {"the_conversation": conversation_id, "the_owner": owner_id, "touched_at": at}
        for index, turn in enumerate(turns):
            parameters.update({f"t{index}_{name}": value for name, value in message_values(turn).items()})
        try:
            result: CursorResult[Any] = await self._session.execute(  # type: ignore[assignment]
                _add_turns_statement(len(turns)), parameters
            )
            inserted = result.rowcount
        except IntegrityError as exc:
            if is_foreign_key_violation(exc):
                raise NotFound(CONVERSATION_NOT_FOUND) from exc
            raise
        if inserted == 0:
            raise NotFound(CONVERSATION_NOT_FOUND)


def _history_statement() -> Select[Any]:
    """The conversation (only if it is the owner's) left-joined to its newest ``:history`` messages, oldest first,
    with a count that stops after ``:count_up_to`` entries of the (conversation_id, created_at, id) index. Portable
    (PostgreSQL and SQLite: no LATERAL); built once, so executing it costs no statement construction or cache key."""
    conversation_id = bindparam("conversation_id", type_=messages.c.conversation_id.type)
    newest = (
        select(messages.c.id)
        .where(messages.c.conversation_id == conversation_id)
        .order_by(messages.c.created_at.desc(), messages.c.id.desc())
        .limit(bindparam("history", type_=Integer()))
    )
    counted = (
        select(literal(1))
        .where(messages.c.conversation_id == conversation_id)
        .limit(bindparam("count_up_to", type_=Integer()))
        .subquery()
    )
    message_count = select(func.count()).select_from(counted).scalar_subquery()
    return (
        select(
            *conversations.c,
            message_count.label("message_count"),
            *(column.label(_MESSAGE_LABELS[column.name]) for column in messages.c),
        )
        .select_from(
            conversations.outerjoin(
                messages, and_(messages.c.conversation_id == conversations.c.id, messages.c.id.in_(newest))
            )
        )
        .where(conversations.c.id == conversation_id, conversations.c.owner_id == bindparam("owner_id"))
        .order_by(messages.c.created_at, messages.c.id)
    )


_HISTORY = _history_statement()


@functools.cache
def _add_turns_statement(turns: int) -> Insert:
    """PostgreSQL: the owner-checked ``UPDATE`` of ``updated_at`` in a CTE, and ``turns`` messages (parameters
    ``t<i>_<column>``) inserted only if it touched the row, so nothing is written otherwise. One statement, atomic
    by itself; built once per number of turns."""
    touched = (
        update(conversations)
        .where(conversations.c.id == bindparam("the_conversation"), conversations.c.owner_id == bindparam("the_owner"))
        .values(updated_at=bindparam("touched_at", type_=conversations.c.updated_at.type))
        .returning(conversations.c.id)
        .cte("touched")
    )
    names = [column.name for column in messages.c]
    rows = [
        select(*(bindparam(f"t{index}_{name}", type_=messages.c[name].type) for name in names)).where(
            exists(select(touched.c.id))
        )
        for index in range(turns)
    ]
    source = rows[0] if turns == 1 else union_all(*rows)
    return insert(messages).from_select(names, source).add_cte(touched)
