"""Contract of the durable usage recorders (the journal; the Redis stream with the journal behind it): a record is
stored exactly once; ``record`` neither fails nor waits while the database is down; what a recorder could not store
before it closed stays durable and the next recorder on the same journal or stream stores it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from domain.usage.ports import UsageRecorder
from infrastructure.redis.client import create_redis
from infrastructure.redis.usage_stream import RedisStreamUsageRecorder
from infrastructure.usage.journal import JournalUsageRecorder
from infrastructure.usage.ledger_writer import LedgerWriter
from tests.contract.test_usage_ports import a_record
from tests.fakes.usage import SwitchableDatabase

pytestmark = pytest.mark.contract

Factory = Callable[[SwitchableDatabase], UsageRecorder]
OPTIONS: dict[str, Any] = {"batch_size": 50, "flush_interval_seconds": 0.02, "close_timeout_seconds": 0.3}


def _journal(db: SwitchableDatabase, directory: Path) -> JournalUsageRecorder:
    return JournalUsageRecorder(uow=db, directory=directory, retry_base_seconds=0.01, **OPTIONS)


@pytest.fixture(params=["journal", "redis stream"])
def redis_backend(request: pytest.FixtureRequest) -> tuple[str, str] | None:
    """``None`` for the journal alone, else the test Redis and this test's key prefix."""
    if request.param == "journal":
        return None
    return request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")


@pytest.fixture
async def recorders(redis_backend: tuple[str, str] | None, tmp_path: Path) -> AsyncIterator[Factory]:
    """Makes recorders sharing one journal directory (and one Redis stream): a restarted process's view."""
    if redis_backend is None:
        yield lambda db: _journal(db, tmp_path)
        return
    url, prefix = redis_backend
    redis = create_redis(url, timeout_seconds=2)

    def make(db: SwitchableDatabase) -> UsageRecorder:
        return RedisStreamUsageRecorder(
            redis=redis,
            reader=create_redis(url, timeout_seconds=3),
            prefix=prefix,
            ledger=LedgerWriter(uow=db, batch_size=50, retry_base_seconds=0.01),
            fallback=_journal(db, tmp_path),
            claim_idle_seconds=0.2,
            **OPTIONS,
        )

    yield make
    await redis.aclose()


async def test_every_record_is_stored_exactly_once(recorders: Factory) -> None:
    db = SwitchableDatabase()
    recorder = recorders(db)
    await recorder.start()
    records = [a_record() for _ in range(120)]
    await asyncio.gather(*(recorder.record(record) for record in records))
    await recorder.record(records[0])  # the same record again (a redelivery): still one row
    await recorder.flush()
    assert await db.stored() == 120
    await recorder.close()


async def test_the_database_down_neither_fails_nor_holds_up_a_call(recorders: Factory) -> None:
    db = SwitchableDatabase()
    recorder = recorders(db)
    await recorder.start()
    db.down = True
    await asyncio.wait_for(asyncio.gather(*(recorder.record(a_record()) for _ in range(80))), 5)
    await asyncio.sleep(0.1)
    assert await db.stored() == 0
    db.down = False
    await asyncio.wait_for(recorder.flush(), 10)
    assert await db.stored() == 80
    await recorder.close()


async def test_what_a_recorder_could_not_store_the_next_one_stores(recorders: Factory) -> None:
    db = SwitchableDatabase()
    first = recorders(db)
    await first.start()
    db.down = True
    await asyncio.gather(*(first.record(a_record()) for _ in range(30)))
    await first.close()  # gives up after its close timeout: the records stay in the journal or the stream
    db.down = False
    assert await db.stored() == 0
    second = recorders(db)
    await second.start()
    async with asyncio.timeout(10):
        while await db.stored() < 30:
            await asyncio.sleep(0.05)
    await second.close()
    assert await db.stored() == 30


async def test_a_journal_record_is_on_disk_before_record_returns(tmp_path: Path) -> None:
    db = SwitchableDatabase()
    db.down = True
    recorder = _journal(db, tmp_path)
    record = a_record(request_id=uuid.uuid4().hex)
    await recorder.record(record)
    assert record.request_id.encode() in b"".join(path.read_bytes() for path in tmp_path.glob("*.journal"))
    db.down = False
    await recorder.close()
    assert not list(tmp_path.glob("*.journal"))  # stored, then deleted


async def test_the_stream_falls_back_to_the_journal_when_redis_does_not_answer(tmp_path: Path) -> None:
    db = SwitchableDatabase()
    down = create_redis("redis://127.0.0.1:1/0", timeout_seconds=0.2)  # nothing listens there
    recorder = RedisStreamUsageRecorder(
        redis=down,
        reader=create_redis("redis://127.0.0.1:1/0", timeout_seconds=0.2),
        prefix="t:",
        ledger=LedgerWriter(uow=db),
        fallback=_journal(db, tmp_path),
        **OPTIONS,
    )
    await recorder.start()
    await asyncio.gather(*(recorder.record(a_record()) for _ in range(10)))
    assert recorder.fell_back == 10
    await recorder.fallback.flush()
    assert await db.stored() == 10
    await recorder.close()
    await down.aclose()
