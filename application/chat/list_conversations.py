from __future__ import annotations

from dataclasses import dataclass

from application.auth.access import require_scope
from application.pagination import Page, check_page_size, decode_cursor, encode_cursor
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal, Scope
from domain.chat.model import Conversation, PageCursor


@dataclass(frozen=True)
class ListConversationsCommand:
    principal: Principal
    limit: int = 20
    cursor: str | None = None


class ListConversations:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, command: ListConversationsCommand) -> Page[Conversation]:
        require_scope(command.principal, Scope.CHAT)
        check_page_size(command.limit)
        after = decode_cursor(command.cursor) if command.cursor else None
        async with self._uow() as uow:
            rows = await uow.conversations.list_by_owner(
                command.principal.user_id, limit=command.limit + 1, after=after
            )
        items = rows[: command.limit]
        next_cursor = None
        if len(rows) > command.limit:
            last = items[-1]
            next_cursor = encode_cursor(PageCursor(created_at=last.created_at, id=last.id))
        return Page(items=items, next_cursor=next_cursor)
