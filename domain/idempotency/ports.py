"""Repository port of the idempotency context."""

from __future__ import annotations

import abc
import uuid
from datetime import datetime

from domain.idempotency.model import IdempotencyRecord


class IdempotencyRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, record: IdempotencyRecord) -> None:
        """Raises ``Conflict`` when the user already has a record with this key (a concurrent duplicate)."""

    @abc.abstractmethod
    async def find(self, user_id: uuid.UUID, key: str) -> IdempotencyRecord | None: ...

    @abc.abstractmethod
    async def update(self, record: IdempotencyRecord) -> None:
        """Raises ``NotFound`` when the record is gone."""

    @abc.abstractmethod
    async def delete(self, record_id: uuid.UUID) -> None:
        """Deleting a missing record is not an error."""

    @abc.abstractmethod
    async def delete_expired(self, user_id: uuid.UUID, now: datetime) -> int:
        """Deletes the user's records whose ``expires_at`` has passed; returns how many."""
