"""The official OpenAI SDK's vector-store calls against Switchboard on a loopback port, on the SQLite default and
the offline ``local-embed`` model, unchanged but for base URL and key: stores, files (ingested by the server's
in-process job worker), search with filters, content, attributes, deletion; two tenants with identical text; and
the embedding calls of ingestion and of search in the caller's usage."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from interfaces.http.app import create_app
from tests.api.conftest import PASSWORD, make_settings
from tests.api.serving import serving
from tests.conftest import DatabaseFactory

pytestmark = pytest.mark.api

HANDBOOK = (
    "# Travel policy\n\nEmployees book economy class for flights under six hours. The approval code is TRV-2024.\n\n"
    "## Expenses\n\nReceipts are filed within thirty days; meals are covered up to a daily allowance.\n"
)
POLL = 20  # milliseconds between the SDK's polls


@dataclass
class Server:
    url: str
    app: FastAPI

    async def client(self, email: str) -> openai.AsyncOpenAI:
        async with httpx.AsyncClient(base_url=self.url) as http:
            account = {"email": email, "password": PASSWORD}
            assert (await http.post("/api/v1/auth/register", json=account)).status_code == 201
            token = (await http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            key = (
                await http.post("/api/v1/api-keys", json={"name": "sdk", "scopes": ["chat", "usage"]}, headers=headers)
            ).json()["key"]
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=10)

    async def usage_by_model(self, client: openai.AsyncOpenAI) -> dict[str, Any]:
        await self.app.state.container.usage_recorder().flush()
        async with httpx.AsyncClient(base_url=self.url) as http:
            headers = {"Authorization": f"Bearer {client.api_key}"}
            report = (await http.get("/api/v1/usage", params={"group_by": "model"}, headers=headers)).json()
        return {group["group"]: group for group in report["groups"]}


@pytest.fixture(scope="module")
async def server(sqlite_database_factory: DatabaseFactory) -> AsyncIterator[Server]:
    async with sqlite_database_factory(migrate=True) as url:
        app = create_app(make_settings(database_url=url))
        async with serving(app) as base:
            yield Server(base, app)


@pytest.fixture
async def ada(server: Server) -> AsyncIterator[openai.AsyncOpenAI]:
    client = await server.client(f"ada-{uuid.uuid4().hex[:12]}@example.com")
    yield client
    await client.close()


async def upload(client: openai.AsyncOpenAI, name: str, content: bytes) -> str:
    return (await client.files.create(file=(name, content), purpose="assistants")).id


async def test_a_store_from_files_to_search(ada: openai.AsyncOpenAI, server: Server) -> None:
    handbook = await upload(ada, "handbook.md", HANDBOOK.encode())
    menu = await upload(ada, "menu.html", b"<html><body><h1>Canteen</h1><p>Soup of the day: lentils.</p></body></html>")
    store = await ada.vector_stores.create(
        name="policies",
        file_ids=[handbook],
        metadata={"team": "hr"},
        expires_after={"anchor": "last_active_at", "days": 7},
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20}},
    )
    assert store.id.startswith("vs_")
    assert (store.name, store.metadata, store.expires_after.days) == ("policies", {"team": "hr"}, 7)  # type: ignore[union-attr]

    first = await ada.vector_stores.files.poll(handbook, vector_store_id=store.id, poll_interval_ms=POLL)
    second = await ada.vector_stores.files.create_and_poll(
        file_id=menu, vector_store_id=store.id, attributes={"kind": "menu", "floor": 2}, poll_interval_ms=POLL
    )
    assert (first.status, second.status) == ("completed", "completed")
    assert first.chunking_strategy.static.max_chunk_size_tokens == 100  # type: ignore[union-attr]
    assert second.attributes == {"kind": "menu", "floor": 2}

    found = await ada.vector_stores.retrieve(store.id)
    assert (found.status, found.file_counts.completed, found.file_counts.total) == ("completed", 2, 2)
    assert found.usage_bytes == first.usage_bytes + second.usage_bytes > 0

    page = await ada.vector_stores.search(store.id, query="approval code TRV-2024", max_num_results=3)
    assert page.data[0].file_id == handbook
    assert page.data[0].filename == "handbook.md"
    assert "TRV-2024" in page.data[0].content[0].text
    assert page.data[0].content[0].type == "text"
    on_floor_2 = await ada.vector_stores.search(
        store.id,
        query=["approval code", "soup"],
        filters={
            "type": "and",
            "filters": [{"type": "eq", "key": "kind", "value": "menu"}, {"type": "gte", "key": "floor", "value": 2}],
        },
        ranking_options={"score_threshold": 0.1},
        rewrite_query=True,
    )
    assert [hit.file_id for hit in on_floor_2.data] == [menu]
    assert "lentils" in on_floor_2.data[0].content[0].text

    chunks = [c.text async for c in ada.vector_stores.files.content(menu, vector_store_id=store.id)]
    assert chunks == ["Canteen\nSoup of the day: lentils."]
    completed = [f.id async for f in ada.vector_stores.files.list(store.id, filter="completed", order="asc")]
    assert completed == [handbook, menu]
    assert [f.id async for f in ada.vector_stores.files.list(store.id, filter="failed")] == []

    updated = await ada.vector_stores.files.update(menu, vector_store_id=store.id, attributes={"kind": "lunch"})
    assert updated.attributes == {"kind": "lunch"}
    none_left = await ada.vector_stores.search(
        store.id, query="soup", filters={"type": "eq", "key": "kind", "value": "menu"}
    )
    assert none_left.data == []

    renamed = await ada.vector_stores.update(store.id, name="renamed", expires_after=None)
    assert (renamed.name, renamed.expires_after, renamed.expires_at) == ("renamed", None, None)

    deleted = await ada.vector_stores.files.delete(menu, vector_store_id=store.id)
    assert (deleted.id, deleted.deleted) == (menu, True)
    assert (await ada.vector_stores.search(store.id, query="soup lentils")).data[0].file_id == handbook
    assert (await ada.vector_stores.delete(store.id)).deleted is True
    with pytest.raises(openai.NotFoundError):
        await ada.vector_stores.retrieve(store.id)

    usage = await server.usage_by_model(ada)
    assert usage["local-embed"]["requests"] >= 2 + 4  # two ingestions, four searches
    assert usage["local-embed"]["output_tokens"] == 0


async def test_list_pages_through_stores(ada: openai.AsyncOpenAI) -> None:
    ids = [(await ada.vector_stores.create(name=f"s{i}")).id for i in range(5)]

    first = await ada.vector_stores.list(limit=2, order="asc")
    assert [s.id for s in first.data] == ids[:2]
    assert first.has_more is True
    assert [s.id async for s in ada.vector_stores.list(limit=2, order="asc")] == ids  # the SDK follows ``after``
    before = await ada.vector_stores.list(limit=2, order="asc", before=ids[3])
    assert [s.id for s in before.data] == ids[1:3]
    assert [s.id for s in (await ada.vector_stores.list(limit=100)).data] == ids[::-1]


async def test_errors_in_openai_shape(ada: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await ada.vector_stores.retrieve("vs_" + "0" * 32)
    assert missing.value.code == "vector_store_not_found"
    with pytest.raises(openai.NotFoundError):
        await ada.vector_stores.create(file_ids=["file-" + "0" * 32])
    with pytest.raises(openai.BadRequestError, match="chunk_overlap_tokens"):
        await ada.vector_stores.create(
            chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150}}
        )
    with pytest.raises(openai.BadRequestError):
        await ada.vector_stores.create(expires_after={"anchor": "last_active_at", "days": 0})
    with pytest.raises(openai.BadRequestError, match="not an embedding model"):
        await ada.vector_stores.create(extra_body={"embedding_model": "local"})
    store = await ada.vector_stores.create(name="errors")
    with pytest.raises(openai.BadRequestError):
        await ada.vector_stores.search(store.id, query="x", max_num_results=51)
    with pytest.raises(openai.NotFoundError):
        await ada.vector_stores.files.retrieve("file-" + "1" * 32, vector_store_id=store.id)


async def test_an_unsupported_file_fails_with_a_reason(ada: openai.AsyncOpenAI) -> None:
    image = await upload(ada, "photo.png", b"\x89PNG\r\n\x1a\n")
    store = await ada.vector_stores.create(file_ids=[image])
    failed = await ada.vector_stores.files.poll(image, vector_store_id=store.id, poll_interval_ms=POLL)

    assert failed.status == "failed"
    assert failed.last_error is not None
    assert failed.last_error.code == "unsupported_file"
    counts = (await ada.vector_stores.retrieve(store.id)).file_counts
    assert (counts.failed, counts.completed) == (1, 0)


async def test_an_ingestion_lost_with_its_process_is_queued_again_at_start_up(
    ada: openai.AsyncOpenAI, server: Server
) -> None:
    container = server.app.state.container
    handbook = await upload(ada, "handbook.md", HANDBOOK.encode())
    store = await ada.vector_stores.create(name="restarted")
    queue = container.job_queue()
    queue.put = lambda job: None  # the process dies before its in-memory queue runs the ingestion job
    try:
        attached = await ada.vector_stores.files.create(file_id=handbook, vector_store_id=store.id)
    finally:
        del queue.put
    await asyncio.sleep(0.05)
    assert attached.status == "in_progress"
    assert (await ada.vector_stores.files.retrieve(handbook, vector_store_id=store.id)).status == "in_progress"

    assert await container.resume_ingestion().execute() >= 1  # what the next start-up does
    polled = ada.vector_stores.files.poll(handbook, vector_store_id=store.id, poll_interval_ms=POLL)
    done = await asyncio.wait_for(polled, timeout=10)
    assert done.status == "completed"
    assert (await ada.vector_stores.search(store.id, query="TRV-2024")).data[0].file_id == handbook


async def test_two_tenants_with_identical_text_never_see_each_other(server: Server) -> None:
    ada, bob = await server.client("tenant-ada@example.com"), await server.client("tenant-bob@example.com")
    try:
        stores, files = {}, {}
        for name, client in (("ada", ada), ("bob", bob)):
            files[name] = await upload(client, "same.md", HANDBOOK.encode())
            stores[name] = (await client.vector_stores.create(file_ids=[files[name]])).id
            await client.vector_stores.files.poll(files[name], vector_store_id=stores[name], poll_interval_ms=POLL)

        found = await bob.vector_stores.search(stores["bob"], query=HANDBOOK, max_num_results=50)
        assert found.data
        assert {hit.file_id for hit in found.data} == {files["bob"]}
        with pytest.raises(openai.NotFoundError):
            await bob.vector_stores.search(stores["ada"], query=HANDBOOK)
        with pytest.raises(openai.NotFoundError):
            await bob.vector_stores.files.create(vector_store_id=stores["bob"], file_id=files["ada"])
        with pytest.raises(openai.NotFoundError):
            await bob.vector_stores.files.retrieve(files["ada"], vector_store_id=stores["ada"])
        with pytest.raises(openai.NotFoundError):
            await bob.vector_stores.delete(stores["ada"])
        assert (await ada.vector_stores.retrieve(stores["ada"])).file_counts.completed == 1
    finally:
        await asyncio.gather(ada.close(), bob.close())


async def test_file_batches(ada: openai.AsyncOpenAI) -> None:
    first, second = await upload(ada, "a.txt", b"alpha notes"), await upload(ada, "b.json", b'{"beta": "notes"}')
    store = await ada.vector_stores.create(name="batches")
    batch = await ada.vector_stores.file_batches.create_and_poll(
        vector_store_id=store.id, file_ids=[first, second], attributes={"source": "batch"}, poll_interval_ms=POLL
    )
    assert batch.id.startswith("vsfb_")
    assert (batch.status, batch.file_counts.completed, batch.file_counts.total) == ("completed", 2, 2)
    listed = [f async for f in ada.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)]
    assert {f.id for f in listed} == {first, second}
    assert all(f.attributes == {"source": "batch"} for f in listed)

    image = await upload(ada, "x.png", b"\x89PNG")
    per_file = await ada.vector_stores.file_batches.create_and_poll(
        vector_store_id=store.id, files=[{"file_id": image, "attributes": {"kind": "image"}}], poll_interval_ms=POLL
    )
    assert (per_file.status, per_file.file_counts.failed) == ("failed", 1)
    cancelled = await ada.vector_stores.file_batches.cancel(per_file.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled"
    assert (await ada.vector_stores.retrieve(store.id)).file_counts.total == 3
    with pytest.raises(openai.BadRequestError, match="exactly one"):
        await ada.vector_stores.file_batches.create(
            vector_store_id=store.id, file_ids=[first], files=[{"file_id": first}]
        )
    with pytest.raises(openai.NotFoundError):
        await ada.vector_stores.file_batches.retrieve("vsfb_" + "0" * 32, vector_store_id=store.id)
