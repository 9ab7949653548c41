"""The journaled usage recorder: a record is on disk (fsynced) before ``record`` returns, and reaches the database
in batches from there. The embedded default, and the fallback of the Redis stream recorder.

- **Group commit.** ``record`` appends the encoded record to the current group and waits for it; one writer task
  writes the whole group with a single ``write`` and ``fdatasync`` in a worker thread (never blocking the event
  loop), wakes the group's callers, and starts on the group that filled up meanwhile. A lone call pays one fsync;
  under load one fsync covers every call that arrived during the previous one.
- **Segments.** The journal is a directory of append-only files, each locked (``flock``) by the process writing it
  (see ``journal_file``). The active segment is sealed after ``batch_size`` records or ``flush_interval_seconds``,
  and the mover writes sealed segments to the database (idempotent on the record id), then deletes them. Records of
  a sealed segment are kept in memory for the mover up to ``capacity``; beyond that they are read back from disk, so
  a database outage of any length costs disk, not memory, and never blocks a request.
- **Recovery.** ``start`` (before the server takes traffic) moves the segments that no live process holds, left by
  a crash, into the database; the mover looks for such segments every ``scan_interval_seconds`` too (a worker
  process that died beside this one). A segment whose records could not be stored stays on disk until they are.
- ``close`` writes what is left within ``close_timeout_seconds``; what the database still refuses then stays in the
  journal for the next start, reported in the log.

If the journal itself fails (disk full, I/O error), the record is written straight to the database instead; only if
that fails too does ``record`` raise, failing the call rather than answering it unrecorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from pathlib import Path

from application.unit_of_work import UnitOfWorkFactory
from domain.usage.model import UsageRecord
from domain.usage.ports import UsageRecorder
from infrastructure.usage.codec import encode
from infrastructure.usage.journal_file import Segment, segment_paths
from infrastructure.usage.ledger_writer import LedgerWriter

logger = logging.getLogger("switchboard.usage")


class JournalUsageRecorder(UsageRecorder):
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        directory: Path,
        capacity: int = 10_000,
        batch_size: int = 1000,
        flush_interval_seconds: float = 1.0,
        retry_base_seconds: float = 0.1,
        retry_max_seconds: float = 5.0,
        close_timeout_seconds: float = 30.0,
        scan_interval_seconds: float = 10.0,
    ) -> None:
        self._ledger = LedgerWriter(
            uow=uow, batch_size=batch_size, retry_base_seconds=retry_base_seconds, retry_max_seconds=retry_max_seconds
        )
        self._directory = directory
        self._capacity = capacity
        self._batch_size = batch_size
        self._interval = flush_interval_seconds
        self._close_timeout = close_timeout_seconds
        self._scan_interval = scan_interval_seconds
        self._lines: list[bytes] = []  # the group being filled
        self._group: asyncio.Future[None] | None = None
        self._writing = False
        self._segment: Segment | None = None
        self._segment_records: list[UsageRecord] | None = []
        self._sealed: deque[tuple[Segment, list[UsageRecord] | None]] = deque()  # records None: read from disk
        self._held = 0  # records of sealed segments kept in memory for the mover
        self._seal_now = False
        self._wake_writer = asyncio.Event()
        self._wake_mover = asyncio.Event()
        self._changed = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self.journaled = 0  # records synced to the journal so far

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def written(self) -> int:
        """Records this recorder stored in the database (its own and those it took over)."""
        return self._ledger.written

    async def start(self) -> None:
        """Moves what earlier processes left in the journal into the database (one attempt each; what fails is
        retried by the mover), then starts the background tasks."""
        for segment in await asyncio.to_thread(self._orphans):
            records = await asyncio.to_thread(segment.read)
            if await self._ledger.store(records, attempts=1):
                logger.info("replayed %d usage records from %s", len(records), segment.path.name)
                await asyncio.to_thread(segment.delete)
            else:
                self._sealed.append((segment, None))
        self._ensure_running()

    async def record(self, record: UsageRecord) -> None:
        self._ensure_running()
        if len(self._lines) >= self._capacity:  # the disk is slower than the traffic: callers wait, nothing is lost
            async with self._changed:
                await self._changed.wait_for(lambda: len(self._lines) < self._capacity)
        if self._group is None:
            self._group = asyncio.get_running_loop().create_future()
        group = self._group
        self._lines.append(encode(record) + b"\n")
        if self._segment_records is not None:
            self._segment_records.append(record)
        self._wake_writer.set()
        try:
            await asyncio.shield(group)  # shared by the group's callers: one of them going away cancels nothing
        except OSError as exc:
            logger.error("the usage journal failed (%r): storing the record directly", exc)
            if not await self._ledger.store([record], deadline=time.monotonic() + self._close_timeout):
                raise

    async def flush(self) -> None:
        """Returns once every record journaled so far is in the database."""
        if not self._tasks:
            return
        self._seal_now = True
        self._wake_writer.set()
        async with self._changed:
            await self._changed.wait_for(self._idle)

    async def close(self) -> None:
        if not self._tasks:
            return
        try:
            await asyncio.wait_for(self.flush(), self._close_timeout)
        except TimeoutError:
            logger.error(
                "usage records could not be stored before shutdown; they stay in the journal at %s (%d segments) "
                "and are stored at the next start",
                self._directory,
                len(self._sealed) + (self._segment is not None),
            )
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for segment, _ in self._sealed:
            segment.close()
        self._sealed.clear()
        if self._segment is not None:
            self._segment.close()
            self._segment = None

    def _idle(self) -> bool:
        active = self._segment is not None and self._segment.count > 0
        return not (self._lines or self._writing or self._sealed or active)

    def _ensure_running(self) -> None:
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._write_groups(), name="usage-journal-writer"),
                loop.create_task(self._move(), name="usage-journal-mover"),
            ]

    # --- the writer: group commit -----------------------------------------------------------------------------

    async def _write_groups(self) -> None:
        while True:
            if not self._lines and not self._seal_now:
                self._wake_writer.clear()
                with contextlib.suppress(TimeoutError):
                    timeout = self._interval if self._segment is not None and self._segment.count else None
                    await asyncio.wait_for(self._wake_writer.wait(), timeout)
            if self._lines:
                await self._write_group()
            segment = self._segment
            if segment is not None and (
                self._seal_now
                or segment.count >= self._batch_size
                or time.monotonic() - segment.opened >= self._interval
            ):
                self._seal()
            self._seal_now = False
            async with self._changed:
                self._changed.notify_all()

    async def _write_group(self) -> None:
        lines, group = self._lines, self._group
        self._lines, self._group = [], None
        assert group is not None
        self._writing = True
        try:
            if self._segment is None:
                self._segment = await asyncio.to_thread(Segment.create, self._directory)
            await asyncio.to_thread(self._segment.append, b"".join(lines), len(lines))
        except OSError as exc:
            group.set_exception(exc)
            if self._segment is not None:  # what it holds may end in a torn line: sealed, read back from disk
                self._segment_records = None
                self._seal()
        else:
            group.set_result(None)
            self.journaled += len(lines)
        finally:
            self._writing = False

    def _seal(self) -> None:
        segment, records = self._segment, self._segment_records
        assert segment is not None
        self._segment, self._segment_records = None, []
        if segment.count == 0:
            segment.delete()
            return
        if records is not None and self._held + len(records) <= self._capacity:
            self._held += len(records)
        else:
            records = None
        self._sealed.append((segment, records))
        self._wake_mover.set()

    # --- the mover: journal -> database ------------------------------------------------------------------------

    async def _move(self) -> None:
        next_scan = time.monotonic() + self._scan_interval
        while True:
            if not self._sealed:
                self._wake_mover.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake_mover.wait(), max(0.0, next_scan - time.monotonic()))
            if time.monotonic() >= next_scan:
                self._sealed.extend((segment, None) for segment in await asyncio.to_thread(self._orphans))
                next_scan = time.monotonic() + self._scan_interval
            while self._sealed:
                segment, held = self._sealed[0]
                records = held if held is not None else await asyncio.to_thread(segment.read)
                await self._ledger.store(records)
                self._sealed.popleft()
                self._held -= len(held) if held is not None else 0
                await asyncio.to_thread(segment.delete)
                async with self._changed:
                    self._changed.notify_all()

    def _orphans(self) -> list[Segment]:
        """The segments no live process holds (``Segment.take_over`` fails on this recorder's own)."""
        taken = []
        for path in segment_paths(self._directory):
            segment = Segment.take_over(path)
            if segment is not None:
                taken.append(segment)
        return taken
