"""Delete a store: its records in one commit, then its chunks from the index."""

from __future__ import annotations

from application.unit_of_work import UnitOfWorkFactory
from application.vectors.access import owned_store, require_vectors_scope
from application.vectors.get_vector_store import StoreQuery
from domain.vectors.ports import VectorIndex
from domain.vectors.stores import VectorStore


class DeleteVectorStore:
    def __init__(self, *, uow: UnitOfWorkFactory, index: VectorIndex) -> None:
        self._uow = uow
        self._index = index

    async def execute(self, query: StoreQuery) -> VectorStore:
        require_vectors_scope(query.principal)
        async with self._uow() as uow:
            store = await owned_store(uow, query.store_id, query.principal.user_id)
            await uow.vector_stores.delete(store.id)
            await uow.commit()
        # After the commit: an ingestion still running finds its store gone and removes what it wrote (ingest_file).
        await self._index.delete_store(store.id)
        return store
