from __future__ import annotations

import pytest

from application.unit_of_work import UnitOfWorkFactory
from infrastructure.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from infrastructure.memory.unit_of_work import InMemoryUnitOfWorkFactory

BACKENDS = ["memory", "sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def uow_factory(request: pytest.FixtureRequest) -> UnitOfWorkFactory:
    """The same unit-of-work port over every adapter, each starting empty."""
    if request.param == "memory":
        return InMemoryUnitOfWorkFactory()
    return SqlAlchemyUnitOfWorkFactory(request.getfixturevalue(f"{request.param}_session_factory"))
