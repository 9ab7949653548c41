"""In-memory adapters of the vector store repositories (the contract tests hold them to the SQLAlchemy ones)."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from domain.vectors.errors import file_batch_not_found, vector_store_file_not_found, vector_store_not_found
from domain.vectors.store_ports import (
    VectorStoreFileBatchRepository,
    VectorStoreFileRepository,
    VectorStoreRepository,
)
from domain.vectors.stores import (
    FileCounts,
    FileStatus,
    StorePageCursor,
    VectorStore,
    VectorStoreFile,
    VectorStoreFileBatch,
    public_store_id,
    store_file_key,
)
from infrastructure.memory.repositories import InMemoryRepository
from infrastructure.memory.store import copy_out


class InMemoryVectorStoreRepository(InMemoryRepository, VectorStoreRepository):
    async def add(self, store: VectorStore) -> None:
        self._require_user(store.owner_id)
        self._insert(self._tx.vector_stores, store)

    async def find_owned(self, store_id: uuid.UUID, owner_id: uuid.UUID) -> VectorStore | None:
        self._tx.check_open()
        found = self._tx.vector_stores.get(store_id)
        return copy_out(found) if found is not None and found.owner_id == owner_id else None

    async def update(self, store: VectorStore) -> None:
        self._replace(self._tx.vector_stores, store, vector_store_not_found(public_store_id(store.id)).detail)

    async def list_by_owner(
        self, owner_id: uuid.UUID, *, limit: int, newest_first: bool = True, after: StorePageCursor | None = None
    ) -> list[VectorStore]:
        self._tx.check_open()

        def wanted(store: VectorStore) -> bool:
            if store.owner_id != owner_id:
                return False
            if after is None:
                return True
            position, cursor = (store.created_at, store.id), (after.created_at, after.id)
            return position < cursor if newest_first else position > cursor

        rows = sorted(self._tx.vector_stores.where(wanted), key=lambda s: (s.created_at, s.id), reverse=newest_first)
        return [copy_out(s) for s in rows[: max(limit, 0)]]

    async def delete(self, store_id: uuid.UUID) -> None:
        self._tx.check_open()
        for file in self._tx.vector_store_files.where(lambda f: f.store_id == store_id):
            self._tx.vector_store_files.delete(file.id)
        for batch in self._tx.vector_store_file_batches.where(lambda b: b.store_id == store_id):
            self._tx.vector_store_file_batches.delete(batch.id)
        if self._tx.vector_stores.get(store_id) is not None:
            self._tx.vector_stores.delete(store_id)


class InMemoryVectorStoreFileRepository(InMemoryRepository, VectorStoreFileRepository):
    async def add(self, file: VectorStoreFile) -> None:
        if self._tx.vector_stores.get(file.store_id) is None:
            raise vector_store_not_found(public_store_id(file.store_id))
        self._insert(self._tx.vector_store_files, file)

    async def find(self, store_id: uuid.UUID, file_id: uuid.UUID) -> VectorStoreFile | None:
        self._tx.check_open()
        found = self._tx.vector_store_files.get(store_file_key(store_id, file_id))
        return copy_out(found) if found is not None else None

    async def update(self, file: VectorStoreFile) -> None:
        self._replace(self._tx.vector_store_files, file, vector_store_file_not_found(file.file_id.hex).detail)

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
        self._tx.check_open()

        def wanted(file: VectorStoreFile) -> bool:
            if file.store_id != store_id or status not in (None, file.status):
                return False
            if file_ids is not None and file.file_id not in file_ids:
                return False
            if after is None:
                return True
            position, cursor = (file.created_at, file.file_id), (after.created_at, after.id)
            return position < cursor if newest_first else position > cursor

        rows = sorted(
            self._tx.vector_store_files.where(wanted), key=lambda f: (f.created_at, f.file_id), reverse=newest_first
        )
        return [copy_out(f) for f in rows[: max(limit, 0)]]

    async def list_in_progress(self, limit: int) -> list[VectorStoreFile]:
        self._tx.check_open()
        rows = sorted(
            self._tx.vector_store_files.where(lambda f: f.status is FileStatus.IN_PROGRESS),
            key=lambda f: (f.created_at, f.store_id, f.file_id),
        )
        return [copy_out(f) for f in rows[: max(limit, 0)]]

    async def counts(self, store_id: uuid.UUID, file_ids: Collection[uuid.UUID] | None = None) -> FileCounts:
        self._tx.check_open()
        files = self._tx.vector_store_files.where(
            lambda f: f.store_id == store_id and (file_ids is None or f.file_id in file_ids)
        )
        return FileCounts(**{s.value: sum(1 for f in files if f.status is s) for s in FileStatus})

    async def usage_bytes(self, store_id: uuid.UUID) -> int:
        self._tx.check_open()
        return sum(f.usage_bytes for f in self._tx.vector_store_files.where(lambda f: f.store_id == store_id))

    async def delete(self, store_id: uuid.UUID, file_id: uuid.UUID) -> None:
        self._tx.check_open()
        key = store_file_key(store_id, file_id)
        if self._tx.vector_store_files.get(key) is not None:
            self._tx.vector_store_files.delete(key)


class InMemoryVectorStoreFileBatchRepository(InMemoryRepository, VectorStoreFileBatchRepository):
    async def add(self, batch: VectorStoreFileBatch) -> None:
        if self._tx.vector_stores.get(batch.store_id) is None:
            raise vector_store_not_found(public_store_id(batch.store_id))
        self._insert(self._tx.vector_store_file_batches, batch)

    async def find(self, store_id: uuid.UUID, batch_id: uuid.UUID) -> VectorStoreFileBatch | None:
        self._tx.check_open()
        found = self._tx.vector_store_file_batches.get(batch_id)
        return copy_out(found) if found is not None and found.store_id == store_id else None

    async def update(self, batch: VectorStoreFileBatch) -> None:
        self._replace(self._tx.vector_store_file_batches, batch, file_batch_not_found(batch.public_id).detail)
