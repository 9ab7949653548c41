"""Attach one of the caller's files to one of their stores; a job ingests it after the commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from application.unit_of_work import UnitOfWorkFactory
from application.vectors.access import live_store, require_vectors_scope
from application.vectors.attach import attach
from domain.auth.model import Principal
from domain.shared.clock import Clock
from domain.vectors.model import AttributeValue
from domain.vectors.stores import ChunkingStrategy, VectorStoreFile, check_attributes


@dataclass(frozen=True, kw_only=True)
class AttachFileCommand:
    principal: Principal
    store_id: uuid.UUID
    file_id: str
    chunking: ChunkingStrategy = field(default_factory=ChunkingStrategy.auto)
    attributes: dict[str, AttributeValue] | None = None


class AttachFile:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def execute(self, command: AttachFileCommand) -> VectorStoreFile:
        require_vectors_scope(command.principal)
        attributes = None if command.attributes is None else check_attributes(command.attributes)
        now = self._clock.now()
        async with self._uow() as uow:
            store = await live_store(uow, command.store_id, command.principal.user_id, now)
            attached = await attach(
                uow,
                principal=command.principal,
                store=store,
                file_id=command.file_id,
                chunking=command.chunking,
                attributes=attributes,
                now=now,
            )
            store.last_active_at = now
            await uow.vector_stores.update(store)
            await uow.commit()
        return attached
