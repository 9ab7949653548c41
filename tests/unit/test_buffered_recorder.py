"""The buffered usage recorder: batches, backpressure instead of drops, retries while the database is down, and a
close that writes everything (or reports what it could not)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime

import pytest

from domain.usage.model import UsageRecord
from infrastructure.usage.buffered_recorder import BufferedUsageRecorder
from tests.fakes.usage import SwitchableDatabase

pytestmark = pytest.mark.unit


def record() -> UsageRecord:
    return UsageRecord(
        id=uuid.uuid4(),
        created_at=datetime.now(UTC),
        request_id="r",
        user_id=uuid.uuid4(),
        api_key_id=None,
        conversation_id=None,
        model="m",
        served_model="m",
        provider="local",
        upstream_model="m",
        variant=None,
        cost_micros=1,
    )


def recorder(db: SwitchableDatabase, **options: float) -> BufferedUsageRecorder:
    values = {"capacity": 10, "batch_size": 4, "flush_interval_seconds": 0.05, "retry_base_seconds": 0.01}
    values.update(options)
    return BufferedUsageRecorder(uow=db, **values)  # type: ignore[arg-type]


async def test_records_are_written_in_batches_off_the_callers_path() -> None:
    db = SwitchableDatabase()
    usage = recorder(db, flush_interval_seconds=60)
    for _ in range(8):
        await usage.record(record())
    assert db.attempts == 0  # record() itself never touches the database
    await usage.flush()
    assert await db.stored() == 8
    assert db.attempts == 2  # two full batches of four
    await usage.close()


async def test_a_partial_batch_is_written_after_the_flush_interval() -> None:
    db = SwitchableDatabase()
    usage = recorder(db, flush_interval_seconds=0.05)
    await usage.record(record())
    await asyncio.sleep(0.3)
    assert await db.stored() == 1
    await usage.close()


async def test_a_full_buffer_makes_callers_wait_and_drops_nothing_while_the_database_is_down() -> None:
    db = SwitchableDatabase()
    db.down = True
    usage = recorder(db, capacity=6, batch_size=3)
    writers = [asyncio.create_task(usage.record(record())) for _ in range(10)]
    await asyncio.sleep(0.2)
    assert sum(w.done() for w in writers) == 6  # the buffer holds 6; four callers wait for room
    assert usage.pending == 6
    assert usage.failed_batches > 0  # the writer kept retrying
    db.down = False
    await asyncio.gather(*writers)
    await usage.flush()
    assert await db.stored() == 10
    await usage.close()


async def test_close_writes_everything_left() -> None:
    db = SwitchableDatabase()
    usage = recorder(db, capacity=1000, batch_size=100, flush_interval_seconds=60)
    for _ in range(250):
        await usage.record(record())
    await usage.close()
    assert await db.stored() == 250
    assert usage.written == 250


async def test_records_that_cannot_be_written_by_the_close_deadline_are_logged_never_silently_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = SwitchableDatabase()
    db.down = True
    usage = recorder(db, close_timeout_seconds=0.2)
    lost = record()
    await usage.record(lost)
    with caplog.at_level(logging.ERROR, logger="switchboard.usage"):
        await usage.close()
    assert any(str(lost.id) in message for message in caplog.messages)


async def test_a_record_after_close_is_written_at_once() -> None:
    db = SwitchableDatabase()
    usage = recorder(db)
    await usage.close()
    await usage.record(record())
    assert await db.stored() == 1


async def test_writing_a_batch_twice_stores_it_once() -> None:
    db = SwitchableDatabase()
    batch = [record() for _ in range(3)]
    for _ in range(2):
        async with db() as uow:
            await uow.usage.add_many(batch)
            await uow.commit()
    assert await db.stored() == 3
