from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.auth.access import require_scope
from application.chat.file_search import checked_stores
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal, Scope
from domain.chat.model import Conversation, check_system_prompt, clean_title
from domain.llm.model import ModelKind
from domain.llm.ports import ModelCatalog
from domain.shared.clock import Clock
from domain.shared.errors import RuleViolation
from domain.shared.ids import new_id


@dataclass(frozen=True)
class CreateConversationCommand:
    principal: Principal
    title: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    vector_store_ids: tuple[uuid.UUID, ...] = ()  # the caller's stores its messages are answered from


def check_model(catalog: ModelCatalog, model: str) -> None:
    spec = catalog.find(model)
    if spec is None:
        raise RuleViolation(f"unknown model '{model}'")
    if spec.kind is not ModelKind.CHAT:
        raise RuleViolation(f"model '{model}' is an {spec.kind} model; a conversation needs a chat model")


class CreateConversation:
    def __init__(
        self, *, uow: UnitOfWorkFactory, catalog: ModelCatalog, clock: Clock, max_conversations_per_user: int
    ) -> None:
        self._uow = uow
        self._catalog = catalog
        self._clock = clock
        self._max = max_conversations_per_user

    async def execute(self, command: CreateConversationCommand) -> Conversation:
        require_scope(command.principal, Scope.CHAT)
        model = command.model or self._catalog.default_model
        check_model(self._catalog, model)
        check_system_prompt(command.system_prompt)
        now = self._clock.now()
        conversation = Conversation(
            id=new_id(),
            owner_id=command.principal.user_id,
            title=clean_title(command.title),
            model=model,
            system_prompt=command.system_prompt,
            created_at=now,
            updated_at=now,
        )
        async with self._uow() as uow:
            if await uow.conversations.count_by_owner(command.principal.user_id) >= self._max:
                raise RuleViolation(f"at most {self._max} conversations per user")
            if command.vector_store_ids:
                conversation.vector_store_ids = await checked_stores(
                    uow, command.vector_store_ids, command.principal.user_id, now
                )
            await uow.conversations.add(conversation)
            await uow.commit()
        return conversation
