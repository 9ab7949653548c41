"""Running a request at most once per ``Idempotency-Key``, whichever endpoint it arrives at.

``reserve`` claims the key (or says why not), the caller runs the request, then ``complete`` stores its response for
replays or ``release`` frees the key for a retry (nothing was done). ``run`` does all three around one call.
A concurrent duplicate is refused (``IdempotencyKeyInUse``), the key reused for another request too
(``IdempotencyKeyReused``); an in-progress claim lapses after ``lease_seconds``, so a crashed request frees its key.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from application.unit_of_work import UnitOfWorkFactory
from domain.idempotency.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from domain.idempotency.model import IdempotencyRecord, RecordState, StoredResponse, check_idempotency_key
from domain.idempotency.ports import IdempotencyRepository
from domain.shared.clock import Clock
from domain.shared.errors import Conflict
from domain.shared.ids import new_id

IN_PROGRESS = "a request with this Idempotency-Key is still in progress; retry after it finishes"
REUSED = "this Idempotency-Key was used for a different request; use a new key for a new request"


@dataclass(frozen=True)
class IdempotentRequest:
    """A request as the key's scope sees it: whose key, which key, and a digest of what was asked."""

    user_id: uuid.UUID
    key: str
    fingerprint: str


class IdempotencyGuard:
    def __init__(
        self, *, uow: UnitOfWorkFactory, clock: Clock, ttl_seconds: float, lease_seconds: float = 600.0
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._lease = timedelta(seconds=lease_seconds)

    async def reserve(self, request: IdempotentRequest) -> StoredResponse | None:
        """``None``: the key is now claimed, run the request. A response: a replay, answer with it."""
        check_idempotency_key(request.key)
        now = self._clock.now()
        async with self._uow() as uow:
            existing = await uow.idempotency.find(request.user_id, request.key)
            if existing is not None and existing.is_live(now):
                if existing.fingerprint != request.fingerprint:
                    raise IdempotencyKeyReused(REUSED)
                if existing.state is RecordState.COMPLETED and existing.response is not None:
                    return existing.response
                raise IdempotencyKeyInUse(IN_PROGRESS)
            await uow.idempotency.delete_expired(request.user_id, now)
            record = IdempotencyRecord(
                id=new_id(),
                user_id=request.user_id,
                key=request.key,
                fingerprint=request.fingerprint,
                state=RecordState.IN_PROGRESS,
                created_at=now,
                expires_at=now + self._lease,
            )
            try:
                await uow.idempotency.add(record)
                await uow.commit()
            except Conflict:  # a concurrent duplicate claimed it between our read and our write
                raise IdempotencyKeyInUse(IN_PROGRESS) from None
        return None

    async def complete(self, request: IdempotentRequest, response: StoredResponse) -> None:
        now = self._clock.now()
        async with self._uow() as uow:
            record = await self._claimed(uow.idempotency, request)
            if record is None:
                return  # the claim lapsed and someone else holds the key now: theirs wins
            record.state = RecordState.COMPLETED
            record.response = response
            record.expires_at = now + self._ttl
            await uow.idempotency.update(record)
            await uow.commit()

    async def release(self, request: IdempotentRequest) -> None:
        async with self._uow() as uow:
            record = await self._claimed(uow.idempotency, request)
            if record is not None:
                await uow.idempotency.delete(record.id)
                await uow.commit()

    async def run(
        self, request: IdempotentRequest, operation: Callable[[], Awaitable[StoredResponse]]
    ) -> tuple[StoredResponse, bool]:
        """The response, and whether it is a replay. A failing ``operation`` releases the key and raises."""
        stored = await self.reserve(request)
        if stored is not None:
            return stored, True
        try:
            response = await operation()
        except BaseException:
            await self.release(request)
            raise
        await self.complete(request, response)
        return response, False

    @staticmethod
    async def _claimed(repository: IdempotencyRepository, request: IdempotentRequest) -> IdempotencyRecord | None:
        record = await repository.find(request.user_id, request.key)
        if record is None or record.state is not RecordState.IN_PROGRESS or record.fingerprint != request.fingerprint:
            return None
        return record
