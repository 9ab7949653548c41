from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from application.unit_of_work import UnitOfWorkFactory
from domain.vectors.ports import VectorIndex
from infrastructure.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from infrastructure.memory.unit_of_work import InMemoryUnitOfWorkFactory
from infrastructure.vectors.factory import vector_index_for

BACKENDS = ["memory", "sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def uow_factory(request: pytest.FixtureRequest) -> UnitOfWorkFactory:
    """The same unit-of-work port over every adapter, each starting empty."""
    if request.param == "memory":
        return InMemoryUnitOfWorkFactory()
    return SqlAlchemyUnitOfWorkFactory(request.getfixturevalue(f"{request.param}_session_factory"))


VECTOR_INDEXES = ["memory", "sqlite", "pgvector"]


@pytest.fixture(params=VECTOR_INDEXES)
def vector_engine(request: pytest.FixtureRequest) -> AsyncEngine | None:
    """The database of each vector index adapter (none for the in-memory one); looked up from a sync fixture."""
    if request.param == "memory":
        return None
    engine: AsyncEngine = request.getfixturevalue(f"{request.param}_engine")
    return engine


@pytest.fixture
async def vector_index(vector_engine: AsyncEngine | None) -> AsyncIterator[VectorIndex]:
    """The vector index port over every adapter, each starting empty (the SQLite one with a cold cache)."""
    if vector_engine is not None:
        async with vector_engine.begin() as connection:
            await connection.exec_driver_sql("DELETE FROM vector_chunks")
            if vector_engine.dialect.name == "sqlite":
                await connection.exec_driver_sql("DELETE FROM vector_store_generations")
    index = vector_index_for(vector_engine)
    yield index
    await index.close()
