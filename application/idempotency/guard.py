"""Running a request at most once per ``Idempotency-Key``, whichever endpoint it arrives at.

``reserve`` claims the key (or says why not), the caller runs the request, then ``complete`` stores its response for
replays or ``release`` frees the key for a retry (nothing was done). ``run`` does all three around one call, and
``stream`` around a streamed one: the key completes when the stream hands on its final item (before the client can
read it, so a retry after the last event is a replay), and is released when the stream is closed without one.
A concurrent duplicate is refused (``IdempotencyKeyInUse``), the key reused for another request too
(``IdempotencyKeyReused``); an in-progress claim lapses after ``lease_seconds``, so a crashed request frees its key.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

from application.streams import Streamed, run_to_end
from application.unit_of_work import UnitOfWorkFactory
from domain.idempotency.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from domain.idempotency.model import IdempotencyRecord, RecordState, StoredResponse, check_idempotency_key
from domain.idempotency.ports import IdempotencyRepository
from domain.shared.clock import Clock
from domain.shared.errors import Conflict
from domain.shared.ids import new_id

T = TypeVar("T")
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

    async def stream(
        self,
        request: IdempotentRequest | None,
        open_stream: Callable[[], Awaitable[Streamed[T]]],
        final: Callable[[T], StoredResponse | None],
    ) -> StoredResponse | KeyedStream[T]:
        """A stored response (a replay: answer with it), or the opened stream, whose key completes with
        ``final(item)`` when an item is final and is released if the stream closes before one. A failure to open
        releases the key and raises. No ``request`` (no key given): the stream as it is, nothing kept."""
        if request is None:
            return KeyedStream(await open_stream(), None, final)
        stored = await self.reserve(request)
        if stored is not None:
            return stored
        try:
            opened = await open_stream()
        except BaseException:
            await self.release(request)
            raise
        return KeyedStream(opened, (self, request), final)

    @staticmethod
    async def _claimed(repository: IdempotencyRepository, request: IdempotentRequest) -> IdempotencyRecord | None:
        record = await repository.find(request.user_id, request.key)
        if record is None or record.state is not RecordState.IN_PROGRESS or record.fingerprint != request.fingerprint:
            return None
        return record


class KeyedStream(Generic[T]):
    """A stream whose items settle its ``Idempotency-Key``: completed by the final one, released by a close before."""

    def __init__(
        self,
        inner: Streamed[T],
        key: tuple[IdempotencyGuard, IdempotentRequest] | None,
        final: Callable[[T], StoredResponse | None],
    ) -> None:
        self._inner = inner
        self._key = key
        self._final = final

    @property
    def cache_status(self) -> str:
        return self._inner.cache_status

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

    async def _items(self) -> AsyncIterator[T]:
        async for item in self._inner:
            if self._key is not None and (stored := self._final(item)) is not None:
                guard, request = self._key
                await guard.complete(request, stored)
                self._key = None  # a completion cut half-way leaves the key to ``aclose`` (it frees only claims)
            yield item

    async def aclose(self, cause: BaseException | None = None) -> None:
        await run_to_end(self._close_and_release(cause))

    async def _close_and_release(self, cause: BaseException | None) -> None:
        try:
            await self._inner.aclose(cause)
        finally:
            if self._key is not None:
                guard, request = self._key
                self._key = None
                await guard.release(request)
