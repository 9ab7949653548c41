"""``/v1/messages/batches`` with the official Anthropic SDK against a server on a loopback port, unchanged: create,
retrieve, list (both directions), cancel, typed ``results()``, delete; validation errors naming the request; someone
else's batch is a 404. The lines run through the model-call pipeline against a fake OpenAI upstream (so each is a
real upstream call); the server's own in-process worker runs them, in memory and on SQLite. The PostgreSQL case with
a separate ``switchboard worker`` process is in ``test_message_batches_workers_e2e.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types.messages import (
    MessageBatch,
    MessageBatchCanceledResult,
    MessageBatchErroredResult,
    MessageBatchSucceededResult,
)

from interfaces.http.app import create_app
from tests.api.conftest import make_settings
from tests.api.serving import serving
from tests.api.test_batches_workers_e2e import CATALOG
from tests.api.test_files_api import api_key
from tests.fakes.upstream import FakeUpstream, UpstreamThread
from tests.fakes.upstream.behaviours import error

pytestmark = pytest.mark.api
UPSTREAM_LATENCY = 0.02  # seconds per upstream call: a 300-request batch on 2 lines at a time runs for seconds


def request(custom_id: str, text: str = "hello", **params: Any) -> dict[str, Any]:
    body = {"model": "chat", "max_tokens": 20, "messages": [{"role": "user", "content": text}], **params}
    return {"custom_id": custom_id, "params": body}


async def wait_for_end(client: anthropic.AsyncAnthropic, batch_id: str, seconds: float = 60) -> MessageBatch:
    deadline = asyncio.get_running_loop().time() + seconds
    while (batch := await client.messages.batches.retrieve(batch_id)).processing_status != "ended":
        assert asyncio.get_running_loop().time() < deadline, f"batch still {batch.processing_status}"
        await asyncio.sleep(0.1)
    return batch


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamThread]:
    with FakeUpstream.run_in_thread(latency=UPSTREAM_LATENCY, record=False) as running:
        yield running


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "memory":
        return {}
    return {"database_url": request.getfixturevalue("sqlite_url"), "file_storage_path": tmp_path / "files"}


@pytest.fixture
async def server(
    backend: dict[str, Any], upstream: UpstreamThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    monkeypatch.setenv("SB_E2E_OPENAI_KEY", "sk-e2e")
    catalog = tmp_path / "models.toml"
    catalog.write_text(CATALOG.format(base=upstream.base_url))
    no_limits = {"rate_limit_key_rpm": 0, "rate_limit_user_rpm": 0, "rate_limit_user_tpm": 0}  # polls add up
    settings = make_settings(
        catalog_path=catalog, batch_line_concurrency=2, batch_jobs_per_batch=1, **no_limits, **backend
    )
    async with serving(create_app(settings)) as url:
        yield url


async def client_of(url: str, name: str) -> anthropic.AsyncAnthropic:
    key = await api_key(url, f"{name}-{id(url)}-{asyncio.get_running_loop().time()}@example.com")
    return anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0, timeout=30)


async def test_the_sdk_runs_a_message_batch_and_reads_typed_results(server: str, upstream: UpstreamThread) -> None:
    client = await client_of(server, "run")
    served = upstream.completions_served
    requests = [request(f"req-{i}", f"question {i}") for i in range(6)]
    created = await client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert created.id.startswith("msgbatch_")
    assert created.type == "message_batch"
    assert created.processing_status == "in_progress"
    assert created.request_counts.processing == 6
    assert created.results_url is None
    assert created.ended_at is None
    assert created.expires_at - created.created_at == timedelta(hours=24)
    with pytest.raises(anthropic.ConflictError):  # not ended yet: as Anthropic, only an ended batch is deleted
        await client.messages.batches.delete(created.id)

    done = await wait_for_end(client, created.id)
    counts = done.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.canceled, counts.expired) == (0, 6, 0, 0, 0)
    assert done.ended_at is not None
    assert done.ended_at >= done.created_at
    assert done.cancel_initiated_at is None
    assert done.archived_at is None
    assert done.results_url == f"{server}/v1/messages/batches/{created.id}/results"
    assert upstream.completions_served - served == 6

    results = [item async for item in await client.messages.batches.results(created.id)]
    assert sorted(r.custom_id for r in results) == sorted(r["custom_id"] for r in requests)
    for item in results:
        assert isinstance(item.result, MessageBatchSucceededResult)
        message = item.result.message
        assert message.type == "message"
        assert message.role == "assistant"
        assert message.model == "chat"
        assert message.content[0].type == "text"
        assert message.content[0].text
        assert message.usage.output_tokens > 0

    listed = [b.id async for b in client.messages.batches.list()]
    assert listed == [created.id]
    deleted = await client.messages.batches.delete(created.id)
    assert (deleted.id, deleted.type) == (created.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.batches.retrieve(created.id)
    assert [b.id async for b in client.messages.batches.list()] == []


async def test_a_request_the_provider_refuses_is_an_errored_result(server: str, upstream: UpstreamThread) -> None:
    client = await client_of(server, "errored")
    upstream.push(error(400, message="the provider says no"))  # the first upstream call of the batch is refused
    batch = await client.messages.batches.create(requests=[request("a"), request("b"), request("c")])  # type: ignore[list-item]
    done = await wait_for_end(client, batch.id)
    assert (done.request_counts.succeeded, done.request_counts.errored) == (2, 1)
    results = [r.result async for r in await client.messages.batches.results(batch.id)]
    [errored] = [r for r in results if isinstance(r, MessageBatchErroredResult)]
    assert errored.error.type == "error"
    assert errored.error.error.type == "invalid_request_error"
    assert sum(isinstance(r, MessageBatchSucceededResult) for r in results) == 2


async def test_cancelling_ends_the_batch_with_canceled_results(server: str) -> None:
    client = await client_of(server, "cancel")
    requests = [request(f"req-{i}") for i in range(300)]
    batch = await client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    canceling = await client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None
    done = await wait_for_end(client, batch.id)
    counts = done.request_counts
    assert counts.canceled > 0
    assert counts.succeeded + counts.canceled == 300
    assert done.ended_at is not None
    assert done.cancel_initiated_at == canceling.cancel_initiated_at
    results = [r async for r in await client.messages.batches.results(batch.id)]
    assert sorted(r.custom_id for r in results) == sorted(r["custom_id"] for r in requests)  # each once
    canceled = [r for r in results if isinstance(r.result, MessageBatchCanceledResult)]
    assert len(canceled) == counts.canceled
    assert all(r.result.type in ("succeeded", "canceled") for r in results)
    with pytest.raises(anthropic.ConflictError):
        await client.messages.batches.cancel(batch.id)  # ended: nothing left to cancel
    assert (await client.messages.batches.delete(batch.id)).type == "message_batch_deleted"


INVALID = [
    ([request("a"), {"custom_id": "b", "params": {"model": "chat"}}], "requests[1] (custom_id 'b'): params"),
    ([request("a"), request("a")], "requests[1] (custom_id 'a'): custom_id 'a' is used by an earlier line"),
    ([request("a", model="no-such-model")], "requests[0] (custom_id 'a')"),
    ([request("a", stream=True)], "requests[0] (custom_id 'a'): params.stream"),
    ([request("a", max_tokens=10**7)], "requests[0] (custom_id 'a')"),
    ([request("not ok!")], "requests.0.custom_id"),
    ([], "requests"),
]


async def test_an_invalid_request_refuses_the_batch_naming_it(server: str) -> None:
    client = await client_of(server, "invalid")
    for requests, named in INVALID:
        with pytest.raises(anthropic.BadRequestError) as refused:
            await client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        body = refused.value.body
        assert isinstance(body, dict)
        assert body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error"
        assert named in body["error"]["message"], (named, body)
    assert [b async for b in client.messages.batches.list()] == []  # nothing stored
    async with httpx.AsyncClient(base_url=server) as http:  # messages are batched here, not through /v1/batches
        openai_batch = {"input_file_id": "file-x", "endpoint": "/v1/messages", "completion_window": "24h"}
        refused_there = await http.post("/v1/batches", json=openai_batch, headers={"x-api-key": client.api_key or ""})
        assert refused_there.status_code == 400
        assert "endpoint" in refused_there.json()["error"]["message"]


async def test_pages_go_both_ways(server: str) -> None:
    client = await client_of(server, "pages")
    ids = [(await client.messages.batches.create(requests=[request(f"r{i}")])).id for i in range(5)]  # type: ignore[list-item]
    newest_first = list(reversed(ids))
    first = await client.messages.batches.list(limit=2)
    assert [b.id for b in first.data] == newest_first[:2]
    assert (first.has_more, first.first_id, first.last_id) == (True, newest_first[0], newest_first[1])
    assert [b.id async for b in await client.messages.batches.list(limit=2)] == newest_first  # the SDK pages on
    older = await client.messages.batches.list(limit=2, after_id=newest_first[1])
    assert [b.id for b in older.data] == newest_first[2:4]
    newer = await client.messages.batches.list(limit=2, before_id=newest_first[4])
    assert [b.id for b in newer.data] == newest_first[2:4]
    assert newer.has_more
    newest = await client.messages.batches.list(limit=5, before_id=newest_first[2])
    assert ([b.id for b in newest.data], newest.has_more) == (newest_first[:2], False)
    with pytest.raises(anthropic.BadRequestError):
        await client.messages.batches.list(limit=1001)
    for batch_id in ids:
        await wait_for_end(client, batch_id)


async def test_someone_elses_batch_is_not_found(server: str) -> None:
    ada, bob = await client_of(server, "ada"), await client_of(server, "bob")
    batch = await ada.messages.batches.create(requests=[request("a")])  # type: ignore[list-item]
    await wait_for_end(ada, batch.id)
    for call in (
        bob.messages.batches.retrieve(batch.id),
        bob.messages.batches.cancel(batch.id),
        bob.messages.batches.delete(batch.id),
        bob.messages.batches.list(after_id=batch.id),
    ):
        with pytest.raises(anthropic.NotFoundError) as missing:
            await call
        assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    async with httpx.AsyncClient(base_url=server) as http:
        headers = {"x-api-key": bob.api_key or ""}
        response = await http.get(f"/v1/messages/batches/{batch.id}/results", headers=headers)
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found_error"
        assert (
            await http.get(f"/v1/messages/batches/{batch.id}", headers={"x-api-key": "sk-wrong"})
        ).status_code == 401
        openai_style = await http.get(f"/v1/batches/{batch.id.replace('msgbatch_', 'batch_')}", headers=headers)
        assert openai_style.status_code == 404  # a message batch is not an OpenAI batch, whatever the prefix
    assert [b.id async for b in bob.messages.batches.list()] == []
    assert [b.id async for b in ada.messages.batches.list()] == [batch.id]


async def test_the_native_list_shows_both_kinds(server: str) -> None:
    client = await client_of(server, "native")
    batch = await client.messages.batches.create(requests=[request("a"), request("b")])  # type: ignore[list-item]
    await wait_for_end(client, batch.id)
    async with httpx.AsyncClient(base_url=server) as http:
        page = (await http.get("/api/v1/batches", headers={"Authorization": f"Bearer {client.api_key}"})).json()
    [item] = page["items"]
    assert (item["id"], item["kind"], item["endpoint"], item["status"]) == (
        batch.id,
        "anthropic",
        "/v1/messages",
        "completed",
    )
    assert item["progress"]["succeeded"] == 2
