"""SQLAlchemy adapter of the idempotency repository."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from domain.idempotency.model import IdempotencyRecord
from domain.idempotency.ports import IdempotencyRepository
from domain.shared.errors import Conflict, NotFound
from infrastructure.db.errors import is_foreign_key_violation, violated_unique_constraint
from infrastructure.db.mapping import idempotency_from_row, idempotency_values
from infrastructure.db.repositories.base import SqlAlchemyRepository
from infrastructure.db.tables import UQ_IDEMPOTENCY_KEYS_USER_ID_KEY, idempotency_keys

KEY_TAKEN = "this idempotency key is already in use"


class SqlAlchemyIdempotencyRepository(SqlAlchemyRepository, IdempotencyRepository):
    async def add(self, record: IdempotencyRecord) -> None:
        try:
            async with self._recoverable():
                await self._session.execute(insert(idempotency_keys).values(idempotency_values(record)))
        except IntegrityError as exc:
            if violated_unique_constraint(exc) == UQ_IDEMPOTENCY_KEYS_USER_ID_KEY:
                raise Conflict(KEY_TAKEN) from exc
            if is_foreign_key_violation(exc):
                raise NotFound(f"user {record.user_id} not found") from exc
            raise

    async def find(self, user_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
        statement = select(idempotency_keys).where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
        row = (await self._session.execute(statement)).mappings().first()
        return idempotency_from_row(row) if row is not None else None

    async def update(self, record: IdempotencyRecord) -> None:
        values = idempotency_values(record)
        for fixed in ("id", "user_id", "key", "created_at"):
            del values[fixed]
        statement = update(idempotency_keys).where(idempotency_keys.c.id == record.id).values(values)
        if await self._rowcount(statement) == 0:
            raise NotFound("idempotency record not found")

    async def delete(self, record_id: uuid.UUID) -> None:
        await self._session.execute(delete(idempotency_keys).where(idempotency_keys.c.id == record_id))

    async def delete_expired(self, user_id: uuid.UUID, now: datetime) -> int:
        statement = delete(idempotency_keys).where(
            idempotency_keys.c.user_id == user_id, idempotency_keys.c.expires_at <= now
        )
        return await self._rowcount(statement)
