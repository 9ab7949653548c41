"""The idempotency repository behaves the same on every adapter, and the guard built on it keeps its promises."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from application.idempotency.guard import IdempotencyGuard, IdempotentRequest
from application.unit_of_work import UnitOfWorkFactory
from domain.idempotency.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from domain.idempotency.model import IdempotencyRecord, RecordState, StoredResponse
from domain.shared.errors import Conflict, NotFound, RuleViolation
from tests.contract.test_repositories import T0, at, saved_user
from tests.fakes.clock import FakeClock

pytestmark = pytest.mark.contract
RESPONSE = StoredResponse(status=201, media_type="application/json", body='{"ok": true, "text": "h\\u00e9"}')


def a_record(user_id: uuid.UUID, **overrides: Any) -> IdempotencyRecord:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "key": "key-1",
        "fingerprint": "f" * 64,
        "state": RecordState.IN_PROGRESS,
        "created_at": T0,
        "expires_at": at(600),
    }
    return IdempotencyRecord(**(values | overrides))


class TestIdempotencyRepository:
    async def test_add_find_update_delete(self, uow_factory: UnitOfWorkFactory) -> None:
        user = await saved_user(uow_factory)
        record = a_record(user.id)
        async with uow_factory() as uow:
            await uow.idempotency.add(record)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.idempotency.find(user.id, "key-1") == record
            assert await uow.idempotency.find(user.id, "KEY-1") is None  # keys are case-sensitive
            assert await uow.idempotency.find(uuid.uuid4(), "key-1") is None
            record.state, record.response, record.expires_at = RecordState.COMPLETED, RESPONSE, at(86_400)
            await uow.idempotency.update(record)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.idempotency.find(user.id, "key-1") == record
            await uow.idempotency.delete(record.id)
            await uow.idempotency.delete(record.id)  # twice is fine
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.idempotency.find(user.id, "key-1") is None
            with pytest.raises(NotFound):
                await uow.idempotency.update(record)

    async def test_one_key_per_user_and_the_transaction_goes_on(self, uow_factory: UnitOfWorkFactory) -> None:
        ada, bob = await saved_user(uow_factory), await saved_user(uow_factory)
        async with uow_factory() as uow:
            await uow.idempotency.add(a_record(ada.id))
            await uow.idempotency.add(a_record(bob.id))  # the same key, another user: fine
            await uow.commit()
        async with uow_factory() as uow:
            with pytest.raises(Conflict):
                await uow.idempotency.add(a_record(ada.id))
            await uow.idempotency.add(a_record(ada.id, key="key-2"))
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.idempotency.find(ada.id, "key-2") is not None

    async def test_a_key_claimed_by_a_concurrent_commit_is_a_conflict(self, uow_factory: UnitOfWorkFactory) -> None:
        user = await saved_user(uow_factory)

        async def both() -> None:
            async with uow_factory() as first, uow_factory() as second:
                await first.idempotency.add(a_record(user.id))
                await first.commit()
                await second.idempotency.add(a_record(user.id))
                await second.commit()

        with pytest.raises(Conflict):
            await both()

    async def test_delete_expired_only_touches_that_users_expired_records(self, uow_factory: UnitOfWorkFactory) -> None:
        ada, bob = await saved_user(uow_factory), await saved_user(uow_factory)
        async with uow_factory() as uow:
            await uow.idempotency.add(a_record(ada.id, key="old", expires_at=at(10)))
            await uow.idempotency.add(a_record(ada.id, key="edge", expires_at=at(20)))
            await uow.idempotency.add(a_record(ada.id, key="live", expires_at=at(30)))
            await uow.idempotency.add(a_record(bob.id, key="old", expires_at=at(10)))
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.idempotency.delete_expired(ada.id, at(20)) == 2
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.idempotency.find(ada.id, "live") is not None
            assert await uow.idempotency.find(ada.id, "old") is None
            assert await uow.idempotency.find(bob.id, "old") is not None


def guard(uow_factory: UnitOfWorkFactory, clock: FakeClock) -> IdempotencyGuard:
    return IdempotencyGuard(uow=uow_factory, clock=clock, ttl_seconds=3600, lease_seconds=60)


class TestIdempotencyGuard:
    async def test_run_once_then_replay(self, uow_factory: UnitOfWorkFactory) -> None:
        user = await saved_user(uow_factory)
        request = IdempotentRequest(user.id, "retry-me", "a" * 64)
        calls = 0

        async def operation() -> StoredResponse:
            nonlocal calls
            calls += 1
            return RESPONSE

        clock = FakeClock()
        assert await guard(uow_factory, clock).run(request, operation) == (RESPONSE, False)
        assert await guard(uow_factory, clock).run(request, operation) == (RESPONSE, True)
        assert calls == 1
        clock.advance(seconds=3600)  # kept for the TTL, then the key is free again
        assert await guard(uow_factory, clock).run(request, operation) == (RESPONSE, False)
        assert calls == 2

    async def test_the_same_key_for_another_request_is_refused(self, uow_factory: UnitOfWorkFactory) -> None:
        user = await saved_user(uow_factory)
        clock = FakeClock()
        await guard(uow_factory, clock).run(IdempotentRequest(user.id, "k", "a" * 64), self._ok)
        with pytest.raises(IdempotencyKeyReused):
            await guard(uow_factory, clock).reserve(IdempotentRequest(user.id, "k", "b" * 64))

    async def test_a_duplicate_while_in_progress_is_refused_and_a_lapsed_claim_is_retaken(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        user = await saved_user(uow_factory)
        clock = FakeClock()
        request = IdempotentRequest(user.id, "k", "a" * 64)
        assert await guard(uow_factory, clock).reserve(request) is None
        with pytest.raises(IdempotencyKeyInUse):
            await guard(uow_factory, clock).reserve(request)
        clock.advance(seconds=60)  # the first request crashed without completing: its lease lapses
        assert await guard(uow_factory, clock).reserve(request) is None

    async def test_a_failure_releases_the_key_for_a_retry(self, uow_factory: UnitOfWorkFactory) -> None:
        user = await saved_user(uow_factory)
        request = IdempotentRequest(user.id, "k", "a" * 64)

        async def failing() -> StoredResponse:
            raise RuntimeError("upstream down")

        with pytest.raises(RuntimeError):
            await guard(uow_factory, FakeClock()).run(request, failing)
        assert await guard(uow_factory, FakeClock()).run(request, self._ok) == (RESPONSE, False)

    async def test_concurrent_duplicates_run_once(self, uow_factory: UnitOfWorkFactory) -> None:
        user = await saved_user(uow_factory)
        request = IdempotentRequest(user.id, "k", "a" * 64)
        started = asyncio.Event()

        async def slow() -> StoredResponse:
            started.set()
            await asyncio.sleep(0.05)
            return RESPONSE

        clock = FakeClock()
        results = await asyncio.gather(
            *(guard(uow_factory, clock).run(request, slow) for _ in range(5)), return_exceptions=True
        )
        assert sum(1 for r in results if r == (RESPONSE, False)) == 1
        assert all(isinstance(r, IdempotencyKeyInUse) for r in results if r != (RESPONSE, False))

    @pytest.mark.parametrize("key", ["", "has space", "x" * 256, "naïve", "tab\there"])
    async def test_malformed_keys_are_refused(self, uow_factory: UnitOfWorkFactory, key: str) -> None:
        user = await saved_user(uow_factory)
        with pytest.raises(RuleViolation):
            await guard(uow_factory, FakeClock()).reserve(IdempotentRequest(user.id, key, "a" * 64))

    @staticmethod
    async def _ok() -> StoredResponse:
        return RESPONSE
