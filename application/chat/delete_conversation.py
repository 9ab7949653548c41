from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.auth.access import require_scope
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal, Scope


@dataclass(frozen=True)
class DeleteConversationCommand:
    principal: Principal
    conversation_id: uuid.UUID


class DeleteConversation:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, command: DeleteConversationCommand) -> None:
        require_scope(command.principal, Scope.CHAT)
        async with self._uow() as uow:
            conversation = await uow.conversations.get_owned(command.conversation_id, command.principal.user_id)
            await uow.conversations.delete(conversation)
            await uow.commit()
