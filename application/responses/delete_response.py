"""Deleting a stored response of the caller's; responses continuing from it keep the history they inherited."""

from __future__ import annotations

import uuid

from application.auth.access import require_scope
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal, Scope


class DeleteResponse:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, principal: Principal, response_id: uuid.UUID) -> None:
        require_scope(principal, Scope.CHAT)
        async with self._uow() as uow:
            await uow.responses.delete_owned(response_id, principal.user_id)
            await uow.commit()
