"""The batch repository behaves the same on memory, SQLite and PostgreSQL: batches with their line counts, pages
newest first, and the lines' leases (claims never overlap, a claim that ran out is taken over, a result is written
only by the claim holding the line)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Role, User
from domain.batches.model import (
    CANCELLED_RESULT,
    Batch,
    BatchError,
    BatchKind,
    BatchLine,
    BatchPageCursor,
    BatchStatus,
    LineResult,
    LineStatus,
)
from domain.shared.ids import new_id

pytestmark = pytest.mark.contract
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DONE = LineResult(status=LineStatus.SUCCEEDED, status_code=200, body_json='{"ok":true}', request_id="r")


async def setup(uow_factory: UnitOfWorkFactory, lines: int = 10, at: datetime = NOW) -> Batch:
    user = User(
        id=new_id(),
        email=f"{uuid.uuid4().hex}@example.com",
        password_hash="-",
        role=Role.MEMBER,
        is_active=True,
        created_at=at,
        updated_at=at,
    )
    batch = Batch(
        id=new_id(),
        owner_id=user.id,
        api_key_id=None,
        kind=BatchKind.OPENAI,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        status=BatchStatus.IN_PROGRESS,
        created_at=at,
        expires_at=at + timedelta(days=1),
        metadata={"k": "v"},
        errors=(BatchError(code="c", message="m", line=3),),
    )
    async with uow_factory() as uow:
        await uow.users.add(user)
        await uow.batches.add(batch)
        await uow.batches.add_lines(
            [
                BatchLine(
                    id=new_id(), batch_id=batch.id, index=i, custom_id=f"c{i}", url=batch.endpoint, body_json="{}"
                )
                for i in range(lines)
            ]
        )
        await uow.commit()
    return batch


async def test_a_batch_reads_back_with_its_counts(uow_factory: UnitOfWorkFactory) -> None:
    batch = await setup(uow_factory, lines=4)
    async with uow_factory() as uow:
        found = await uow.batches.get(batch.id)
        assert (found.metadata, found.errors, found.status) == (batch.metadata, batch.errors, BatchStatus.IN_PROGRESS)
        assert found.counts.pending == found.counts.total == 4
        assert await uow.batches.find_owned(batch.id, uuid.uuid4(), BatchKind.OPENAI) is None
        assert await uow.batches.find_owned(batch.id, batch.owner_id, BatchKind.ANTHROPIC) is None
        assert batch.id in await uow.batches.list_unfinished()


async def test_claims_never_overlap_and_a_lapsed_claim_is_taken_over(uow_factory: UnitOfWorkFactory) -> None:
    batch = await setup(uow_factory, lines=10)
    lease = NOW + timedelta(seconds=30)

    async def claim(claim_id: uuid.UUID, at: datetime, limit: int) -> list[BatchLine]:
        async with uow_factory() as uow:
            lines = await uow.batches.claim_lines(batch.id, now=at, until=lease, claim_id=claim_id, limit=limit)
            await uow.commit()
            return lines

    first, second = uuid.uuid4(), uuid.uuid4()
    a, b = await asyncio.gather(claim(first, NOW, 4), claim(second, NOW, 4))
    assert len(a) == len(b) == 4
    assert not {line.id for line in a} & {line.id for line in b}
    assert {line.attempts for line in a + b} == {1}
    async with uow_factory() as uow:
        assert await uow.batches.finish_line(a[0].id, first, DONE, NOW)
        assert not await uow.batches.finish_line(a[1].id, second, DONE, NOW)  # not its line
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.batches.open_lines(batch.id) == (9, lease)
    later = lease + timedelta(seconds=1)
    third = uuid.uuid4()
    taken = await claim(third, later, 100)
    assert len(taken) == 9  # the two lapsed claims' 7 lines and the 2 never claimed
    async with uow_factory() as uow:
        assert not await uow.batches.finish_line(a[1].id, first, DONE, later)  # its lease ran out: ignored
        assert await uow.batches.finish_line(a[1].id, third, DONE, later)
        await uow.batches.release_line(taken[-1].id, third, until=later + timedelta(seconds=5))
        assert await uow.batches.close_open_lines(batch.id, CANCELLED_RESULT, later) == 1  # the released one
        await uow.commit()
    async with uow_factory() as uow:
        found = await uow.batches.get(batch.id)
        assert (found.counts.succeeded, found.counts.running, found.counts.cancelled) == (2, 7, 1)
        closed = await uow.batches.close_open_lines(batch.id, CANCELLED_RESULT, later, include_running=True)
        assert closed == 7
        [line] = await uow.batches.list_lines(batch.id, after_index=0, limit=1, statuses=[LineStatus.SUCCEEDED])
        assert (line.custom_id, line.response_json, line.request_id) == ("c1", '{"ok":true}', "r")


async def test_pages_are_newest_first(uow_factory: UnitOfWorkFactory) -> None:
    older = await setup(uow_factory, lines=1)
    newer = await setup(uow_factory, lines=2, at=NOW + timedelta(seconds=1))
    async with uow_factory() as uow:
        everyone = await uow.batches.list_page(owner_id=None, kind=None, limit=10)
        assert [b.id for b in everyone][:2] == [newer.id, older.id]
        assert [b.counts.total for b in everyone][:2] == [2, 1]
        mine = await uow.batches.list_page(owner_id=older.owner_id, kind=BatchKind.OPENAI, limit=10)
        assert [b.id for b in mine] == [older.id]
        after = await uow.batches.list_page(
            owner_id=None, kind=None, limit=10, after=BatchPageCursor(newer.created_at, newer.id)
        )
        assert newer.id not in [b.id for b in after]
        assert older.id in [b.id for b in after]
