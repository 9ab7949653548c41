"""One file of one of the caller's stores: its record, or its parsed chunks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.unit_of_work import UnitOfWorkFactory
from application.vectors.access import owned_store, require_vectors_scope, store_file
from domain.auth.model import Principal
from domain.vectors.model import Chunk
from domain.vectors.ports import VectorIndex
from domain.vectors.stores import VectorStoreFile


@dataclass(frozen=True)
class StoreFileQuery:
    principal: Principal
    store_id: uuid.UUID
    file_id: uuid.UUID


class GetStoreFile:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, query: StoreFileQuery) -> VectorStoreFile:
        require_vectors_scope(query.principal)
        async with self._uow() as uow:
            store = await owned_store(uow, query.store_id, query.principal.user_id)
            return await store_file(uow, store, query.file_id)


class GetStoreFileContent:
    """The file's chunks in order (empty while it is being ingested, or when it failed)."""

    def __init__(self, *, uow: UnitOfWorkFactory, index: VectorIndex) -> None:
        self._uow = uow
        self._index = index

    async def execute(self, query: StoreFileQuery) -> tuple[VectorStoreFile, list[Chunk]]:
        require_vectors_scope(query.principal)
        async with self._uow() as uow:
            store = await owned_store(uow, query.store_id, query.principal.user_id)
            file = await store_file(uow, store, query.file_id)
        return file, await self._index.file_chunks(query.principal.user_id, store.id, file.file_id)
