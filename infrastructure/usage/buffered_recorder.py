"""The buffered usage recorder: records wait in memory and reach the ledger in batches, off the response path.

- ``record`` appends to a bounded buffer and returns: no database round trip per call. When the buffer is full it
  waits for room (backpressure on the callers), it never drops a record.
- A background task writes a batch as soon as ``batch_size`` records are waiting, and whatever is waiting at least
  every ``flush_interval_seconds``; up to ``writers`` batches are in flight at once, so that encoding the next batch
  overlaps the database's work on the previous one.
- A batch that fails (database down) is retried with capped exponential backoff, the batch kept aside and counted
  against the buffer's bound, so memory stays bounded while callers wait. The insert is idempotent (by record id),
  so a batch whose commit outcome was unknown is simply written again.
- ``close`` (on shutdown, after the server drained its requests) writes everything left. If the database is still
  unreachable when ``close_timeout_seconds`` runs out, each record not written is logged as JSON at ERROR level for
  an operator to replay: reported, never silently dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import asdict

import orjson

from application.unit_of_work import UnitOfWorkFactory
from domain.usage.model import UsageRecord
from domain.usage.ports import UsageRecorder

logger = logging.getLogger("switchboard.usage")


class BufferedUsageRecorder(UsageRecorder):
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        capacity: int = 10_000,
        batch_size: int = 1000,
        flush_interval_seconds: float = 1.0,
        retry_base_seconds: float = 0.1,
        retry_max_seconds: float = 5.0,
        close_timeout_seconds: float = 30.0,
        writers: int = 2,
    ) -> None:
        if batch_size > capacity:
            raise ValueError("the batch size must not exceed the buffer's capacity")
        self._uow = uow
        self._capacity = capacity
        self._batch_size = batch_size
        self._interval = flush_interval_seconds
        self._retry_base = retry_base_seconds
        self._retry_max = retry_max_seconds
        self._close_timeout = close_timeout_seconds
        self._writers = writers
        self._active: set[asyncio.Task[None]] = set()
        self._buffer: deque[UsageRecord] = deque()
        self._in_flight = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self._closing = False
        self._deadline = float("inf")
        self.written = 0  # records stored so far
        self.failed_batches = 0  # write attempts that failed (and were retried)

    @property
    def pending(self) -> int:
        """Records accepted and not yet stored."""
        return len(self._buffer) + self._in_flight

    async def record(self, record: UsageRecord) -> None:
        if self._closing:  # a straggler after shutdown began: write it at once rather than lose it
            await self._write_with_retry([record])
            return
        self._ensure_running()
        if self.pending >= self._capacity:
            async with self._changed:
                await self._changed.wait_for(lambda: self.pending < self._capacity or self._closing)
        self._buffer.append(record)
        if len(self._buffer) >= self._batch_size:
            self._wake.set()

    async def flush(self) -> None:
        if self._task is None:
            return
        self._wake.set()
        async with self._changed:
            await self._changed.wait_for(lambda: self.pending == 0)

    async def close(self) -> None:
        self._closing = True
        self._deadline = time.monotonic() + self._close_timeout
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._buffer:  # the writer died before the end: report what it left
            self._report_lost(list(self._buffer))
            self._buffer.clear()

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="usage-recorder")

    async def _run(self) -> None:
        while not (self._closing and not self._buffer):
            if len(self._buffer) < self._batch_size and not self._closing:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._interval)
            while self._buffer:
                if len(self._active) >= self._writers:
                    await asyncio.wait(self._active, return_when=asyncio.FIRST_COMPLETED)
                batch = [self._buffer.popleft() for _ in range(min(self._batch_size, len(self._buffer)))]
                self._in_flight += len(batch)
                task = asyncio.create_task(self._write_batch(batch))
                self._active.add(task)
                task.add_done_callback(self._active.discard)
            if self._active and (self._closing or len(self._buffer) < self._batch_size):
                await asyncio.wait(self._active)

    async def _write_batch(self, batch: list[UsageRecord]) -> None:
        try:
            await self._write_with_retry(batch)
        finally:
            self._in_flight -= len(batch)
            async with self._changed:
                self._changed.notify_all()

    async def _write_with_retry(self, batch: list[UsageRecord]) -> None:
        attempt = 0
        while True:
            try:
                async with self._uow() as uow:
                    await uow.usage.add_many(batch)
                    await uow.commit()
            except Exception as exc:
                self.failed_batches += 1
                if time.monotonic() >= self._deadline:
                    self._report_lost(batch)
                    return
                delay = min(self._retry_max, self._retry_base * 2**attempt)
                attempt += 1
                logger.warning("storing %d usage records failed (%r); retrying in %.1f s", len(batch), exc, delay)
                await asyncio.sleep(min(delay, max(0.0, self._deadline - time.monotonic())))
            else:
                self.written += len(batch)
                return

    @staticmethod
    def _report_lost(batch: list[UsageRecord]) -> None:
        logger.error("%d usage records could not be stored before shutdown; they follow as JSON", len(batch))
        for record in batch:
            logger.error("unstored usage record: %s", orjson.dumps(asdict(record), default=str).decode())
