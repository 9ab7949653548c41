"""In-memory adapter of the batches repository.

A claim takes effect in the store at once, as a row lock held by ``SKIP LOCKED`` would: a concurrent claimer (another
task of the process) never gets the same line, even before the claiming transaction commits. A rolled-back claim
is undone by its lease running out, as a claim of a worker that died is.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime

from domain.batches.errors import BatchNotFound
from domain.batches.model import (
    Batch,
    BatchKind,
    BatchLine,
    BatchPageCursor,
    LineCounts,
    LineResult,
    LineStatus,
)
from domain.batches.ports import BatchRepository
from infrastructure.memory.repositories import InMemoryRepository
from infrastructure.memory.store import copy_in, copy_out


class InMemoryBatchRepository(InMemoryRepository, BatchRepository):
    async def add(self, batch: Batch) -> None:
        self._require_user(batch.owner_id)
        self._insert(self._tx.batches, dataclasses.replace(batch, counts=LineCounts()))

    async def get(self, batch_id: uuid.UUID, *, lock: bool = False, counts: bool = True) -> Batch:
        self._tx.check_open()
        found = self._tx.batches.get(batch_id)
        if found is None:
            raise BatchNotFound(f"no such batch: {batch_id}")
        return self._with_counts(found) if counts else dataclasses.replace(copy_out(found), counts=LineCounts())

    async def find_owned(self, batch_id: uuid.UUID, owner_id: uuid.UUID, kind: BatchKind) -> Batch | None:
        self._tx.check_open()
        found = self._tx.batches.get(batch_id)
        if found is None or found.owner_id != owner_id or found.kind is not kind:
            return None
        return self._with_counts(found)

    async def list_page(
        self,
        *,
        owner_id: uuid.UUID | None,
        kind: BatchKind | None,
        limit: int,
        after: BatchPageCursor | None = None,
        before: BatchPageCursor | None = None,
    ) -> list[Batch]:
        self._tx.check_open()

        def wanted(batch: Batch) -> bool:
            if owner_id not in (None, batch.owner_id) or kind not in (None, batch.kind):
                return False
            if before is not None and (batch.created_at, batch.id) <= (before.created_at, before.id):
                return False
            return after is None or (batch.created_at, batch.id) < (after.created_at, after.id)

        rows = sorted(self._tx.batches.where(wanted), key=lambda x: (x.created_at, x.id), reverse=True)
        page = rows[-limit:] if before is not None and limit > 0 else rows[: max(limit, 0)]
        return [self._with_counts(batch) for batch in page]

    async def update(self, batch: Batch) -> None:
        self._replace(self._tx.batches, dataclasses.replace(batch, counts=LineCounts()), "batch not found")

    async def delete(self, batch_id: uuid.UUID) -> None:
        self._tx.check_open()
        for line in self._tx.batch_lines.where(lambda line: line.batch_id == batch_id):
            self._tx.batch_lines.delete(line.id)
        if self._tx.batches.get(batch_id) is not None:
            self._tx.batches.delete(batch_id)

    async def list_unfinished(self) -> list[uuid.UUID]:
        self._tx.check_open()
        found = self._tx.batches.where(lambda batch: not batch.status.ended)
        return [batch.id for batch in sorted(found, key=lambda x: x.created_at)]

    async def add_lines(self, lines: Sequence[BatchLine]) -> None:
        self._tx.check_open()
        taken = {(line.batch_id, line.custom_id) for line in self._tx.batch_lines.rows()}
        for line in lines:
            if (line.batch_id, line.custom_id) in taken:
                raise ValueError(f"duplicate custom_id {line.custom_id!r} in batch {line.batch_id}")
            taken.add((line.batch_id, line.custom_id))
            self._insert(self._tx.batch_lines, line)

    async def claim_lines(
        self, batch_id: uuid.UUID, *, now: datetime, until: datetime, claim_id: uuid.UUID, limit: int
    ) -> list[BatchLine]:
        self._tx.check_open()
        free = sorted(
            self._tx.batch_lines.where(
                lambda line: (
                    line.batch_id == batch_id
                    and line.status.open
                    and (line.claimed_until is None or line.claimed_until <= now)
                )
            ),
            key=lambda line: line.index,
        )[: max(limit, 0)]
        claimed = []
        for line in free:
            line = dataclasses.replace(
                line, status=LineStatus.RUNNING, claim_id=claim_id, claimed_until=until, attempts=line.attempts + 1
            )
            self._tx.store.batch_lines[line.id] = copy_in(line)  # at once: see the module's docstring
            claimed.append(line)
        return claimed

    async def finish_line(self, line_id: uuid.UUID, claim_id: uuid.UUID, result: LineResult, at: datetime) -> bool:
        self._tx.check_open()
        line = self._tx.batch_lines.get(line_id)
        if line is None or line.claim_id != claim_id or line.status is not LineStatus.RUNNING:
            return False
        line = copy_out(line)
        line.apply(result, at)
        self._tx.batch_lines.put(line)
        return True

    async def release_line(self, line_id: uuid.UUID, claim_id: uuid.UUID, *, until: datetime) -> None:
        self._tx.check_open()
        line = self._tx.batch_lines.get(line_id)
        if line is not None and line.claim_id == claim_id and line.status is LineStatus.RUNNING:
            self._tx.batch_lines.put(
                dataclasses.replace(line, status=LineStatus.PENDING, claim_id=None, claimed_until=until)
            )

    async def close_open_lines(
        self, batch_id: uuid.UUID, result: LineResult, at: datetime, *, include_running: bool = False
    ) -> int:
        self._tx.check_open()
        statuses = (LineStatus.PENDING, LineStatus.RUNNING) if include_running else (LineStatus.PENDING,)
        closing = self._tx.batch_lines.where(lambda line: line.batch_id == batch_id and line.status in statuses)
        for line in closing:
            line = copy_out(line)
            line.apply(result, at)
            self._tx.batch_lines.put(line)
        return len(closing)

    async def open_lines(self, batch_id: uuid.UUID) -> tuple[int, datetime | None]:
        self._tx.check_open()
        lines = self._tx.batch_lines.where(lambda line: line.batch_id == batch_id and line.status.open)
        held = [line.claimed_until for line in lines if line.claimed_until is not None]
        return len(lines), min(held) if held else None

    async def list_lines(
        self, batch_id: uuid.UUID, *, after_index: int, limit: int, statuses: Sequence[LineStatus] | None = None
    ) -> list[BatchLine]:
        self._tx.check_open()
        lines = self._tx.batch_lines.where(
            lambda line: (
                line.batch_id == batch_id and line.index > after_index and (statuses is None or line.status in statuses)
            )
        )
        return [copy_out(line) for line in sorted(lines, key=lambda line: line.index)[: max(limit, 0)]]

    def _with_counts(self, batch: Batch) -> Batch:
        counts: dict[LineStatus, int] = {}
        for line in self._tx.batch_lines.where(lambda line: line.batch_id == batch.id):
            counts[line.status] = counts.get(line.status, 0) + 1
        return dataclasses.replace(copy_out(batch), counts=LineCounts.of(counts))
