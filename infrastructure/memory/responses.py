"""In-memory adapter of the responses repository."""

from __future__ import annotations

import dataclasses
import uuid

from domain.responses.errors import response_not_found
from domain.responses.model import ResponseRecord, ResponseStatus, public_id
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

    async def find(self, response_id: uuid.UUID) -> ResponseRecord | None:
        self._tx.check_open()
        found = self._tx.responses.get(response_id)
        return None if found is None else copy_out(found)

    async def update_if(self, record: ResponseRecord, status: ResponseStatus) -> bool:
        self._tx.check_open()
        stored = self._tx.responses.get(record.id)
        if stored is None or stored.status is not status:
            return False
        self._tx.response_guards[record.id] = status  # checked again at commit, as the database's row lock would
        await self.update(record)
        return True

    async def list_unfinished_background(self, limit: int) -> list[ResponseRecord]:
        self._tx.check_open()
        found = self._tx.responses.where(lambda r: r.background and not r.status.finished)
        return [copy_out(r) for r in sorted(found, key=lambda r: r.created_at)[:limit]]

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
