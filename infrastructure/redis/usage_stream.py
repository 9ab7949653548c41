"""The Redis stream usage recorder: a record is in Redis (acknowledged by the server) before ``record`` returns, and
a consumer group on every instance moves the stream into the database.

- ``record`` appends the encoded record with ``XADD`` through the shared script batcher: the settlement of a call
  (spend counters, token limits) and its record go out in the same ``EVALSHA``, one round trip, atomic on Redis, and
  concurrent calls share it. No round trip of its own.
- Every instance runs one consumer of the group ``usage-writers``: it reads up to ``batch_size`` new entries
  (``XREADGROUP``), writes them to the database in one transaction (idempotent on the record id), then acknowledges
  and deletes them (``XACK`` + ``XDEL`` in one ``MULTI``), so the stream only ever holds records not yet stored.
  After a partial batch it waits ``flush_interval_seconds`` for the next to fill.
- Entries an instance read but never acknowledged (it died, or its database write still fails) are claimed by any
  instance once idle for ``claim_idle_seconds`` (``XAUTOCLAIM``), and written again: a redelivery changes nothing.
- While the database is down the consumer retries its batch and reads nothing more: records accumulate in Redis, up
  to ``max_length`` entries; past that, and whenever Redis does not answer, ``record`` falls back to the local journal
  (``JournalUsageRecorder``), whose own mover stores them. Requests never wait for the database.
- A Redis restart without persistence loses the entries not yet moved (at most about one ``flush_interval_seconds``
  of traffic plus any backlog); the group is created again when missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from application.degraded import DegradedWarning
from domain.usage.model import UsageRecord
from domain.usage.ports import UsageRecorder
from infrastructure.redis.batching import shared_batcher
from infrastructure.usage.codec import decode, encode
from infrastructure.usage.journal import JournalUsageRecorder
from infrastructure.usage.ledger_writer import LedgerWriter

logger = logging.getLogger("switchboard.usage")

GROUP = "usage-writers"
FIELD = b"r"
# KEYS: the stream. ARGV: its longest length, the encoded record. Returns the entry id, or 0 when the stream is full.
APPEND = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
return redis.call('XADD', KEYS[1], '*', 'r', ARGV[2])
"""
_REDIS_DOWN = (RedisError, OSError, TimeoutError)
READ_BLOCK_SECONDS = 0.5  # longest a read waits for new entries (and a stopping consumer for its read)
FLUSH_CLAIM_SECONDS = 0.5  # a flush waiting longer for entries another consumer holds claims them


