"""SQLAlchemy adapters of the vector store repositories, with their row mapping."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import delete, func, insert, select, tuple_, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from domain.shared.errors import NotFound
from domain.vectors.errors import file_batch_not_found, vector_store_file_not_found, vector_store_not_found
from domain.vectors.store_ports import (
    VectorStoreFileBatchRepository,
    VectorStoreFileRepository,
    VectorStoreRepository,
)
from domain.vectors.stores import (
    ChunkingStrategy,
    FileCounts,
    FileErrorCode,
    FileStatus,
    StorePageCursor,
    VectorStore,
    VectorStoreFile,
    VectorStoreFileBatch,
    public_store_id,
)
from infrastructure.db.errors import is_foreign_key_violation
from infrastructure.db.repositories.base import SqlAlchemyRepository
from infrastructure.db.tables import vector_store_file_batches, vector_store_files, vector_stores

_files = vector_store_files.c
_stores = vector_stores.c
_batches = vector_store_file_batches.c


class SqlAlchemyVectorStoreRepository(SqlAlchemyRepository, VectorStoreRepository):
    async def add(self, store: VectorStore) -> None:
        try:
            async with self._recoverable():
                await self._session.execute(insert(vector_stores).values(_store_values(store)))
        except IntegrityError as exc:
            if is_foreign_key_violation(exc):
                raise NotFound(f"user {store.owner_id} not found") from exc
            raise

    async def find_owned(self, store_id: uuid.UUID, owner_id: uuid.UUID) -> VectorStore | None:
        statement = select(vector_stores).where(_stores.id == store_id, _stores.owner_id == owner_id)
        row = (await self._session.execute(statement)).mappings().first()
        return _store_from_row(row) if row is not None else None

    async def update(self, store: VectorStore) -> None:
        statement = update(vector_stores).where(_stores.id == store.id).values(_store_values(store))
        if await self._rowcount(statement) == 0:
            raise vector_store_not_found(public_store_id(store.id))

    async def list_by_owner(
        self, owner_id: uuid.UUID, *, limit: int, newest_first: bool = True, after: StorePageCursor | None = None
    ) -> list[VectorStore]:
        statement = select(vector_stores).where(_stores.owner_id == owner_id)
        if after is not None:
            position, cursor = tuple_(_stores.created_at, _stores.id), tuple_(after.created_at, after.id)
            statement = statement.where(position < cursor if newest_first else position > cursor)
        order = (_stores.created_at.desc(), _stores.id.desc()) if newest_first else (_stores.created_at, _stores.id)
        rows = (await self._session.execute(statement.order_by(*order).limit(max(limit, 0)))).mappings()
        return [_store_from_row(row) for row in rows]

    async def delete(self, store_id: uuid.UUID) -> None:
        # The files' rows explicitly too: SQLite enforces the cascade only with its foreign keys switched on.
        await self._session.execute(delete(vector_store_files).where(_files.store_id == store_id))
        await self._session.execute(delete(vector_store_file_batches).where(_batches.store_id == store_id))
        await self._session.execute(delete(vector_stores).where(_stores.id == store_id))


class SqlAlchemyVectorStoreFileRepository(SqlAlchemyRepository, VectorStoreFileRepository):
    async def add(self, file: VectorStoreFile) -> None:
        try:
            async with self._recoverable():
                await self._session.execute(insert(vector_store_files).values(_file_values(file)))
        except IntegrityError as exc:
            if is_foreign_key_violation(exc):
                raise vector_store_not_found(public_store_id(file.store_id)) from exc
            raise

    async def find(self, store_id: uuid.UUID, file_id: uuid.UUID) -> VectorStoreFile | None:
        statement = select(vector_store_files).where(_files.store_id == store_id, _files.file_id == file_id)
        row = (await self._session.execute(statement)).mappings().first()
        return _file_from_row(row) if row is not None else None

    async def update(self, file: VectorStoreFile) -> None:
        statement = (
            update(vector_store_files)
            .where(_files.store_id == file.store_id, _files.file_id == file.file_id)
            .values(_file_values(file))
        )
        if await self._rowcount(statement) == 0:
            raise vector_store_file_not_found(file.file_id.hex)

    async def list_by_store(
        self,
        store_id: uuid.UUID,
        *,
        limit: int,
        newest_first: bool = True,
        status: FileStatus | None = None,
        after: StorePageCursor | None = None,
        file_ids: Collection[uuid.UUID] | None = None,
    ) -> list[VectorStoreFile]:
        statement = select(vector_store_files).where(_files.store_id == store_id)
        if file_ids is not None:
            statement = statement.where(_files.file_id.in_(list(file_ids)))
        if status is not None:
            statement = statement.where(_files.status == status.value)
        if after is not None:
            position, cursor = tuple_(_files.created_at, _files.file_id), tuple_(after.created_at, after.id)
            statement = statement.where(position < cursor if newest_first else position > cursor)
        order = (
            (_files.created_at.desc(), _files.file_id.desc()) if newest_first else (_files.created_at, _files.file_id)
        )
        rows = (await self._session.execute(statement.order_by(*order).limit(max(limit, 0)))).mappings()
        return [_file_from_row(row) for row in rows]

    async def list_in_progress(self, limit: int) -> list[VectorStoreFile]:
        statement = (
            select(vector_store_files)
            .where(_files.status == FileStatus.IN_PROGRESS.value)
            .order_by(_files.created_at, _files.store_id, _files.file_id)
            .limit(max(limit, 0))
        )
        return [_file_from_row(row) for row in (await self._session.execute(statement)).mappings()]

    async def counts(self, store_id: uuid.UUID, file_ids: Collection[uuid.UUID] | None = None) -> FileCounts:
        statement = select(_files.status, func.count()).where(_files.store_id == store_id).group_by(_files.status)
        if file_ids is not None:
            statement = statement.where(_files.file_id.in_(list(file_ids)))
        found = {row[0]: row[1] for row in await self._session.execute(statement)}
        return FileCounts(**{s.value: int(found.get(s.value, 0)) for s in FileStatus})

    async def usage_bytes(self, store_id: uuid.UUID) -> int:
        statement = select(func.coalesce(func.sum(_files.usage_bytes), 0)).where(_files.store_id == store_id)
        return int((await self._session.execute(statement)).scalar_one())

    async def delete(self, store_id: uuid.UUID, file_id: uuid.UUID) -> None:
        await self._session.execute(
            delete(vector_store_files).where(_files.store_id == store_id, _files.file_id == file_id)
        )


class SqlAlchemyVectorStoreFileBatchRepository(SqlAlchemyRepository, VectorStoreFileBatchRepository):
    async def add(self, batch: VectorStoreFileBatch) -> None:
        try:
            async with self._recoverable():
                await self._session.execute(insert(vector_store_file_batches).values(_batch_values(batch)))
        except IntegrityError as exc:
            if is_foreign_key_violation(exc):
                raise vector_store_not_found(public_store_id(batch.store_id)) from exc
            raise

    async def find(self, store_id: uuid.UUID, batch_id: uuid.UUID) -> VectorStoreFileBatch | None:
        statement = select(vector_store_file_batches).where(_batches.id == batch_id, _batches.store_id == store_id)
        row = (await self._session.execute(statement)).mappings().first()
        if row is None:
            return None
        return VectorStoreFileBatch(
            id=row["id"],
            store_id=row["store_id"],
            owner_id=row["owner_id"],
            created_at=row["created_at"],
            file_ids=[uuid.UUID(hex=h) for h in row["file_ids"]],
            cancelled=row["cancelled"],
        )

    async def update(self, batch: VectorStoreFileBatch) -> None:
        statement = update(vector_store_file_batches).where(_batches.id == batch.id).values(_batch_values(batch))
        if await self._rowcount(statement) == 0:
            raise file_batch_not_found(batch.public_id)


def _batch_values(batch: VectorStoreFileBatch) -> dict[str, Any]:
    return {
        "id": batch.id,
        "store_id": batch.store_id,
        "owner_id": batch.owner_id,
        "file_ids": [f.hex for f in batch.file_ids],
        "cancelled": batch.cancelled,
        "created_at": batch.created_at,
    }


def _store_values(store: VectorStore) -> dict[str, Any]:
    return {
        "id": store.id,
        "owner_id": store.owner_id,
        "name": store.name,
        "embedding_model": store.embedding_model,
        "description": store.description,
        "metadata": dict(store.metadata),
        "expires_after_days": store.expires_after_days,
        "created_at": store.created_at,
        "last_active_at": store.last_active_at,
    }


def _store_from_row(row: RowMapping) -> VectorStore:
    return VectorStore(
        id=row["id"],
        owner_id=row["owner_id"],
        name=row["name"],
        embedding_model=row["embedding_model"],
        description=row["description"],
        metadata=dict(row["metadata"]),
        expires_after_days=row["expires_after_days"],
        created_at=row["created_at"],
        last_active_at=row["last_active_at"],
    )


def _file_values(file: VectorStoreFile) -> dict[str, Any]:
    return {
        "store_id": file.store_id,
        "file_id": file.file_id,
        "owner_id": file.owner_id,
        "filename": file.filename,
        "status": file.status.value,
        "attributes": dict(file.attributes),
        "max_chunk_size_tokens": file.chunking.max_chunk_size_tokens,
        "chunk_overlap_tokens": file.chunking.chunk_overlap_tokens,
        "static_chunking": file.chunking.static,
        "error_code": None if file.error_code is None else file.error_code.value,
        "error_message": file.error_message,
        "usage_bytes": file.usage_bytes,
        "api_key_id": file.api_key_id,
        "created_at": file.created_at,
    }


def _file_from_row(row: RowMapping) -> VectorStoreFile:
    return VectorStoreFile(
        store_id=row["store_id"],
        file_id=row["file_id"],
        owner_id=row["owner_id"],
        filename=row["filename"],
        status=FileStatus(row["status"]),
        attributes=dict(row["attributes"]),
        chunking=ChunkingStrategy(
            row["max_chunk_size_tokens"], row["chunk_overlap_tokens"], static=row["static_chunking"]
        ),
        error_code=None if row["error_code"] is None else FileErrorCode(row["error_code"]),
        error_message=row["error_message"],
        usage_bytes=row["usage_bytes"],
        api_key_id=row["api_key_id"],
        created_at=row["created_at"],
    )
