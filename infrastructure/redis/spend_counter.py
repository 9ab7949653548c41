"""Spend counters in Redis, shared by every instance: one integer key per budget and month."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from domain.usage.ports import SpendCounter
from infrastructure.redis.batching import shared_batcher
from infrastructure.redis.client import translated_errors

# Adds ARGV[1] to each key that exists; returns 1 or 0 per key. Missing keys are left to be seeded from the ledger.
ADD_IF_PRESENT = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('INCRBY', key, ARGV[1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""


class RedisSpendCounter(SpendCounter):
    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._add = shared_batcher(redis).script(ADD_IF_PRESENT)  # settlements share round trips

    async def get(self, keys: Sequence[str]) -> list[int | None]:
        async with translated_errors("spend counter"):
            values = await self._redis.mget([self._prefix + key for key in keys])
        return [None if value is None else int(value) for value in values]

    async def seed(self, key: str, value: int, ttl_seconds: int) -> None:
        async with translated_errors("spend counter"):
            await self._redis.set(self._prefix + key, value, ex=ttl_seconds, nx=True)

    async def add(self, keys: Sequence[str], amount: int) -> list[bool]:
        async with translated_errors("spend counter"):
            reply = await self._add([self._prefix + key for key in keys], [amount])
        return [bool(int(flag)) for flag in reply]
