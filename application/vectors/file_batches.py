"""File batches: several files attached to a store in one commit, followed together, cancelled together.

A batch keeps only its files' ids and whether it was cancelled; its status and counts are those of its files.
Cancelling marks the batch's files still ``in_progress`` as ``cancelled``: their jobs then do nothing, and one
already embedding leaves no chunks (``ingest_file``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from application.unit_of_work import UnitOfWork, UnitOfWorkFactory
from application.vectors.access import live_store, owned_store, require_vectors_scope
from application.vectors.attach import attach
from domain.auth.model import Principal
from domain.shared.clock import Clock
from domain.shared.errors import RuleViolation
from domain.shared.ids import new_id
from domain.vectors.errors import file_batch_not_found
from domain.vectors.model import AttributeValue
from domain.vectors.stores import (
    BATCH_PREFIX,
    MAX_FILES_PER_REQUEST,
    BatchStatus,
    ChunkingStrategy,
    FileCounts,
    FileStatus,
    VectorStoreFileBatch,
    check_attributes,
)


@dataclass(frozen=True, kw_only=True)
class BatchFile:
    file_id: str
    chunking: ChunkingStrategy = field(default_factory=ChunkingStrategy.auto)
    attributes: dict[str, AttributeValue] | None = None


@dataclass(frozen=True, kw_only=True)
class CreateFileBatchCommand:
    principal: Principal
    store_id: uuid.UUID
    files: tuple[BatchFile, ...]


@dataclass(frozen=True)
class FileBatchQuery:
    principal: Principal
    store_id: uuid.UUID
    batch_id: uuid.UUID


@dataclass(frozen=True)
class BatchView:
    batch: VectorStoreFileBatch
    counts: FileCounts
    status: BatchStatus


class CreateFileBatch:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def execute(self, command: CreateFileBatchCommand) -> BatchView:
        require_vectors_scope(command.principal)
        if not 1 <= len(command.files) <= MAX_FILES_PER_REQUEST:
            raise RuleViolation(f"file_ids: between 1 and {MAX_FILES_PER_REQUEST} files")
        now = self._clock.now()
        async with self._uow() as uow:
            store = await live_store(uow, command.store_id, command.principal.user_id, now)
            file_ids: dict[uuid.UUID, None] = {}
            for spec in command.files:
                attributes = None if spec.attributes is None else check_attributes(spec.attributes)
                attached = await attach(
                    uow,
                    principal=command.principal,
                    store=store,
                    file_id=spec.file_id,
                    chunking=spec.chunking,
                    attributes=attributes,
                    now=now,
                )
                file_ids[attached.file_id] = None
            batch = VectorStoreFileBatch(
                id=new_id(), store_id=store.id, owner_id=store.owner_id, created_at=now, file_ids=list(file_ids)
            )
            await uow.vector_store_file_batches.add(batch)
            store.last_active_at = now
            await uow.vector_stores.update(store)
            shown = await batch_view(uow, batch)
            await uow.commit()
        return shown


class GetFileBatch:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, query: FileBatchQuery) -> BatchView:
        require_vectors_scope(query.principal)
        async with self._uow() as uow:
            return await batch_view(uow, await owned_batch(uow, query))


class CancelFileBatch:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, query: FileBatchQuery) -> BatchView:
        require_vectors_scope(query.principal)
        async with self._uow() as uow:
            batch = await owned_batch(uow, query)
            pending = await uow.vector_store_files.list_by_store(
                batch.store_id, limit=len(batch.file_ids), status=FileStatus.IN_PROGRESS, file_ids=batch.file_ids
            )
            for file in pending:
                file.status = FileStatus.CANCELLED
                await uow.vector_store_files.update(file)
            batch.cancelled = True
            await uow.vector_store_file_batches.update(batch)
            shown = await batch_view(uow, batch)
            await uow.commit()
        return shown


async def owned_batch(uow: UnitOfWork, query: FileBatchQuery) -> VectorStoreFileBatch:
    store = await owned_store(uow, query.store_id, query.principal.user_id)
    batch = await uow.vector_store_file_batches.find(store.id, query.batch_id)
    if batch is None:
        raise file_batch_not_found(BATCH_PREFIX + query.batch_id.hex)
    return batch


async def batch_view(uow: UnitOfWork, batch: VectorStoreFileBatch) -> BatchView:
    counts = await uow.vector_store_files.counts(batch.store_id, batch.file_ids)
    return BatchView(batch, counts, batch.status(counts))
