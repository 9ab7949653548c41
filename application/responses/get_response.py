"""A stored response of the caller's (``GET /v1/responses/{id}`` and its ``input_items``)."""

from __future__ import annotations

import uuid

from application.auth.access import require_scope
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal, Scope
from domain.responses.model import ResponseRecord


class GetResponse:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, principal: Principal, response_id: uuid.UUID) -> ResponseRecord:
        require_scope(principal, Scope.CHAT)
        async with self._uow() as uow:
            return await uow.responses.get_owned(response_id, principal.user_id)
