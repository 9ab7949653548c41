"""The embedded vector index keeps each store's vectors in memory: a write through another instance (another
process on the same file) must show in the next search, and the cache stays within its budget."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.vectors.model import Chunk, ChunkQuery
from infrastructure.vectors.sqlite import SqliteVectorIndex

pytestmark = pytest.mark.integration


def _chunk(owner: uuid.UUID, store: uuid.UUID, embedding: tuple[float, ...]) -> Chunk:
    return Chunk(
        id=uuid.uuid4(), owner_id=owner, store_id=store, file_id=uuid.uuid4(), position=0, text="some text",
        token_count=2, embedding=embedding,
    )  # fmt: skip


async def test_a_write_elsewhere_reaches_the_next_search(sqlite_engine: AsyncEngine) -> None:
    database = sqlite_engine.url.database or ""
    searcher, writer = SqliteVectorIndex(database), SqliteVectorIndex(database)
    owner, store = uuid.uuid4(), uuid.uuid4()
    query = ChunkQuery(owner_id=owner, store_ids=[store], embedding=(1.0, 0.0), text="")
    first = _chunk(owner, store, (0.0, 1.0))
    await writer.replace_file(store, first.file_id, [first])
    assert [h.chunk.id for h in await searcher.search(query)] == [first.id]  # now cached
    closer = _chunk(owner, store, (1.0, 0.0))
    await writer.replace_file(store, closer.file_id, [closer])
    assert [h.chunk.id for h in await searcher.search(query)] == [closer.id, first.id]
    await writer.delete_store(store)
    assert await searcher.search(query) == []


async def test_the_cache_keeps_at_least_the_last_store_within_its_budget(sqlite_engine: AsyncEngine) -> None:
    index = SqliteVectorIndex(sqlite_engine.url.database or "", cache_bytes=1)
    owner = uuid.uuid4()
    stores = [uuid.uuid4(), uuid.uuid4()]
    for store in stores:
        chunk = _chunk(owner, store, (1.0, 0.0))
        await index.replace_file(store, chunk.file_id, [chunk])
        hits = await index.search(ChunkQuery(owner_id=owner, store_ids=[store], embedding=(1.0, 0.0), text=""))
        assert [h.chunk.id for h in hits] == [chunk.id]
    assert list(index._cache) == [stores[-1]]
    for store in stores:
        await index.delete_store(store)
