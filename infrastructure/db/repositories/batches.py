"""SQLAlchemy adapter of the batches repository: batches, their lines, and the lines' leases.

Claiming is one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)`` on PostgreSQL, so concurrent workers
skip each other's rows instead of waiting on them; SQLite has one writer at a time, so the same statement without
the locking clause is already exclusive. A result is written only ``WHERE claim_id = :claim``: a worker whose lease
ran out (and whose line another worker took) writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, tuple_, update

from domain.batches.errors import BatchNotFound
from domain.batches.model import (
    Batch,
    BatchError,
    BatchKind,
    BatchLine,
    BatchPageCursor,
    BatchStatus,
    LineCounts,
    LineResult,
    LineStatus,
)
from domain.batches.ports import BatchRepository
from infrastructure.db.mapping import Row
from infrastructure.db.repositories.base import SqlAlchemyRepository
from infrastructure.db.tables import batch_lines, batches

b, ln = batches.c, batch_lines.c
_OPEN = (LineStatus.PENDING.value, LineStatus.RUNNING.value)
_TIMES = (
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def batch_values(batch: Batch) -> dict[str, Any]:
    return {
        "id": batch.id,
        "owner_id": batch.owner_id,
        "api_key_id": batch.api_key_id,
        "kind": batch.kind.value,
        "endpoint": batch.endpoint,
        "completion_window": batch.completion_window,
        "status": batch.status.value,
        "input_file_id": batch.input_file_id,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "metadata": dict(batch.metadata),
        "errors": [{"code": e.code, "message": e.message, "param": e.param, "line": e.line} for e in batch.errors],
        "created_at": batch.created_at,
        "expires_at": batch.expires_at,
        **{name: getattr(batch, name) for name in _TIMES},
    }


def batch_from_row(row: Row, counts: LineCounts) -> Batch:
    return Batch(
        id=row["id"],
        owner_id=row["owner_id"],
        api_key_id=row["api_key_id"],
        kind=BatchKind(row["kind"]),
        endpoint=row["endpoint"],
        completion_window=row["completion_window"],
        status=BatchStatus(row["status"]),
        input_file_id=row["input_file_id"],
        output_file_id=row["output_file_id"],
        error_file_id=row["error_file_id"],
        metadata=dict(row["metadata"]),
        errors=tuple(BatchError(**e) for e in row["errors"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        counts=counts,
        **{name: row[name] for name in _TIMES},
    )


def line_values(line: BatchLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "batch_id": line.batch_id,
        "line_index": line.index,
        "custom_id": line.custom_id,
        "url": line.url,
        "body": line.body_json,
        "status": line.status.value,
        "attempts": line.attempts,
        "claim_id": line.claim_id,
        "claimed_until": line.claimed_until,
        "status_code": line.status_code,
        "response": line.response_json,
        "request_id": line.request_id,
        "error_code": line.error_code,
        "error_message": line.error_message,
        "finished_at": line.finished_at,
    }


def line_from_row(row: Row) -> BatchLine:
    return BatchLine(
        id=row["id"],
        batch_id=row["batch_id"],
        index=row["line_index"],
        custom_id=row["custom_id"],
        url=row["url"],
        body_json=row["body"],
        status=LineStatus(row["status"]),
        attempts=row["attempts"],
        claim_id=row["claim_id"],
        claimed_until=row["claimed_until"],
        status_code=row["status_code"],
        response_json=row["response"],
        request_id=row["request_id"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        finished_at=row["finished_at"],
    )


def _result_values(result: LineResult, at: datetime) -> dict[str, Any]:
    return {
        "status": result.status.value,
        "status_code": result.status_code,
        "response": result.body_json,
        "request_id": result.request_id,
        "error_code": result.error_code,
        "error_message": result.error_message,
        "finished_at": at,
        "claim_id": None,
        "claimed_until": None,
    }


class SqlAlchemyBatchRepository(SqlAlchemyRepository, BatchRepository):
    async def add(self, batch: Batch) -> None:
        await self._session.execute(insert(batches).values(batch_values(batch)))

    async def get(self, batch_id: uuid.UUID, *, lock: bool = False, counts: bool = True) -> Batch:
        statement = select(batches).where(b.id == batch_id)
        if lock and self._dialect == "postgresql":
            statement = statement.with_for_update()
        row = (await self._session.execute(statement)).mappings().first()
        if row is None:
            raise BatchNotFound(f"no such batch: {batch_id}")
        return batch_from_row(row, (await self._counts([batch_id]))[batch_id] if counts else LineCounts())

    async def find_owned(self, batch_id: uuid.UUID, owner_id: uuid.UUID, kind: BatchKind) -> Batch | None:
        statement = select(batches).where(b.id == batch_id, b.owner_id == owner_id, b.kind == kind.value)
        row = (await self._session.execute(statement)).mappings().first()
        if row is None:
            return None
        return batch_from_row(row, (await self._counts([batch_id]))[batch_id])

    async def list_page(
        self,
        *,
        owner_id: uuid.UUID | None,
        kind: BatchKind | None,
        limit: int,
        after: BatchPageCursor | None = None,
        before: BatchPageCursor | None = None,
    ) -> list[Batch]:
        statement = select(batches)
        if owner_id is not None:
            statement = statement.where(b.owner_id == owner_id)
        if kind is not None:
            statement = statement.where(b.kind == kind.value)
        if after is not None:
            statement = statement.where(tuple_(b.created_at, b.id) < tuple_(after.created_at, after.id))
        if before is not None:  # the closest newer ones: ascending from the cursor, then turned round
            statement = statement.where(tuple_(b.created_at, b.id) > tuple_(before.created_at, before.id))
            statement = statement.order_by(b.created_at, b.id)
        else:
            statement = statement.order_by(b.created_at.desc(), b.id.desc())
        rows = list((await self._session.execute(statement.limit(max(limit, 0)))).mappings())
        if before is not None:
            rows.reverse()
        counts = await self._counts([row["id"] for row in rows])
        return [batch_from_row(row, counts[row["id"]]) for row in rows]

    async def update(self, batch: Batch) -> None:
        values = batch_values(batch)
        del values["id"]
        await self._session.execute(update(batches).where(b.id == batch.id).values(values))

    async def delete(self, batch_id: uuid.UUID) -> None:
        await self._session.execute(delete(batch_lines).where(ln.batch_id == batch_id))  # SQLite may not cascade
        await self._session.execute(delete(batches).where(b.id == batch_id))

    async def list_unfinished(self) -> list[uuid.UUID]:
        ended = [status.value for status in BatchStatus if status.ended]
        statement = select(b.id).where(b.status.not_in(ended)).order_by(b.created_at)
        return list((await self._session.execute(statement)).scalars())

    async def add_lines(self, lines: Sequence[BatchLine]) -> None:
        if lines:
            await self._session.execute(insert(batch_lines), [line_values(line) for line in lines])

    async def claim_lines(
        self, batch_id: uuid.UUID, *, now: datetime, until: datetime, claim_id: uuid.UUID, limit: int
    ) -> list[BatchLine]:
        free = select(ln.id).where(
            ln.batch_id == batch_id,
            ln.status.in_(_OPEN),
            or_(ln.claimed_until.is_(None), ln.claimed_until <= now),
        )
        free = free.order_by(ln.line_index).limit(limit)
        if self._dialect == "postgresql":
            free = free.with_for_update(skip_locked=True)
        claim = (
            update(batch_lines)
            .where(ln.id.in_(free.scalar_subquery()))
            .values(status=LineStatus.RUNNING.value, claim_id=claim_id, claimed_until=until, attempts=ln.attempts + 1)
        )
        await self._session.execute(claim)
        statement = select(batch_lines).where(ln.batch_id == batch_id, ln.claim_id == claim_id)
        rows = (await self._session.execute(statement.order_by(ln.line_index))).mappings()
        return [line_from_row(row) for row in rows]

    async def finish_line(self, line_id: uuid.UUID, claim_id: uuid.UUID, result: LineResult, at: datetime) -> bool:
        statement = (
            update(batch_lines)
            .where(ln.id == line_id, ln.claim_id == claim_id, ln.status == LineStatus.RUNNING.value)
            .values(_result_values(result, at))
        )
        return await self._rowcount(statement) == 1

    async def release_line(self, line_id: uuid.UUID, claim_id: uuid.UUID, *, until: datetime) -> None:
        statement = (
            update(batch_lines)
            .where(ln.id == line_id, ln.claim_id == claim_id, ln.status == LineStatus.RUNNING.value)
            .values(status=LineStatus.PENDING.value, claim_id=None, claimed_until=until)
        )
        await self._session.execute(statement)

    async def close_open_lines(
        self, batch_id: uuid.UUID, result: LineResult, at: datetime, *, include_running: bool = False
    ) -> int:
        statuses = _OPEN if include_running else (LineStatus.PENDING.value,)
        statement = (
            update(batch_lines)
            .where(ln.batch_id == batch_id, ln.status.in_(statuses))
            .values(_result_values(result, at))
        )
        return await self._rowcount(statement)

    async def open_lines(self, batch_id: uuid.UUID) -> tuple[int, datetime | None]:
        statement = select(func.count(), func.min(ln.claimed_until)).where(
            ln.batch_id == batch_id, ln.status.in_(_OPEN)
        )
        count, earliest = (await self._session.execute(statement)).one()
        return count, earliest

    async def list_lines(
        self, batch_id: uuid.UUID, *, after_index: int, limit: int, statuses: Sequence[LineStatus] | None = None
    ) -> list[BatchLine]:
        statement = select(batch_lines).where(and_(ln.batch_id == batch_id, ln.line_index > after_index))
        if statuses is not None:
            statement = statement.where(ln.status.in_([s.value for s in statuses]))
        rows = (await self._session.execute(statement.order_by(ln.line_index).limit(limit))).mappings()
        return [line_from_row(row) for row in rows]

    async def _counts(self, batch_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, LineCounts]:
        found: dict[uuid.UUID, dict[LineStatus, int]] = {batch_id: {} for batch_id in batch_ids}
        if batch_ids:
            statement = (
                select(ln.batch_id, ln.status, func.count())
                .where(ln.batch_id.in_(batch_ids))
                .group_by(ln.batch_id, ln.status)
            )
            for batch_id, status, count in await self._session.execute(statement):
                found[batch_id][LineStatus(status)] = count
        return {batch_id: LineCounts.of(counts) for batch_id, counts in found.items()}

    @property
    def _dialect(self) -> str:
        return self._session.get_bind().dialect.name
