"""Fakes of the usage ports: a recorder that keeps records in a list, a limiter whose backend is down, a database
that can be taken down."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from application.unit_of_work import UnitOfWork, UnitOfWorkFactory
from domain.shared.errors import DependencyUnavailable
from domain.usage.model import UsageQuery, UsageRecord
from domain.usage.ports import CompletionCache, Hold, HoldResult, RateLimiter, SpendCounter, UsageRecorder
from domain.usage.rate_limits import RateDecision, RateLimit
from infrastructure.memory.unit_of_work import InMemoryUnitOfWork, InMemoryUnitOfWorkFactory


class ListRecorder(UsageRecorder):
    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    async def record(self, record: UsageRecord) -> None:
        self.records.append(record)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


class DownRateLimiter(RateLimiter):
    """A limiter whose Redis is unreachable."""

    async def acquire(self, limits: Sequence[RateLimit], cost: int = 1) -> RateDecision:
        raise DependencyUnavailable("rate limiter: Redis is unreachable")

    async def adjust(self, limits: Sequence[RateLimit], delta: int, at_ms: int) -> None:
        raise DependencyUnavailable("rate limiter: Redis is unreachable")


class DownSpendCounter(SpendCounter):
    async def get(self, keys: Sequence[str]) -> list[int | None]:
        raise DependencyUnavailable("spend counter: Redis is unreachable")

    async def seed(self, key: str, value: int, ttl_seconds: int) -> None:
        raise DependencyUnavailable("spend counter: Redis is unreachable")

    async def add(self, keys: Sequence[str], amount: int, *, release: Hold | None = None) -> list[bool]:
        raise DependencyUnavailable("spend counter: Redis is unreachable")

    async def hold(
        self, keys: Sequence[str], limits: Sequence[int], amount: int, hold_id: str, ttl_seconds: int
    ) -> HoldResult:
        raise DependencyUnavailable("spend counter: Redis is unreachable")

    async def release(self, keys: Sequence[str], hold_id: str) -> None:
        raise DependencyUnavailable("spend counter: Redis is unreachable")


class DownCompletionCache(CompletionCache):
    async def get(self, key: str):  # type: ignore[no-untyped-def]
        raise DependencyUnavailable("response cache: Redis is unreachable")

    async def put(self, key, completion, ttl_seconds):  # type: ignore[no-untyped-def]
        raise DependencyUnavailable("response cache: Redis is unreachable")


class DownUnitOfWork(InMemoryUnitOfWork):
    async def _begin(self) -> None:
        raise ConnectionRefusedError("database is down")


class SwitchableDatabase(UnitOfWorkFactory):
    """The in-memory database, which a test can take down and bring back; counts the batches written."""

    def __init__(self) -> None:
        self.memory = InMemoryUnitOfWorkFactory()
        self.down = False
        self.attempts = 0

    def __call__(self) -> UnitOfWork:
        self.attempts += 1
        return DownUnitOfWork(self.memory.store) if self.down else self.memory()

    async def stored(self) -> int:
        async with self.memory() as uow:
            [totals] = await uow.usage.summarize(
                UsageQuery(since=datetime(2000, 1, 1, tzinfo=UTC), until=datetime.now(UTC) + timedelta(days=1))
            )
        return totals.requests
