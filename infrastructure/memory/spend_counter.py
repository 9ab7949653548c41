"""Spend counters for one process. With several instances, use Redis: each process would only see its own spend."""

from __future__ import annotations

import time
from collections.abc import Sequence

from domain.usage.ports import SpendCounter


class InMemorySpendCounter(SpendCounter):
    def __init__(self) -> None:
        self._values: dict[str, tuple[int, float]] = {}  # key -> (micros, expires at, monotonic)

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

    async def add(self, keys: Sequence[str], amount: int) -> list[bool]:
        existed = []
        for key, value in zip(keys, await self.get(keys), strict=True):
            if value is not None:
                self._values[key] = (value + amount, self._values[key][1])
            existed.append(value is not None)
        return existed
