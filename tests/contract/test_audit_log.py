"""The audit trail port on every adapter: append, read a target's history, publish only what was committed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from application.unit_of_work import UnitOfWorkFactory
from domain.audit.model import AuditEntry
from infrastructure.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from infrastructure.memory.unit_of_work import InMemoryUnitOfWorkFactory
from tests.contract.conftest import BACKENDS
from tests.contract.test_repositories import T0

pytestmark = pytest.mark.contract


class Published:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def __call__(self, entries: Sequence[AuditEntry]) -> None:
        self.entries.extend(entries)


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture(params=BACKENDS)
def audited_uow(request: pytest.FixtureRequest, published: Published) -> UnitOfWorkFactory:
    if request.param == "memory":
        return InMemoryUnitOfWorkFactory(on_audit=published)
    session_factory = request.getfixturevalue(f"{request.param}_session_factory")
    return SqlAlchemyUnitOfWorkFactory(session_factory, on_audit=published)


def an_entry(target_id: str = "u1", seconds: float = 0, **overrides: Any) -> AuditEntry:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "occurred_at": T0 + timedelta(seconds=seconds),
        "actor_id": uuid.uuid4(),
        "actor_api_key_id": None,
        "action": "user.update",
        "target_type": "user",
        "target_id": target_id,
        "before": {"role": "member", "is_active": True},
        "after": {"role": "admin", "is_active": False},
        "request_id": "req-1",
    }
    return AuditEntry(**(values | overrides))


class TestAuditLog:
    async def test_entries_round_trip_newest_first_per_target(self, audited_uow: UnitOfWorkFactory) -> None:
        older, newer, other = an_entry(seconds=1), an_entry(seconds=2, actor_api_key_id=uuid.uuid4()), an_entry("u2")
        async with audited_uow() as uow:
            for entry in (older, newer, other):
                await uow.audit_log.add(entry)
            await uow.commit()
        async with audited_uow() as uow:
            assert await uow.audit_log.list_by_target("user", "u1") == [newer, older]
            assert await uow.audit_log.list_by_target("user", "u1", limit=1) == [newer]
            assert await uow.audit_log.list_by_target("user", "nobody") == []

    async def test_only_committed_entries_are_stored_and_published(
        self, audited_uow: UnitOfWorkFactory, published: Published
    ) -> None:
        kept, dropped = an_entry("u1"), an_entry("u1", before=None, after={"role": "admin"})
        async with audited_uow() as uow:
            await uow.audit_log.add(dropped)  # no commit: rolled back
        assert published.entries == []
        async with audited_uow() as uow:
            await uow.audit_log.add(kept)
            assert published.entries == []  # not before the commit
            await uow.commit()
        assert published.entries == [kept]
        async with audited_uow() as uow:
            assert await uow.audit_log.list_by_target("user", "u1") == [kept]
