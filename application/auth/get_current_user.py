from __future__ import annotations

from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal, User


class GetCurrentUser:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, principal: Principal) -> User:
        async with self._uow() as uow:
            return await uow.users.get(principal.user_id)
