from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.auth.access import require_scope
from application.chat.create_conversation import check_model
from application.chat.file_search import checked_stores
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal, Scope
from domain.chat.model import Conversation, check_system_prompt, clean_title
from domain.llm.ports import ModelCatalog
from domain.shared.clock import Clock


@dataclass(frozen=True)
class UpdateConversationCommand:
    """Fields left as ``None`` are unchanged; ``clear_system_prompt`` removes the prompt."""

    principal: Principal
    conversation_id: uuid.UUID
    title: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    clear_system_prompt: bool = False
    vector_store_ids: tuple[uuid.UUID, ...] | None = None  # () names none any more


class UpdateConversation:
    def __init__(self, *, uow: UnitOfWorkFactory, catalog: ModelCatalog, clock: Clock) -> None:
        self._uow = uow
        self._catalog = catalog
        self._clock = clock

    async def execute(self, command: UpdateConversationCommand) -> Conversation:
        require_scope(command.principal, Scope.CHAT)
        if command.model is not None:
            check_model(self._catalog, command.model)
        check_system_prompt(command.system_prompt)
        async with self._uow() as uow:
            conversation = await uow.conversations.get_owned(command.conversation_id, command.principal.user_id)
            if command.title is not None:
                conversation.title = clean_title(command.title)
            if command.model is not None:
                conversation.model = command.model
            if command.clear_system_prompt:
                conversation.system_prompt = None
            elif command.system_prompt is not None:
                conversation.system_prompt = command.system_prompt
            now = self._clock.now()
            if command.vector_store_ids is not None:
                owner = command.principal.user_id
                conversation.vector_store_ids = await checked_stores(uow, command.vector_store_ids, owner, now)
            conversation.updated_at = now
            await uow.conversations.update(conversation)
            await uow.commit()
        return conversation
