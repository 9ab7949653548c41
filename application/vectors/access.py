"""What every vector-store use case shares: the scope, finding a caller's store or store file, and a store's view."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from application.auth.access import require_scope
from application.unit_of_work import UnitOfWork
from domain.auth.model import Principal, Scope
from domain.files.model import public_file_id
from domain.shared.errors import RuleViolation
from domain.vectors.errors import vector_store_file_not_found, vector_store_not_found
from domain.vectors.stores import FileCounts, StoreStatus, VectorStore, VectorStoreFile, public_store_id

# Vector stores feed model calls (their embeddings are model calls): the scope that allows model calls allows them.
VECTORS_SCOPE = Scope.CHAT


def require_vectors_scope(principal: Principal) -> None:
    require_scope(principal, VECTORS_SCOPE)


@dataclass(frozen=True)
class StoreView:
    """A store as the API shows it: with its files' counts and the status they make."""

    store: VectorStore
    counts: FileCounts
    status: StoreStatus
    usage_bytes: int


async def owned_store(uow: UnitOfWork, store_id: uuid.UUID, owner_id: uuid.UUID) -> VectorStore:
    """The owner's store, expired or not; someone else's store is as missing as a deleted one."""
    found = await uow.vector_stores.find_owned(store_id, owner_id)
    if found is None:
        raise vector_store_not_found(public_store_id(store_id))
    return found


async def live_store(uow: UnitOfWork, store_id: uuid.UUID, owner_id: uuid.UUID, now: datetime) -> VectorStore:
    """The owner's store, refused once expired (it can be read and deleted, not used)."""
    store = await owned_store(uow, store_id, owner_id)
    if not store.is_live(now):
        raise RuleViolation(f"vector store '{store.public_id}' has expired")
    return store


async def store_file(uow: UnitOfWork, store: VectorStore, file_id: uuid.UUID) -> VectorStoreFile:
    found = await uow.vector_store_files.find(store.id, file_id)
    if found is None:
        raise vector_store_file_not_found(public_file_id(file_id))
    return found


async def view(uow: UnitOfWork, store: VectorStore, now: datetime) -> StoreView:
    counts = await uow.vector_store_files.counts(store.id)
    usage_bytes = await uow.vector_store_files.usage_bytes(store.id)
    return StoreView(store, counts, store.status(now, counts), usage_bytes)
