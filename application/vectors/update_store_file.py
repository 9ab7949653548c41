"""Replace a store file's attributes: its record in one commit, then the attributes its chunks carry in the index."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass

from application.unit_of_work import UnitOfWorkFactory
from application.vectors.access import live_store, require_vectors_scope, store_file
from domain.auth.model import Principal
from domain.shared.clock import Clock
from domain.vectors.model import AttributeValue
from domain.vectors.ports import VectorIndex
from domain.vectors.stores import VectorStoreFile, check_attributes


@dataclass(frozen=True, kw_only=True)
class UpdateStoreFileCommand:
    principal: Principal
    store_id: uuid.UUID
    file_id: uuid.UUID
    attributes: dict[str, AttributeValue]


class UpdateStoreFile:
    def __init__(self, *, uow: UnitOfWorkFactory, index: VectorIndex, clock: Clock) -> None:
        self._uow = uow
        self._index = index
        self._clock = clock

    async def execute(self, command: UpdateStoreFileCommand) -> VectorStoreFile:
        require_vectors_scope(command.principal)
        attributes = check_attributes(command.attributes)
        owner = command.principal.user_id
        async with self._uow() as uow:
            store = await live_store(uow, command.store_id, owner, self._clock.now())
            file = await store_file(uow, store, command.file_id)
            file.attributes = attributes
            await uow.vector_store_files.update(file)
            await uow.commit()
        # The chunks keep their text and vectors; only the attributes filters read change. (A file still being
        # ingested has none yet: its job reads the attributes again before it writes its chunks.)
        chunks = await self._index.file_chunks(owner, store.id, file.file_id)
        if chunks:
            restamped = [dataclasses.replace(c, attributes=dict(attributes)) for c in chunks]
            await self._index.replace_file(store.id, file.file_id, restamped)
        return file
