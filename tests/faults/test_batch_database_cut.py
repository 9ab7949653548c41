"""PostgreSQL cut for a few seconds in the middle of a batch run by two ``switchboard worker`` processes. The server
and the workers reach the database through a loopback TCP proxy that the test cuts (every connection reset, new
ones refused) and restores: the shared PostgreSQL server is never stopped.

While the database is away no line can be claimed or written: a line answered meanwhile is retried until its result
is stored, or asked again after its lease; the workers' jobs and the queue survive. Checked afterwards: the workers
are still running (and drain with exit 0), the batch completes, every ``custom_id`` exactly once in the output, one
usage record per upstream answer received (those sent during the cut reach the ledger through each worker's
journal), no request id twice.

The batch size is ``SB_BATCH_FAULT_LINES``; the cut lasts ``SB_BATCH_CUT_SECONDS`` (3).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

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


async def test_postgresql_cut_mid_batch_loses_and_duplicates_no_line(
    postgres_database_factory: DatabaseFactory, tmp_path: Path, steady_upstream: UpstreamThread
) -> None:
    async with postgres_database_factory(migrate=True) as database_url:
        url = make_url(database_url)
        async with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
            proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            env = batch_env(
                tmp_path,
                steady_upstream,
                proxied,
                SWITCHBOARD_WORKER_IN_PROCESS="false",
                SWITCHBOARD_BATCH_LINE_CONCURRENCY="4",
                SWITCHBOARD_BATCH_LEASE_SECONDS="5",
                SWITCHBOARD_DATABASE_CONNECT_TIMEOUT_SECONDS="1",
                SWITCHBOARD_DATABASE_POOL_TIMEOUT_SECONDS="1",
            )
            async with deployment(tmp_path, env, workers=2, email="pg-cut@example.com") as running:
                batch_id = await start_batch(running.client, LINES)
                await wait_for_progress(running.client, batch_id, LINES // 5)
                await proxy.cut()
                await asyncio.sleep(CUT_SECONDS)
                await proxy.restore()
                assert [w.process.poll() for w in running.workers] == [None, None], "a worker died in the outage"
                outcome = await finished(running.client, batch_id, LINES)
                answers = steady_upstream.completions_served
        records = await ledger(database_url, batch_id, at_least=answers)
    assert outcome.errors == []  # the outage fails no line
    assert answers >= LINES
    assert_billed_per_answer(records, outcome, answers)
