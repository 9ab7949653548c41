"""In-memory adapter of the responses repository."""

from __future__ import annotations

import dataclasses
import uuid

from domain.responses.errors import response_not_found
from domain.responses.model import ResponseRecord, public_id
from domain.responses.ports import ResponseRepository
from infrastructure.memory.repositories import InMemoryRepository
from infrastructure.memory.store import copy_out


class InMemoryResponseRepository(InMemoryRepository, ResponseRepository):
    async def add(self, record: ResponseRecord) -> None:
        self._require_user(record.owner_id)
        self._insert(self._tx.responses, record)

    async def get_owned(self, response_id: uuid.UUID, owner_id: uuid.UUID) -> ResponseRecord:
        self._tx.check_open()
        found = self._tx.responses.get(response_id)
        if found is None or found.owner_id != owner_id:
            raise response_not_found(public_id(response_id))
        return copy_out(found)

    async def update(self, record: ResponseRecord) -> None:
        self._tx.check_open()
        stored = self._tx.responses.get(record.id)
        if stored is None:
            raise response_not_found(record.public_id)
        # The owner and the creation time are fixed, as in the database.
        self._tx.responses.put(dataclasses.replace(record, owner_id=stored.owner_id, created_at=stored.created_at))

    async def delete_owned(self, response_id: uuid.UUID, owner_id: uuid.UUID) -> None:
        await self.get_owned(response_id, owner_id)
        self._tx.responses.delete(response_id)