class RedisStreamUsageRecorder(UsageRecorder):
    def __init__(
        self,
        *,
        redis: Redis,
        reader: Redis,
        prefix: str,
        ledger: LedgerWriter,
        fallback: JournalUsageRecorder,
        batch_size: int = 1000,
        flush_interval_seconds: float = 1.0,
        max_length: int = 1_000_000,
        claim_idle_seconds: float = 60.0,
        close_timeout_seconds: float = 30.0,
    ) -> None:
        self._redis = redis
        self._reader = reader  # its own connections: a blocking read must not hold one the requests need
        self._key = prefix + "usage:stream"
        self._append = shared_batcher(redis).script(APPEND)
        self._ledger = ledger
        self._fallback = fallback
        self._batch_size = batch_size
        self._interval = flush_interval_seconds
        self._max_length = max_length
        self._claim_idle_ms = max(1, int(claim_idle_seconds * 1000))
        self._close_timeout = close_timeout_seconds
        self._consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._last_id: bytes | None = None  # the newest entry this instance added
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._down = DegradedWarning("usage stream")
        self.streamed = 0  # records appended to the stream
        self.fell_back = 0  # records sent to the journal instead

    @property
    def key(self) -> str:
        return self._key

    @property
    def fallback(self) -> JournalUsageRecorder:
        return self._fallback

    async def start(self) -> None:
        await self._fallback.start()
        self._ensure_running()

    async def record(self, record: UsageRecord) -> None:
        try:
            entry = await self._append([self._key], [self._max_length, encode(record)])
        except _REDIS_DOWN as exc:
            self._down.warn(exc, "usage records go to the local journal")
            entry = None
        if isinstance(entry, bytes):
            self._last_id = entry
            self.streamed += 1
            return
        if entry is not None:
            self._down.warn(RuntimeError("stream full"), "the database is behind; usage records go to the journal")
        self.fell_back += 1
        await self._fallback.record(record)

    async def flush(self) -> None:
        """Returns once every record this instance added is in the database (moved by any instance)."""
        await self._fallback.flush()
        self._ensure_running()
        started = time.monotonic()
        while self._last_id is not None:
            self._wake.set()
            try:
                if not await self._redis.xrange(self._key, "-", self._last_id, count=1):
                    return
                if time.monotonic() - started > FLUSH_CLAIM_SECONDS:  # held by a consumer that stopped: take them
                    await self._claim(min_idle_ms=int(FLUSH_CLAIM_SECONDS * 1000))
            except _REDIS_DOWN as exc:
                self._down.warn(exc, "usage records in the stream wait for Redis")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        try:
            if self._last_id is not None:
                await asyncio.wait_for(self.flush(), self._close_timeout)
        except TimeoutError:
            logger.error(
                "usage records are still in the Redis stream %s at shutdown; any instance will store them", self._key
            )
        finally:
            if self._task is not None:
                await self._stop_consumer()
            await self._fallback.close()
            await self._reader.aclose()

    def _ensure_running(self) -> None:
        if (self._task is None or self._task.done()) and not self._stopping:
            self._task = asyncio.get_running_loop().create_task(self._consume(), name="usage-stream-consumer")

    async def _consume(self) -> None:
        next_claim = 0.0  # at once: a restarted instance takes over what its predecessor left
        failures = 0
        while not self._stopping:
            try:
                if time.monotonic() >= next_claim:
                    await self._claim()
                    next_claim = time.monotonic() + self._claim_idle_ms / 1000
                read = await self._read()
                failures = 0
                if 0 < read < self._batch_size and not self._stopping:  # a partial batch: let the next one fill
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._interval)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self._create_group()
            except _REDIS_DOWN as exc:
                failures += 1
                self._down.warn(exc, "usage records wait in the stream until Redis answers again")
                await asyncio.sleep(min(2.0, 0.05 * 2**failures))

    async def _stop_consumer(self) -> None:
        """Lets the consumer finish the batch in hand (its blocking read ends within a second); cancels it only when
        that takes too long, then stores what it had been delivered."""
        assert self._task is not None
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), READ_BLOCK_SECONDS + 1)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            await self._give_back()
        except Exception as exc:  # the consumer had failed: nothing in hand
            logger.warning("the usage stream consumer had stopped: %r", exc)
        self._task = None

    async def _give_back(self) -> None:
        """Stores what this consumer was delivered and had not acknowledged when it stopped (a read cut short), so
        that no entry waits ``claim_idle_seconds`` for another instance; what fails waits for that instead."""
        try:
            async with asyncio.timeout(self._close_timeout):
                while True:
                    reply: Any = await self._reader.xreadgroup(
                        GROUP, self._consumer, {self._key: "0"}, count=self._batch_size
                    )
                    entries = reply[0][1] if reply else []
                    if not entries:
                        return
                    await self._store(entries)
        except (*_REDIS_DOWN, ResponseError, TimeoutError) as exc:
            logger.warning("usage records read by this instance are left for another one to claim (%r)", exc)

    async def _create_group(self) -> None:
        try:
            await self._reader.xgroup_create(self._key, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _read(self) -> int:
        """Moves one batch of new entries into the database; how many it read."""
        block_ms = max(1, int(min(self._interval, READ_BLOCK_SECONDS) * 1000))
        reply: Any = await self._reader.xreadgroup(
            GROUP, self._consumer, {self._key: ">"}, count=self._batch_size, block=block_ms
        )
        entries = reply[0][1] if reply else []
        await self._store(entries)
        return len(entries)

    async def _claim(self, min_idle_ms: int | None = None) -> None:
        """Takes over entries other consumers read and left unacknowledged for too long, and stores them."""
        cursor: Any = "0-0"
        idle = self._claim_idle_ms if min_idle_ms is None else min_idle_ms
        while True:
            reply = await self._reader.xautoclaim(
                self._key, GROUP, self._consumer, min_idle_time=idle, start_id=cursor, count=100
            )
            cursor, entries = reply[0], reply[1]
            deleted = reply[2] if len(reply) > 2 else []
            if deleted:
                await self._acknowledge(deleted)
            if entries:
                logger.info("claimed %d usage records left unstored by another consumer", len(entries))
                await self._store(entries)
            if cursor in (b"0-0", "0-0"):
                return

    async def _store(self, entries: list[tuple[bytes, dict[bytes, bytes] | None]]) -> None:
        if not entries:
            return
        records = []
        for entry_id, fields in entries:
            try:
                records.append(decode((fields or {})[FIELD]))
            except (KeyError, ValueError) as exc:  # never written by this code: reported, not retried forever
                logger.error("dropping unreadable usage stream entry %r (%s): %r", entry_id, exc, fields)
        await self._ledger.store(records)  # retried until the database takes it: nothing more is read meanwhile
        await self._acknowledge([entry_id for entry_id, _ in entries])

    async def _acknowledge(self, ids: list[bytes]) -> None:
        async with self._reader.pipeline(transaction=True) as pipe:
            pipe.xack(self._key, GROUP, *ids)
            pipe.xdel(self._key, *ids)
            await pipe.execute()
