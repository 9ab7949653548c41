"""The official OpenAI SDK against a real ``switchboard serve`` process and a fake upstream on loopback, unchanged:
``files.create``, ``batches.create``, polling ``batches.retrieve``, ``files.content``. On PostgreSQL the server only
enqueues and a separate ``switchboard worker`` process runs the batch (procrastinate); on the embedded default
(SQLite) the server's own in-process worker runs it. Each line is one upstream call and one usage record naming
the batch."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import text

from infrastructure.db.engine import create_engine
from tests.api.conftest import PASSWORD, TEST_SECRET
from tests.api.serving import ServerProcess, WorkerProcess, start_worker, switchboard_process
from tests.api.test_batches_sdk import jsonl, read_jsonl
from tests.conftest import DatabaseFactory
from tests.fakes.upstream import FakeUpstream, UpstreamThread

pytestmark = pytest.mark.api

CATALOG = """
default_model = "chat"

[models.chat]
provider = "openai"
upstream_model = "gpt-4o-mini"
base_url = "{base}/v1"
api_key_env = "SB_E2E_OPENAI_KEY"
input_usd_per_mtok = 0.15
output_usd_per_mtok = 0.60
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamThread]:
    with FakeUpstream.run_in_thread(latency=0.002, record=False) as running:
        yield running


def batch_env(tmp_path: Path, upstream: UpstreamThread, database_url: str, **extra: str) -> dict[str, str]:
    catalog = tmp_path / "models.toml"
    catalog.write_text(CATALOG.format(base=upstream.base_url))
    return {
        "SB_E2E_OPENAI_KEY": "sk-e2e",
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_CATALOG_PATH": str(catalog),
        "SWITCHBOARD_JWT_SECRET": TEST_SECRET,
        "SWITCHBOARD_ARGON2_TIME_COST": "1",
        "SWITCHBOARD_ARGON2_MEMORY_KIB": "8",
        "SWITCHBOARD_ARGON2_PARALLELISM": "1",
        "SWITCHBOARD_RATE_LIMIT_KEY_RPM": "0",
        "SWITCHBOARD_RATE_LIMIT_USER_RPM": "0",
        "SWITCHBOARD_RATE_LIMIT_USER_TPM": "0",
        "SWITCHBOARD_USAGE_FLUSH_INTERVAL_SECONDS": "0.2",
        "SWITCHBOARD_USAGE_JOURNAL_PATH": str(tmp_path / "journal"),
        "SWITCHBOARD_FILE_STORAGE_PATH": str(tmp_path / "files"),
        "SWITCHBOARD_WORKER_POLL_SECONDS": "0.2",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
        **extra,
    }


async def sql(database_url: str, statement: str) -> list[tuple[Any, ...]]:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement))
            return [tuple(row) for row in result.fetchall()] if result.returns_rows else []
    finally:
        await engine.dispose()


async def sdk_client(url: str, email: str) -> openai.AsyncOpenAI:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        form = {"username": email, "password": PASSWORD}
        jwt = {"Authorization": f"Bearer {(await http.post('/api/v1/auth/token', data=form)).json()['access_token']}"}
        key = (await http.post("/api/v1/api-keys", json={"name": "batch"}, headers=jwt)).json()["key"]
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=2, timeout=30)


def chat_lines(count: int) -> bytes:
    return jsonl(
        [
            {
                "custom_id": f"line-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "chat", "messages": [{"role": "user", "content": f"question {i}"}]},
            }
            for i in range(count)
        ]
    )


async def wait_until_ended(client: openai.AsyncOpenAI, batch_id: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = await client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        assert time.monotonic() < deadline, f"batch still {batch.status}: {batch.request_counts}"
        await asyncio.sleep(0.1)


@dataclass
class Deployment:
    server: ServerProcess
    database_url: str
    workers: list[WorkerProcess]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> tuple[str, DatabaseFactory]:
    return request.param, request.getfixturevalue(f"{request.param}_database_factory")


@pytest.fixture
async def deployment(
    backend: tuple[str, DatabaseFactory], tmp_path: Path, upstream: UpstreamThread
) -> AsyncIterator[Deployment]:
    name, factory = backend
    async with factory(migrate=True) as database_url:
        extra = {"SWITCHBOARD_WORKER_IN_PROCESS": "false"} if name == "postgres" else {}
        env = batch_env(tmp_path, upstream, database_url, **extra)
        async with switchboard_process(tmp_path, env) as server:
            workers = [start_worker(tmp_path, env)] if name == "postgres" else []
            try:
                yield Deployment(server, database_url, workers)
            finally:
                for worker in workers:
                    worker.process.terminate()
                for worker in workers:
                    assert await asyncio.to_thread(worker.process.wait, 30) == 0, worker.log.read_text()[-1000:]


async def test_the_openai_sdk_runs_a_batch_end_to_end(deployment: Deployment, upstream: UpstreamThread) -> None:
    client = await sdk_client(deployment.server.url, "sdk@example.com")
    served_before = upstream.completions_served
    file = await client.files.create(file=("lines.jsonl", io.BytesIO(chat_lines(60))), purpose="batch")
    batch = await client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    done = await wait_until_ended(client, batch.id, timeout=60)
    assert done.status == "completed", done
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed) == (60, 60)
    assert done.output_file_id is not None
    output = read_jsonl((await client.files.content(done.output_file_id)).content)
    assert sorted(item["custom_id"] for item in output) == sorted(f"line-{i}" for i in range(60))
    assert {item["response"]["body"]["model"] for item in output} == {"chat"}
    assert upstream.completions_served - served_before == 60
    batch_uuid = batch.id.removeprefix("batch_")
    deadline = time.monotonic() + 20
    while True:  # usage records reach the ledger within a move interval
        records = await sql(
            deployment.database_url, f"SELECT count(*) FROM usage_records WHERE batch_id = '{batch_uuid}'"
        )
        if records[0][0] == 60 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert records[0][0] == 60


async def test_a_cancelled_batch_keeps_its_partial_output(deployment: Deployment, upstream: UpstreamThread) -> None:
    client = await sdk_client(deployment.server.url, "cancel@example.com")
    file = await client.files.create(file=("lines.jsonl", io.BytesIO(chat_lines(1000))), purpose="batch")
    batch = await client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    deadline = time.monotonic() + 60
    while (current := await client.batches.retrieve(batch.id)).request_counts is None or (
        current.request_counts.completed < 20
    ):
        assert time.monotonic() < deadline, current
        await asyncio.sleep(0.05)
    cancelling = await client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling"
    done = await wait_until_ended(client, batch.id, timeout=60)
    assert done.status == "cancelled"
    assert done.cancelled_at is not None
    assert done.request_counts is not None
    completed = done.request_counts.completed
    assert 20 <= completed < 1000
    assert done.output_file_id is not None
    assert done.error_file_id is not None
    output = read_jsonl((await client.files.content(done.output_file_id)).content)
    errors = read_jsonl((await client.files.content(done.error_file_id)).content)
    assert len(output) == completed
    assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}
    assert len(output) + len(errors) == 1000
    assert len({item["custom_id"] for item in output + errors}) == 1000
