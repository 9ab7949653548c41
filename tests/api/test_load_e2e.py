"""A bounded mixed load against a real server process on PostgreSQL and Redis (``bench.loadtest``, 10 s here;
``make loadtest`` runs the longer variant): every call answered, then, after a graceful shutdown, one usage record
per call answered and per answer the fake upstream served, kind by kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.loadtest import LoadTestConfig, render, run
from bench.workload import KINDS
from tests.conftest import DatabaseFactory

pytestmark = pytest.mark.api

SECONDS = 10


async def test_a_mixed_load_is_answered_and_billed_exactly_once(
    tmp_path: Path, postgres_database_factory: DatabaseFactory, redis_url: str, redis_prefix: str
) -> None:
    async with postgres_database_factory(migrate=True) as database_url:
        config = LoadTestConfig(
            workdir=tmp_path,
            database_url=database_url,
            redis_url=redis_url,
            seconds=SECONDS,
            users=3,
            keys_per_user=2,
            concurrency=8,
            extra_env={"SWITCHBOARD_REDIS_KEY_PREFIX": redis_prefix},
        )
        result = await run(config)
    print("\n" + render(result))  # the rates, with -s
    assert result.problems() == []
    assert all(result.report.tallies[kind.name].ok > 0 for kind in KINDS)  # every kind of call was made
