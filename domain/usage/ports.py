"""Ports of the usage context: the usage ledger, the buffered recorder, rate limiter, spend counter, response cache.

Adapters of the shared-state ports (limiter, counter, cache) exist in memory (one process) and on Redis (many
processes). When their backend is unreachable they raise ``DependencyUnavailable``; the use cases decide whether
that fails the request (fail-closed) or lets it through (fail-open).
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.llm.model import Completion
from domain.usage.model import UsageQuery, UsageRecord, UsageTotals
from domain.usage.rate_limits import RateDecision, RateLimit


class UsageRepository(abc.ABC):
    """The usage ledger, inside a unit of work."""

    @abc.abstractmethod
    async def add_many(self, records: Sequence[UsageRecord]) -> None:
        """Inserts a batch. Idempotent: a record whose id is already stored is skipped, so a batch whose commit
        outcome was unknown can be written again."""

    @abc.abstractmethod
    async def summarize(self, query: UsageQuery) -> list[UsageTotals]:
        """Totals of the matching records, one per group (ordered by group), or one ungrouped total."""

    @abc.abstractmethod
    async def total_cost(
        self, *, since: datetime, user_id: uuid.UUID | None = None, api_key_id: uuid.UUID | None = None
    ) -> int:
        """Micro-dollars spent since ``since`` by a user or an API key on the operator's provider keys (seeds the
        budget counters; calls made with a user's own key are not charged to budgets)."""


class UsageRecorder(abc.ABC):
    """Where the gateway hands each usage record. ``record`` returns once the record is accepted: for the durable
    adapters, once it would survive the process being killed (fsynced to a journal, or acknowledged by Redis); it may
    wait for room, never drops it. Records reach the ledger in batches, idempotently on their id."""

    async def start(self) -> None:  # noqa: B027 - a default: most recorders have nothing to recover
        """Before the first record: recovers what an earlier process left undelivered, starts background work."""

    @abc.abstractmethod
    async def record(self, record: UsageRecord) -> None: ...

    @abc.abstractmethod
    async def flush(self) -> None:
        """Writes every record accepted so far before returning."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flushes and stops; records that still cannot be written are reported, never dropped silently."""


class RateLimiter(abc.ABC):
    @abc.abstractmethod
    async def acquire(self, limits: Sequence[RateLimit], cost: int = 1) -> RateDecision:
        """All or nothing, atomically: counts ``cost`` against every limit if each has room, else counts nothing."""

    @abc.abstractmethod
    async def adjust(self, limits: Sequence[RateLimit], delta: int, at_ms: int) -> None:
        """Corrects an earlier ``acquire`` (made at ``at_ms``, its decision's) by ``delta`` units, which may be
        negative (a refund). Never refuses. A refund for a reservation that already left the window is dropped."""


@dataclass(frozen=True)
class Hold:
    """A call's most possible cost, held on the counters ``keys`` under ``id`` until the call is settled."""

    id: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class HoldResult:
    """What ``SpendCounter.hold`` found: whether the amount is now held, and each counter's committed total (its
    spend plus the live holds of calls in flight) before this hold; ``None`` for a counter not seeded yet."""

    held: bool
    totals: tuple[int | None, ...]


class SpendCounter(abc.ABC):
    """Running totals of spend per budget and period (micro-dollars), seeded from the ledger once, and the holds of
    calls in flight: a call's most possible cost is held when it is admitted and released when it is settled, so
    concurrent calls cannot overrun a budget together. A hold lapses after its TTL (an instance that died)."""

    @abc.abstractmethod
    async def get(self, keys: Sequence[str]) -> list[int | None]:
        """The current totals; ``None`` for a counter not seeded yet."""

    @abc.abstractmethod
    async def seed(self, key: str, value: int, ttl_seconds: int) -> None:
        """Sets the counter to ``value`` unless it already exists (first seeder wins)."""

    @abc.abstractmethod
    async def add(self, keys: Sequence[str], amount: int, *, release: Hold | None = None) -> list[bool]:
        """Adds ``amount`` to each counter that exists; returns, per key, whether it existed. With ``release``, drops
        that hold in the same step (with Redis: the same script call, so a settlement is one round trip)."""

    @abc.abstractmethod
    async def hold(
        self, keys: Sequence[str], limits: Sequence[int], amount: int, hold_id: str, ttl_seconds: int
    ) -> HoldResult:
        """All or nothing, atomically: when every counter is seeded and its committed total is below its limit with
        room for ``amount``, holds ``amount`` on each under ``hold_id`` for at most ``ttl_seconds``."""

    @abc.abstractmethod
    async def release(self, keys: Sequence[str], hold_id: str) -> None:
        """Drops the hold ``hold_id`` from each counter (nothing for a hold that lapsed or never was)."""


class CompletionCache(abc.ABC):
    @abc.abstractmethod
    async def get(self, key: str) -> Completion | None: ...

    @abc.abstractmethod
    async def put(self, key: str, completion: Completion, ttl_seconds: int) -> None: ...
