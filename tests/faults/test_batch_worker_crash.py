"""A batch survives its workers being killed: two ``switchboard worker`` processes on PostgreSQL run a batch while
the test SIGKILLs one of them at random points and starts it again. The killed worker's claimed lines go back to
the others once their lease ends, and its procrastinate jobs once its heartbeat stops.

Afterwards the batch is completed; its output has every ``custom_id`` exactly once (no error file); every line's
answer has a usage record naming the batch, no request id twice; the ledger holds no more records than the
upstream served answers, and at most the calls in flight at the kills fewer (an answer the upstream sent to a
worker that died before it could record it was never received).

The batch size is ``SB_BATCH_CRASH_LINES`` (the issue's figure is 2,000; the default keeps the suite fast).
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.serving import WorkerProcess, start_worker, switchboard_process
from tests.api.test_batches_sdk import read_jsonl
from tests.api.test_batches_workers_e2e import batch_env, chat_lines, sdk_client, sql, wait_until_ended
from tests.conftest import DatabaseFactory
from tests.fakes.upstream import FakeUpstream, UpstreamThread

pytestmark = pytest.mark.integration

LINES = int(os.environ.get("SB_BATCH_CRASH_LINES", "200"))
KILLS = 3
CONCURRENCY = 4  # lines each worker runs at once


@pytest.fixture
def upstream() -> Iterator[UpstreamThread]:
    with FakeUpstream.run_in_thread(latency=0.03, record=False) as running:
        yield running


async def _completed(client: object, batch_id: str) -> int:
    batch = await client.batches.retrieve(batch_id)  # type: ignore[attr-defined]
    return 0 if batch.request_counts is None else int(batch.request_counts.completed)


async def test_sigkilled_workers_lose_no_line_and_bill_no_line_twice(
    postgres_database_factory: DatabaseFactory, tmp_path: Path, upstream: UpstreamThread
) -> None:
    async with postgres_database_factory(migrate=True) as database_url:
        env = batch_env(
            tmp_path,
            upstream,
            database_url,
            SWITCHBOARD_WORKER_IN_PROCESS="false",
            SWITCHBOARD_BATCH_LEASE_SECONDS="2",
            SWITCHBOARD_WORKER_LEASE_SECONDS="2",
            SWITCHBOARD_BATCH_LINE_CONCURRENCY=str(CONCURRENCY),
            SWITCHBOARD_USAGE_CLAIM_IDLE_SECONDS="0.5",
        )
        async with switchboard_process(tmp_path, env) as server:
            workers: list[WorkerProcess] = [start_worker(tmp_path, env, f"worker-{i}") for i in range(2)]
            try:
                client = await sdk_client(server.url, "crash@example.com")
                file = await client.files.create(file=("in.jsonl", io.BytesIO(chat_lines(LINES))), purpose="batch")
                batch = await client.batches.create(
                    input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
                )
                for kill in range(KILLS):  # at random points of the batch's progress
                    target = (kill + random.uniform(0.3, 0.9)) * LINES / (KILLS + 1)
                    deadline = time.monotonic() + 120
                    while await _completed(client, batch.id) < target:
                        assert time.monotonic() < deadline, "the batch made no progress"
                        await asyncio.sleep(0.05)
                    victim = random.randrange(len(workers))
                    workers[victim].process.send_signal(signal.SIGKILL)
                    await asyncio.to_thread(workers[victim].process.wait, 10)
                    workers[victim] = start_worker(tmp_path, env, f"worker-{victim}")
                done = await wait_until_ended(client, batch.id, timeout=180)
                assert done.status == "completed", done
                assert done.error_file_id is None
                assert done.output_file_id is not None
                output = read_jsonl((await client.files.content(done.output_file_id)).content)
                custom_ids = [item["custom_id"] for item in output]
                assert sorted(custom_ids) == sorted(f"line-{i}" for i in range(LINES))  # each exactly once
                assert {item["response"]["status_code"] for item in output} == {200}
                answered = {item["response"]["request_id"] for item in output}
                rows = await _ledger(database_url, done.id.removeprefix("batch_"), LINES, answered)
                request_ids = [row[0] for row in rows]
                assert len(request_ids) == len(set(request_ids))
                served = upstream.completions_served
                assert LINES <= len(rows) <= served
                assert served - len(rows) <= KILLS * CONCURRENCY  # answers sent to a worker as it died
                assert answered <= set(request_ids)
            finally:
                for worker in workers:
                    worker.process.terminate()
                for worker in workers:
                    await asyncio.to_thread(worker.process.wait, 30)


async def _ledger(
    database_url: str, batch_id: str, at_least: int, answered: set[str], timeout: float = 30
) -> list[tuple[object, ...]]:
    """The batch's usage records, once the killed workers' journals have been moved (by the restarted workers) and
    the live workers have flushed theirs: the records of the last lines answered can still be on their way when the
    batch completes, while the re-asked lines' extra records already make up the count."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await sql(database_url, f"SELECT request_id FROM usage_records WHERE batch_id = '{batch_id}'")
        stored = {row[0] for row in rows}
        if (len(rows) >= at_least and answered <= stored) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.2)
