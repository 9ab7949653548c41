"""What the batch fault tests share: a batch run by ``switchboard worker`` processes on PostgreSQL through the
official SDK, and the invariants every fault must leave intact.

- the batch reaches a final status (``completed``);
- every ``custom_id`` appears exactly once across the output and error files;
- the ledger holds one ``success`` usage record per answer the fake upstream actually sent, no request id twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai

from tests.api.serving import ServerProcess, WorkerProcess, start_worker, switchboard_process
from tests.api.test_batches_sdk import read_jsonl
from tests.api.test_batches_workers_e2e import chat_lines, sdk_client, sql, wait_until_ended

FINAL = ("completed", "failed", "expired", "cancelled")
LINES = int(os.environ.get("SB_BATCH_FAULT_LINES", "200"))  # a fault test's batch size (the issue's: 2000)
CUT_SECONDS = float(os.environ.get("SB_BATCH_CUT_SECONDS", "3"))  # how long a dependency is cut


@dataclass
class Deployment:
    server: ServerProcess
    workers: list[WorkerProcess]
    client: openai.AsyncOpenAI


@contextlib.asynccontextmanager
async def deployment(tmp_path: Path, env: dict[str, str], workers: int, email: str) -> AsyncIterator[Deployment]:
    """``switchboard serve`` (no in-process worker) and ``workers`` worker processes; the workers are drained at
    the end, and each must exit 0 (a worker that crashed on a fault is a failure, not something to hide)."""
    async with switchboard_process(tmp_path, env) as server:
        running = [start_worker(tmp_path, env, f"worker-{i}") for i in range(workers)]
        try:
            yield Deployment(server, running, await sdk_client(server.url, email))
        finally:
            for worker in running:
                worker.process.terminate()
            codes = [await asyncio.to_thread(worker.process.wait, 30) for worker in running]
        assert codes == [0] * workers, (codes, [w.log.read_text()[-3000:] for w in running])


async def start_batch(client: openai.AsyncOpenAI, lines: int) -> str:
    file = await client.files.create(file=("in.jsonl", io.BytesIO(chat_lines(lines))), purpose="batch")
    batch = await client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    return batch.id


async def wait_for_progress(client: openai.AsyncOpenAI, batch_id: str, done: int, timeout: float = 120) -> None:
    """Until at least ``done`` lines have ended (completed or failed)."""
    deadline = time.monotonic() + timeout
    while True:
        batch = await client.batches.retrieve(batch_id)
        counts = batch.request_counts
        if counts is not None and counts.completed + counts.failed >= done:
            assert batch.status not in FINAL, f"the batch ended before the fault: {batch.status}"
            return
        assert time.monotonic() < deadline, f"the batch made no progress: {counts}"
        await asyncio.sleep(0.05)


@dataclass
class Outcome:
    batch: Any
    output: list[dict[str, Any]]
    errors: list[dict[str, Any]]


async def finished(client: openai.AsyncOpenAI, batch_id: str, lines: int, timeout: float = 180) -> Outcome:
    """The ended batch and its files, checked: ``completed``, every ``custom_id`` exactly once across the output
    and error files, the request counts agreeing with the files."""
    batch = await wait_until_ended(client, batch_id, timeout=timeout)
    assert batch.status == "completed", batch
    output = await _file(client, batch.output_file_id)
    errors = await _file(client, batch.error_file_id)
    custom_ids = [item["custom_id"] for item in output + errors]
    assert sorted(custom_ids) == sorted(f"line-{i}" for i in range(lines))  # each exactly once
    assert {item["response"]["status_code"] for item in output} <= {200}
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (len(output), len(errors))
    return Outcome(batch, output, errors)


async def _file(client: openai.AsyncOpenAI, file_id: str | None) -> list[dict[str, Any]]:
    return [] if file_id is None else read_jsonl((await client.files.content(file_id)).content)


async def ledger(database_url: str, batch_id: str, at_least: int, timeout: float = 30) -> dict[str, str]:
    """The batch's usage records, request id → status, once at least ``at_least`` have reached the ledger (usage
    goes through each worker's journal); no request id may appear twice."""
    batch_uuid = batch_id.removeprefix("batch_")
    deadline = time.monotonic() + timeout
    while True:
        rows = await sql(database_url, f"SELECT request_id, status FROM usage_records WHERE batch_id = '{batch_uuid}'")
        if len(rows) >= at_least or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    records = {str(request_id): str(status) for request_id, status in rows}
    assert len(records) == len(rows), "a request id twice in the ledger"
    return records


def assert_billed_per_answer(records: dict[str, str], outcome: Outcome, answers: int) -> None:
    """One ``success`` record per upstream answer received, and each output line's answer among them."""
    succeeded = {request_id for request_id, status in records.items() if status == "success"}
    assert len(succeeded) == answers, (len(succeeded), answers)
    assert {item["response"]["request_id"] for item in outcome.output} <= succeeded
