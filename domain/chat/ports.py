"""Repository port of the chat context: a conversation and its messages form one aggregate."""

from __future__ import annotations

import abc
import uuid
from datetime import datetime

from domain.chat.model import Conversation, ConversationHistory, Message, PageCursor


class ConversationRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, conversation: Conversation) -> None: ...

    @abc.abstractmethod
    async def get_owned(self, conversation_id: uuid.UUID, owner_id: uuid.UUID) -> Conversation:
        """Raises ``NotFound`` when missing or owned by someone else: the two must look the same."""

    @abc.abstractmethod
    async def list_by_owner(self, owner_id: uuid.UUID, *, limit: int, after: PageCursor | None) -> list[Conversation]:
        """Newest first (created_at, then id, descending), strictly after ``after``."""

    @abc.abstractmethod
    async def count_by_owner(self, owner_id: uuid.UUID) -> int: ...

    @abc.abstractmethod
    async def update(self, conversation: Conversation) -> None: ...

    @abc.abstractmethod
    async def touch(self, conversation_id: uuid.UUID, owner_id: uuid.UUID, at: datetime) -> None:
        """Sets ``updated_at`` alone (a new message), in one statement; ``NotFound`` when missing or not the owner's."""

    @abc.abstractmethod
    async def delete(self, conversation: Conversation) -> None:
        """Deletes the conversation and its messages."""

    @abc.abstractmethod
    async def add_messages(self, *messages: Message) -> None: ...

    @abc.abstractmethod
    async def count_messages(self, conversation_id: uuid.UUID) -> int: ...

    @abc.abstractmethod
    async def list_messages(self, conversation_id: uuid.UUID, *, limit: int | None = None) -> list[Message]:
        """Oldest first; with ``limit``, the newest ``limit`` messages, still oldest first."""

    async def get_owned_with_history(
        self, conversation_id: uuid.UUID, owner_id: uuid.UUID, *, limit: int, count_up_to: int
    ) -> ConversationHistory:
        """``get_owned``, its newest ``limit`` messages (oldest first) and its message count, counted up to
        ``count_up_to`` (a bound is all a limit check needs). One consistent read: adapters make it one query."""
        conversation = await self.get_owned(conversation_id, owner_id)
        newest = await self.list_messages(conversation_id, limit=limit)
        count = len(newest) if len(newest) < limit else await self.count_messages(conversation_id)
        return ConversationHistory(conversation=conversation, messages=newest, message_count=min(count, count_up_to))

    async def add_turns(self, conversation_id: uuid.UUID, owner_id: uuid.UUID, at: datetime, *turns: Message) -> None:
        """``touch`` then ``add_messages``: ``NotFound`` with nothing written when the conversation is missing or not
        the owner's. Atomic on its own where an adapter makes it one statement (see ``for_one_statement``)."""
        await self.touch(conversation_id, owner_id, at)
        await self.add_messages(*turns)
