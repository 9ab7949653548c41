"""A page of batches, newest first: the caller's of one kind (a front door's list), or, natively, the caller's of
both kinds, every user's for an administrator who asks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.auth.access import require_admin
from application.files.access import require_files_scope
from application.unit_of_work import UnitOfWorkFactory
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
    kind: BatchKind | None = BatchKind.OPENAI
    all_users: bool = False  # administrators only


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
        if not 1 <= query.limit <= MAX_LIMIT:
            raise RuleViolation(f"limit: must be between 1 and {MAX_LIMIT}")
        owner = None if query.all_users else query.principal.user_id
        async with self._uow() as uow:
            cursor = None
            if query.after is not None:
                after = await uow.batches.get(query.after)
                if owner is not None and (after.owner_id != owner or query.kind not in (None, after.kind)):
                    raise BatchNotFound("after: no such batch")
                cursor = BatchPageCursor(after.created_at, after.id)
            found_page = await uow.batches.list_page(
                owner_id=owner, kind=query.kind, limit=query.limit + 1, after=cursor
            )
        return BatchPage(found_page[: query.limit], len(found_page) > query.limit)
