"""Redis cut for a few seconds in the middle of a batch, in both failure modes, on PostgreSQL with two
``switchboard worker`` processes. The workers and the server reach Redis through a loopback TCP proxy that the test
cuts (every connection reset, new ones refused) and restores: the shared Redis server is never stopped.

Redis carries the rate limits (the batch's share of them included), the spend counters and the response cache,
so the lines meet it on every call. ``open``: those degrade and the lines run on. ``closed``: a line refused for a
dependency is not failed but waits and runs later. Either way the batch completes with every line answered, each
``custom_id`` exactly once, and one usage record per upstream answer.

The batch size is ``SB_BATCH_FAULT_LINES``; the cut lasts ``SB_BATCH_CUT_SECONDS`` (3).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio.connection import parse_url

from tests.api.test_batches_workers_e2e import batch_env
from tests.conftest import DatabaseFactory
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.upstream import UpstreamThread
from tests.faults.batch_faults import (
    CUT_SECONDS,
    LINES,
    assert_billed_per_answer,
    deployment,
    finished,
    ledger,
    start_batch,
    wait_for_progress,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def proxy(redis_server: str) -> AsyncIterator[TcpProxy]:
    target = parse_url(redis_server)
    async with TcpProxy(target.get("host", "127.0.0.1"), target.get("port", 6379)) as running:
        yield running


@pytest.mark.parametrize("mode", ["open", "closed"])
async def test_redis_cut_mid_batch_loses_and_duplicates_no_line(
    mode: str,
    postgres_database_factory: DatabaseFactory,
    tmp_path: Path,
    steady_upstream: UpstreamThread,
    proxy: TcpProxy,
    redis_server: str,
    redis_prefix: str,
) -> None:
    database = parse_url(redis_server).get("db", 0)
    async with postgres_database_factory(migrate=True) as database_url:
        env = batch_env(
            tmp_path,
            steady_upstream,
            database_url,
            SWITCHBOARD_WORKER_IN_PROCESS="false",
            SWITCHBOARD_BATCH_LINE_CONCURRENCY="4",
            SWITCHBOARD_REDIS_URL=f"redis://127.0.0.1:{proxy.port}/{database}",
            SWITCHBOARD_REDIS_KEY_PREFIX=redis_prefix,
            SWITCHBOARD_REDIS_FAILURE_MODE=mode,
            SWITCHBOARD_REDIS_TIMEOUT_SECONDS="0.5",
            SWITCHBOARD_RATE_LIMIT_KEY_RPM="100000",  # high, but counted in Redis on every line
            SWITCHBOARD_RATE_LIMIT_USER_RPM="100000",
        )
        async with deployment(tmp_path, env, workers=2, email=f"redis-{mode}@example.com") as running:
            batch_id = await start_batch(running.client, LINES)
            await wait_for_progress(running.client, batch_id, LINES // 5)
            await proxy.cut()
            await asyncio.sleep(CUT_SECONDS)
            await proxy.restore()
            outcome = await finished(running.client, batch_id, LINES)
            answers = steady_upstream.completions_served
        records = await ledger(database_url, batch_id, at_least=answers)
    assert outcome.errors == []  # a Redis outage fails no line
    assert answers == LINES  # and asks no line twice
    assert_billed_per_answer(records, outcome, answers)
