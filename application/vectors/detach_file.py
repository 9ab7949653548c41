"""Remove a file from a store (the file itself stays in ``/v1/files``): its record, then its chunks."""

from __future__ import annotations

from application.unit_of_work import UnitOfWorkFactory
from application.vectors.access import owned_store, require_vectors_scope, store_file
from application.vectors.get_store_file import StoreFileQuery
from domain.vectors.ports import VectorIndex
from domain.vectors.stores import VectorStoreFile


class DetachFile:
    def __init__(self, *, uow: UnitOfWorkFactory, index: VectorIndex) -> None:
        self._uow = uow
        self._index = index

    async def execute(self, query: StoreFileQuery) -> VectorStoreFile:
        require_vectors_scope(query.principal)
        async with self._uow() as uow:
            store = await owned_store(uow, query.store_id, query.principal.user_id)
            file = await store_file(uow, store, query.file_id)
            await uow.vector_store_files.delete(store.id, file.file_id)
            await uow.commit()
        await self._index.delete_file(store.id, file.file_id)
        return file
