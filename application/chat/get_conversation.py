from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.auth.access import require_scope
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal, Scope
from domain.chat.model import Conversation, Message


@dataclass(frozen=True)
class GetConversationCommand:
    principal: Principal
    conversation_id: uuid.UUID


@dataclass(frozen=True)
class ConversationWithMessages:
    conversation: Conversation
    messages: list[Message]


class GetConversation:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, command: GetConversationCommand) -> ConversationWithMessages:
        require_scope(command.principal, Scope.CHAT)
        async with self._uow() as uow:
            conversation = await uow.conversations.get_owned(command.conversation_id, command.principal.user_id)
            messages = await uow.conversations.list_messages(conversation.id)
        return ConversationWithMessages(conversation=conversation, messages=messages)
