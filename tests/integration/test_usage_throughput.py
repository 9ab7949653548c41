"""The usage ledger takes thousands of records a second on PostgreSQL through the buffered recorder."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.usage.model import UsageRecord
from infrastructure.db.tables import usage_records
from infrastructure.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from infrastructure.usage.buffered_recorder import BufferedUsageRecorder
from tests.api.conftest import make_settings, running_api

pytestmark = pytest.mark.integration

RECORDS = 20_000
FLOOR_PER_SECOND = 4_000  # far below what it does (about 15,000 on a busy laptop), so a loaded CI passes too


def _record() -> UsageRecord:
    return UsageRecord(
        id=uuid.uuid4(),
        created_at=datetime.now(UTC),
        request_id=uuid.uuid4().hex,
        user_id=uuid.uuid4(),
        api_key_id=uuid.uuid4(),
        conversation_id=uuid.uuid4(),
        model="gpt-main",
        served_model="gpt-main",
        provider="openai",
        upstream_model="gpt-4o-mini",
        variant="a",
        input_tokens=120,
        output_tokens=300,
        cached_tokens=10,
        cost_micros=198,
        latency_ms=900,
        ttft_ms=200,
    )


async def test_usage_records_reach_postgresql_in_batches_at_thousands_per_second(
    postgres_session_factory: async_sessionmaker[AsyncSession],
) -> None:
    recorder = BufferedUsageRecorder(uow=SqlAlchemyUnitOfWorkFactory(postgres_session_factory), capacity=20_000)
    records = [_record() for _ in range(RECORDS)]
    started = time.perf_counter()
    for record in records:
        await recorder.record(record)
    await recorder.close()
    rate = RECORDS / (time.perf_counter() - started)
    async with postgres_session_factory() as session:
        assert (await session.execute(select(func.count()).select_from(usage_records))).scalar_one() == RECORDS
    print(f"\n{rate:,.0f} usage records/s to PostgreSQL")
    assert rate >= FLOOR_PER_SECOND


async def test_usage_records_are_written_while_requests_hold_every_pooled_connection(postgres_url: str) -> None:
    """The usage writers have a small pool of their own: an exhausted request pool does not hold them up."""
    settings = make_settings(
        database_url=postgres_url, database_pool_size=1, database_max_overflow=0, database_pool_timeout_seconds=1
    )
    async with running_api(settings) as api:
        container = api.app.state.container
        record = _record()
        async with container.engine().connect() as held:  # the request pool's only connection, busy
            await held.execute(select(1))
            await container.usage_recorder().record(record)
            await asyncio.wait_for(container.usage_recorder().flush(), timeout=5)
            async with container.usage_engine().connect() as own:
                written = select(func.count()).select_from(usage_records).where(usage_records.c.id == record.id)
                assert (await own.execute(written)).scalar_one() == 1
