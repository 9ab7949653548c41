"""Attaching a file to a store, shared by creating a store with files, attaching one, and attaching a batch."""

from __future__ import annotations

from datetime import datetime

from application.files.access import live_file
from application.unit_of_work import UnitOfWork
from domain.auth.model import Principal
from domain.files.model import parse_file_id
from domain.jobs.model import Job
from domain.vectors.model import AttributeValue
from domain.vectors.stores import ChunkingStrategy, FileStatus, VectorStore, VectorStoreFile

INGEST_TASK = "vectors.ingest_file"


def ingest_job(file: VectorStoreFile) -> Job:
    return Job(
        INGEST_TASK, {"owner_id": str(file.owner_id), "store_id": str(file.store_id), "file_id": str(file.file_id)}
    )


async def attach(
    uow: UnitOfWork,
    *,
    principal: Principal,
    store: VectorStore,
    file_id: str,
    chunking: ChunkingStrategy,
    attributes: dict[str, AttributeValue] | None,
    now: datetime,
) -> VectorStoreFile:
    """The file in the store, ingested by a job enqueued in this unit of work.

    Idempotent: a file already in the store is returned as it is (change its attributes with an update), unless
    it had failed or was cancelled: then it is ingested again, with the attributes and chunking given now.
    """
    file = await live_file(uow, parse_file_id(file_id), principal.user_id, now)
    existing = await uow.vector_store_files.find(store.id, file.id)
    if existing is not None:
        if existing.status in (FileStatus.FAILED, FileStatus.CANCELLED):
            existing.status, existing.error_code, existing.error_message = FileStatus.IN_PROGRESS, None, None
            existing.chunking, existing.api_key_id = chunking, principal.api_key_id
            existing.attributes = attributes if attributes is not None else existing.attributes
            await uow.vector_store_files.update(existing)
            await uow.jobs.enqueue(ingest_job(existing))
        return existing
    attached = VectorStoreFile(
        store_id=store.id,
        file_id=file.id,
        owner_id=principal.user_id,
        filename=file.filename,
        created_at=now,
        chunking=chunking,
        attributes=attributes or {},
        api_key_id=principal.api_key_id,
    )
    await uow.vector_store_files.add(attached)
    await uow.jobs.enqueue(ingest_job(attached))
    return attached
