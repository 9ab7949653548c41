"""A page of a store's files, optionally only those of one status (OpenAI's ``filter``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.unit_of_work import UnitOfWorkFactory
from application.vectors.access import owned_store, require_vectors_scope, store_file
from application.vectors.file_batches import FileBatchQuery, owned_batch
from application.vectors.list_vector_stores import check_limit
from domain.auth.model import Principal
from domain.files.model import parse_file_id
from domain.shared.errors import RuleViolation
from domain.vectors.stores import FileStatus, StorePageCursor, VectorStoreFile


@dataclass(frozen=True, kw_only=True)
class ListStoreFilesQuery:
    principal: Principal
    store_id: uuid.UUID
    limit: int = 20
    newest_first: bool = True
    after: str | None = None
    before: str | None = None
    status: str | None = None
    batch_id: uuid.UUID | None = None  # only the files of this batch of the store


@dataclass(frozen=True)
class StoreFilePage:
    files: list[VectorStoreFile]
    has_more: bool


class ListStoreFiles:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, query: ListStoreFilesQuery) -> StoreFilePage:
        require_vectors_scope(query.principal)
        check_limit(query.limit)
        status = _status(query.status)
        backwards = query.before is not None and query.after is None
        anchor = query.before if backwards else query.after
        async with self._uow() as uow:
            store = await owned_store(uow, query.store_id, query.principal.user_id)
            file_ids = None
            if query.batch_id is not None:
                batch = await owned_batch(uow, FileBatchQuery(query.principal, store.id, query.batch_id))
                file_ids = batch.file_ids
            cursor = None
            if anchor is not None:
                at = await store_file(uow, store, parse_file_id(anchor))
                cursor = StorePageCursor(at.created_at, at.file_id)
            rows = await uow.vector_store_files.list_by_store(
                store.id,
                limit=query.limit + 1,
                newest_first=query.newest_first != backwards,
                status=status,
                after=cursor,
                file_ids=file_ids,
            )
        page = rows[: query.limit]
        return StoreFilePage(page[::-1] if backwards else page, len(rows) > query.limit)


def _status(value: str | None) -> FileStatus | None:
    if value is None:
        return None
    try:
        return FileStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in FileStatus)
        raise RuleViolation(f"filter: '{value[:50]}' is not one of {allowed}") from None
