"""The official Anthropic SDK against a real ``switchboard serve`` process and a fake upstream on loopback, unchanged:
``messages.batches.create``, polling ``retrieve``, typed ``results()``, ``cancel``. On PostgreSQL the server only
enqueues and a separate ``switchboard worker`` process runs the batch; on the embedded default (SQLite) the server's
own in-process worker runs it (the deployments of ``test_batches_workers_e2e.py``). Each request is one upstream
call and one usage record naming the batch, as an OpenAI batch line is."""

from __future__ import annotations

import asyncio
import time

import anthropic
import httpx
from anthropic.types.messages import MessageBatch, MessageBatchCanceledResult, MessageBatchSucceededResult

from tests.api import test_batches_workers_e2e as e2e
from tests.api.conftest import PASSWORD
from tests.fakes.upstream import UpstreamThread

pytestmark = e2e.pytestmark
# The same deployments (server and worker processes on SQLite and PostgreSQL) and fake upstream.
backend, deployment, upstream = e2e.backend, e2e.deployment, e2e.upstream


async def sdk_client(url: str, email: str) -> anthropic.AsyncAnthropic:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        form = {"username": email, "password": PASSWORD}
        jwt = {"Authorization": f"Bearer {(await http.post('/api/v1/auth/token', data=form)).json()['access_token']}"}
        key = (await http.post("/api/v1/api-keys", json={"name": "batch"}, headers=jwt)).json()["key"]
    return anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=2, timeout=30)


def requests(count: int) -> list[anthropic.types.messages.batch_create_params.Request]:
    return [
        {
            "custom_id": f"line-{i}",
            "params": {"model": "chat", "max_tokens": 50, "messages": [{"role": "user", "content": f"question {i}"}]},
        }
        for i in range(count)
    ]


async def wait_until_ended(client: anthropic.AsyncAnthropic, batch_id: str, timeout: float) -> MessageBatch:
    deadline = time.monotonic() + timeout
    while (batch := await client.messages.batches.retrieve(batch_id)).processing_status != "ended":
        assert time.monotonic() < deadline, f"batch still {batch.processing_status}"
        await asyncio.sleep(0.1)
    return batch


async def test_the_anthropic_sdk_runs_and_cancels_message_batches(
    deployment: e2e.Deployment, upstream: UpstreamThread
) -> None:
    client = await sdk_client(deployment.server.url, "anthropic-sdk@example.com")
    served_before = upstream.completions_served
    batch = await client.messages.batches.create(requests=requests(40))
    done = await wait_until_ended(client, batch.id, timeout=60)
    assert done.request_counts.succeeded == 40
    results = [item async for item in await client.messages.batches.results(batch.id)]
    assert sorted(item.custom_id for item in results) == sorted(f"line-{i}" for i in range(40))
    assert all(isinstance(item.result, MessageBatchSucceededResult) for item in results)
    assert {item.result.message.model for item in results if isinstance(item.result, MessageBatchSucceededResult)} == {
        "chat"
    }
    assert upstream.completions_served - served_before == 40
    batch_uuid = batch.id.removeprefix("msgbatch_")
    deadline = time.monotonic() + 20
    while True:  # usage records reach the ledger within a move interval
        records = await e2e.sql(
            deployment.database_url, f"SELECT count(*) FROM usage_records WHERE batch_id = '{batch_uuid}'"
        )
        if records[0][0] == 40 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert records[0][0] == 40
    assert (await client.messages.batches.delete(batch.id)).type == "message_batch_deleted"
    with_records = await e2e.sql(
        deployment.database_url, f"SELECT count(*) FROM usage_records WHERE batch_id = '{batch_uuid}'"
    )
    assert with_records[0][0] == 40  # deleting a batch keeps its bill

    # Cancelled at once (one deployment for both: a server and a worker take seconds to start).
    batch = await client.messages.batches.create(requests=requests(1000))
    canceling = await client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    done = await wait_until_ended(client, batch.id, timeout=60)
    counts = done.request_counts
    assert counts.canceled > 0
    assert counts.succeeded + counts.canceled == 1000
    results = [item async for item in await client.messages.batches.results(batch.id)]
    assert len({item.custom_id for item in results}) == len(results) == 1000
    assert sum(isinstance(item.result, MessageBatchCanceledResult) for item in results) == counts.canceled
