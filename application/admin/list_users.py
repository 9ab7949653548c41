from __future__ import annotations

from dataclasses import dataclass

from application.auth.access import require_admin
from application.pagination import check_page_size
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal, User
from domain.shared.errors import RuleViolation


@dataclass(frozen=True)
class ListUsersCommand:
    principal: Principal
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class UserPage:
    items: list[User]
    total: int


class ListUsers:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, command: ListUsersCommand) -> UserPage:
        require_admin(command.principal)
        check_page_size(command.limit)
        if command.offset < 0:
            raise RuleViolation("offset must not be negative")
        async with self._uow() as uow:
            items = await uow.users.list_page(limit=command.limit, offset=command.offset)
            total = await uow.users.count()
        return UserPage(items=items, total=total)
