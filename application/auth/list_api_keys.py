from __future__ import annotations

from application.auth.access import require_scope
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import ApiKey, Principal, Scope


class ListApiKeys:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, principal: Principal) -> list[ApiKey]:
        require_scope(principal, Scope.KEYS)
        async with self._uow() as uow:
            return await uow.api_keys.list_by_owner(principal.user_id)
