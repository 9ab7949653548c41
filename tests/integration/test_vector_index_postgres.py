"""The vector index's schema on PostgreSQL: with pgvector (HNSW indexes the planner uses), and without it (the
migration passes, and vector operations are refused with ``vector_index_unavailable`` instead of crashing)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest
from sqlalchemy import pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from domain.vectors.errors import VectorIndexUnavailable
from domain.vectors.model import Chunk, ChunkQuery
from infrastructure.db.engine import create_engine
from infrastructure.db.migrate import downgrade, upgrade_to_head
from infrastructure.vectors.pgvector import PgVectorIndex, nearest_sql, vector_literal

pytestmark = pytest.mark.integration

DatabaseFactory = Callable[..., AbstractAsyncContextManager[str]]


async def _scalar(url: str, sql: str) -> object:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


async def test_the_migration_creates_the_table_exactly_when_the_server_offers_pgvector(postgres_url: str) -> None:
    available = await _scalar(postgres_url, "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")
    exists = await _scalar(postgres_url, "SELECT to_regclass('vector_chunks') IS NOT NULL")
    assert exists is bool(available)


async def test_without_the_vector_schema_every_operation_is_refused(postgres_database_factory: DatabaseFactory) -> None:
    async with postgres_database_factory(migrate=True) as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:  # as on a server without pgvector, whatever this one offers
                await connection.exec_driver_sql("DROP TABLE IF EXISTS vector_chunks")
            index = PgVectorIndex(engine)
            store, file = uuid.uuid4(), uuid.uuid4()
            query = ChunkQuery(owner_id=uuid.uuid4(), store_ids=[store], embedding=(1.0, 0.0), text="hello")
            for operation in (
                index.replace_file(store, file, []),
                index.file_chunks(uuid.uuid4(), store, file),
                index.search(query),
                index.delete_file(store, file),
                index.delete_store(store),
                index.usage_bytes(store),
            ):
                with pytest.raises(VectorIndexUnavailable, match="pgvector"):
                    await operation
        finally:
            await engine.dispose()


async def test_pgvector_schema_goes_down_and_up(pgvector_server: str) -> None:
    url = await _database(pgvector_server, "CREATE")
    try:
        await _down_and_up(url)
    finally:
        await _database(pgvector_server, "DROP", url)


async def _down_and_up(url: str) -> None:
    await upgrade_to_head(url)
    assert (
        await _scalar(url, "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'ix_vector_chunks_embedding_%'") == 7
    )
    await downgrade(url, "0008_usage_prompt_cache")
    assert await _scalar(url, "SELECT to_regclass('vector_chunks') IS NULL") is True
    await upgrade_to_head(url)
    assert await _scalar(url, "SELECT to_regclass('vector_chunks') IS NOT NULL") is True


async def test_a_search_of_an_indexed_size_can_use_its_hnsw_index(pgvector_engine: AsyncEngine) -> None:
    owner, store, file = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    embedding = tuple([1.0] + [0.0] * 383)
    chunk = Chunk(
        id=uuid.uuid4(), owner_id=owner, store_id=store, file_id=file, position=0, text="x", token_count=1,
        embedding=embedding,
    )  # fmt: skip
    index = PgVectorIndex(pgvector_engine)
    await index.replace_file(store, file, [chunk])
    async with pgvector_engine.begin() as connection:
        await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        await connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        await connection.exec_driver_sql("SET LOCAL enable_indexscan = on")
        # Without a scope: only the HNSW index can give the order (with one, the planner may rightly prefer the
        # (owner_id, store_id) b-tree for a small store).
        plan = await connection.execute(
            text("EXPLAIN " + nearest_sql(384, "true")), {"n": 10, "embedding": vector_literal(embedding)}
        )
        assert "ix_vector_chunks_embedding_384" in "\n".join(row[0] for row in plan)
    hits = await index.search(ChunkQuery(owner_id=owner, store_ids=[store], embedding=embedding, text=""))
    assert [h.chunk.id for h in hits] == [chunk.id]
    await index.delete_store(store)


async def _database(server_url: str, action: str, url: str | None = None) -> str:
    """Creates a fresh database on the server (its URL returned), or drops the one at ``url``."""
    admin = make_url(server_url).set(drivername="postgresql+asyncpg")
    name = make_url(url).database if url else f"sb_test_{uuid.uuid4().hex[:12]}"
    engine = create_async_engine(admin, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            statement = f'CREATE DATABASE "{name}"' if action == "CREATE" else f'DROP DATABASE "{name}" WITH (FORCE)'
            await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()
    return admin.set(database=name).render_as_string(hide_password=False)
