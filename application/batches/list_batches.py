"""A page of batches, newest first: the caller's of one kind (a front door's list), or, natively, the caller's of
both kinds, every user's for an administrator who asks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.auth.access import require_admin
from application.files.access import require_files_scope
from application.unit_of_work import UnitOfWork, UnitOfWorkFactory
from domain.auth.model import Principal
from domain.batches.errors import BatchNotFound
from domain.batches.model import Batch, BatchKind, BatchPageCursor
from domain.shared.errors import RuleViolation

MAX_LIMIT = 100


@dataclass(frozen=True, kw_only=True)
class ListBatchesQuery:
    principal: Principal
    limit: int = 20
    after: uuid.UUID | None = None
    before: uuid.UUID | None = None  # the page just newer than this batch (Anthropic's ``before_id``)
    kind: BatchKind | None = BatchKind.OPENAI
    all_users: bool = False  # administrators only
    max_limit: int = MAX_LIMIT


@dataclass(frozen=True)
class BatchPage:
    batches: list[Batch]
    has_more: bool


class ListBatches:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, query: ListBatchesQuery) -> BatchPage:
        require_files_scope(query.principal)
        if query.all_users:
            require_admin(query.principal)
        if not 1 <= query.limit <= query.max_limit:
            raise RuleViolation(f"limit: must be between 1 and {query.max_limit}")
        if query.after is not None and query.before is not None:
            raise RuleViolation("after and before: give at most one")
        owner = None if query.all_users else query.principal.user_id
        async with self._uow() as uow:
            after = await self._cursor(uow, query.after, owner, query.kind, "after")
            before = await self._cursor(uow, query.before, owner, query.kind, "before")
            found_page = await uow.batches.list_page(
                owner_id=owner, kind=query.kind, limit=query.limit + 1, after=after, before=before
            )
        if before is not None:  # the extra one is the newest, furthest from the cursor
            return BatchPage(found_page[-query.limit :], len(found_page) > query.limit)
        return BatchPage(found_page[: query.limit], len(found_page) > query.limit)

    @staticmethod
    async def _cursor(
        uow: UnitOfWork, batch_id: uuid.UUID | None, owner: uuid.UUID | None, kind: BatchKind | None, name: str
    ) -> BatchPageCursor | None:
        if batch_id is None:
            return None
        try:
            batch = await uow.batches.get(batch_id)
        except BatchNotFound:
            raise BatchNotFound(f"{name}: no such batch") from None
        if owner is not None and (batch.owner_id != owner or kind not in (None, batch.kind)):
            raise BatchNotFound(f"{name}: no such batch")
        return BatchPageCursor(batch.created_at, batch.id)
