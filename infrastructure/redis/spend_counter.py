"""Spend counters in Redis, shared by every instance: one integer key per budget and month, and beside it a hash of
the holds of calls in flight (hold id -> ``micros:lapses_at_ms``), so every instance sees every other's holds."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from domain.usage.ports import Hold, HoldResult, SpendCounter
from infrastructure.redis.batching import shared_batcher
from infrastructure.redis.client import translated_errors

# KEYS: the counters, then the holds' hashes of a hold to drop. ARGV: amount, number of counters, hold id ('' none).
# Adds the amount to each counter that exists (1 or 0 per counter: missing ones are left to be seeded from the
# ledger) and drops the hold, in one step.
ADD_IF_PRESENT = """
local out = {}
local n = tonumber(ARGV[2])
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('INCRBY', KEYS[i], ARGV[1])
    out[i] = 1
  else
    out[i] = 0
  end
end
if ARGV[3] ~= '' then
  for i = n + 1, #KEYS do redis.call('HDEL', KEYS[i], ARGV[3]) end
end
return out
"""

# KEYS: the counters, then their holds' hashes. ARGV: amount, hold id, ttl in ms, then one limit per counter.
# Returns {held (1/0), total per counter (-1: not seeded)}; lapsed holds are dropped on the way.
HOLD = """
local n = #KEYS / 2
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local amount = tonumber(ARGV[1])
local out, room = {0}, true
for i = 1, n do
  local spent = redis.call('GET', KEYS[i])
  if not spent then
    out[i + 1], room = -1, false
  else
    local total = tonumber(spent)
    local entries = redis.call('HGETALL', KEYS[n + i])
    for j = 1, #entries, 2 do
      local value = entries[j + 1]
      local sep = string.find(value, ':', 1, true)
      if tonumber(string.sub(value, sep + 1)) <= now then
        redis.call('HDEL', KEYS[n + i], entries[j])
      else
        total = total + tonumber(string.sub(value, 1, sep - 1))
      end
    end
    out[i + 1] = total
    local limit = tonumber(ARGV[3 + i])
    if total >= limit or total + amount > limit then room = false end
  end
end
if room then
  local ttl = tonumber(ARGV[3])
  local entry = ARGV[1] .. ':' .. string.format('%d', now + ttl)
  for i = 1, n do
    redis.call('HSET', KEYS[n + i], ARGV[2], entry)
    redis.call('PEXPIRE', KEYS[n + i], ttl)
  end
  out[1] = 1
end
return out
"""

RELEASE = """
for _, key in ipairs(KEYS) do redis.call('HDEL', key, ARGV[1]) end
return 0
"""


class RedisSpendCounter(SpendCounter):
    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        batcher = shared_batcher(redis)  # admissions and settlements share round trips
        self._add = batcher.script(ADD_IF_PRESENT)
        self._hold = batcher.script(HOLD)
        self._release = batcher.script(RELEASE)

    async def get(self, keys: Sequence[str]) -> list[int | None]:
        async with translated_errors("spend counter"):
            values = await self._redis.mget([self._prefix + key for key in keys])
        return [None if value is None else int(value) for value in values]

    async def seed(self, key: str, value: int, ttl_seconds: int) -> None:
        async with translated_errors("spend counter"):
            await self._redis.set(self._prefix + key, value, ex=ttl_seconds, nx=True)

    async def add(self, keys: Sequence[str], amount: int, *, release: Hold | None = None) -> list[bool]:
        holds = [self._holds(key) for key in release.keys] if release is not None else []
        hold_id = release.id if release is not None else ""
        async with translated_errors("spend counter"):
            reply = await self._add([*(self._prefix + key for key in keys), *holds], [amount, len(keys), hold_id])
        return [bool(int(flag)) for flag in reply]

    async def hold(
        self, keys: Sequence[str], limits: Sequence[int], amount: int, hold_id: str, ttl_seconds: int
    ) -> HoldResult:
        counters = [self._prefix + key for key in keys]
        async with translated_errors("spend counter"):
            reply = await self._hold(
                [*counters, *(self._holds(key) for key in keys)], [amount, hold_id, ttl_seconds * 1000, *limits]
            )
        totals = tuple(None if int(total) < 0 else int(total) for total in reply[1:])
        return HoldResult(held=bool(int(reply[0])), totals=totals)

    async def release(self, keys: Sequence[str], hold_id: str) -> None:
        async with translated_errors("spend counter"):
            await self._release([self._holds(key) for key in keys], [hold_id])

    def _holds(self, key: str) -> str:
        return f"{self._prefix}{key}:holds"
