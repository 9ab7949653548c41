"""Which vector index adapter a database gets: the one place that knows all three."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.db.engine import is_sqlite_memory
from infrastructure.memory.vector_index import InMemoryVectorIndex
from infrastructure.vectors.pgvector import PgVectorIndex
from infrastructure.vectors.sqlite import SqliteVectorIndex

ClosableVectorIndex = InMemoryVectorIndex | SqliteVectorIndex | PgVectorIndex


def vector_index_for(engine: AsyncEngine | None) -> ClosableVectorIndex:
    """``memory://`` (no engine) and in-memory SQLite: in memory (the data dies with the process either way); a
    SQLite file: the embedded adapter on the same file; PostgreSQL: pgvector on the engine's pool."""
    if engine is None:
        return InMemoryVectorIndex()
    if engine.dialect.name == "sqlite":
        if is_sqlite_memory(engine.url):
            return InMemoryVectorIndex()
        return SqliteVectorIndex(engine.url.database or "")
    return PgVectorIndex(engine)
