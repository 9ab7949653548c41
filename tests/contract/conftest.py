from __future__ import annotations

import pytest

from application.unit_of_work import UnitOfWorkFactory
from domain.vectors.ports import VectorIndex
from infrastructure.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from infrastructure.memory.unit_of_work import InMemoryUnitOfWorkFactory
from infrastructure.memory.vector_index import InMemoryVectorIndex

BACKENDS = ["memory", "sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def uow_factory(request: pytest.FixtureRequest) -> UnitOfWorkFactory:
    """The same unit-of-work port over every adapter, each starting empty."""
    if request.param == "memory":
        return InMemoryUnitOfWorkFactory()
    return SqlAlchemyUnitOfWorkFactory(request.getfixturevalue(f"{request.param}_session_factory"))


VECTOR_INDEXES = ["memory"]


@pytest.fixture(params=VECTOR_INDEXES)
def vector_index(request: pytest.FixtureRequest) -> VectorIndex:
    """The vector index port over every adapter, each starting empty."""
    return InMemoryVectorIndex()
