"""Spend counters for one process. With several instances, use Redis: each process would only see its own spend."""

from __future__ import annotations

import time
from collections.abc import Sequence

from domain.usage.ports import Hold, HoldResult, SpendCounter


class InMemorySpendCounter(SpendCounter):
    def __init__(self) -> None:
        self._values: dict[str, tuple[int, float]] = {}  # key -> (micros, expires at, monotonic)
        self._holds: dict[str, dict[str, tuple[int, float]]] = {}  # key -> hold id -> (micros, lapses at)

    async def get(self, keys: Sequence[str]) -> list[int | None]:
        now = time.monotonic()
        values: list[int | None] = []
        for key in keys:
            found = self._values.get(key)
            if found is not None and found[1] <= now:
                del self._values[key]
                found = None
            values.append(None if found is None else found[0])
        return values

    async def seed(self, key: str, value: int, ttl_seconds: int) -> None:
        if (await self.get([key]))[0] is None:
            self._values[key] = (value, time.monotonic() + ttl_seconds)

    async def add(self, keys: Sequence[str], amount: int, *, release: Hold | None = None) -> list[bool]:
        if release is not None:
            await self.release(release.keys, release.id)
        existed = []
        for key, value in zip(keys, await self.get(keys), strict=True):
            if value is not None:
                self._values[key] = (value + amount, self._values[key][1])
            existed.append(value is not None)
        return existed

    async def hold(
        self, keys: Sequence[str], limits: Sequence[int], amount: int, hold_id: str, ttl_seconds: int
    ) -> HoldResult:
        now = time.monotonic()
        totals = tuple(
            None if spent is None else spent + self._held(key, now)
            for key, spent in zip(keys, await self.get(keys), strict=True)
        )
        room = all(
            total is not None and total < limit and total + amount <= limit
            for total, limit in zip(totals, limits, strict=True)
        )
        if room:
            for key in keys:
                self._holds.setdefault(key, {})[hold_id] = (amount, now + ttl_seconds)
        return HoldResult(held=room, totals=totals)

    async def release(self, keys: Sequence[str], hold_id: str) -> None:
        for key in keys:
            self._holds.get(key, {}).pop(hold_id, None)

    def _held(self, key: str, now: float) -> int:
        holds = self._holds.get(key, {})
        for lapsed in [hold_id for hold_id, (_, until) in holds.items() if until <= now]:
            del holds[lapsed]
        return sum(amount for amount, _ in holds.values())
