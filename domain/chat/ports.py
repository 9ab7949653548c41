"""Repository port of the chat context: a conversation and its messages form one aggregate."""

from __future__ import annotations

import abc
import uuid
from datetime import datetime

from domain.chat.model import Conversation, Message, PageCursor


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
