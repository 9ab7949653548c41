"""The Redis rate limiter: the sliding-window algorithm of ``domain.usage.rate_limits`` in one Lua script.

A script runs atomically on the server, so the check-then-count of every policy of a request (key, user, global)
is one indivisible step however many instances share the Redis: their combined admissions never exceed a limit.
Time is Redis's own (``TIME``), so instances with skewed clocks still agree on the windows. Each counter is a hash
of bucket -> units, expiring one window after its last write.

All the keys of one call must live on one server (a single Redis, or one Cluster slot via a hash tag in the key
prefix).
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from domain.usage.ports import RateLimiter
from domain.usage.rate_limits import LimitState, RateDecision, RateLimit
from infrastructure.redis.batching import shared_batcher
from infrastructure.redis.client import translated_errors

# KEYS: one counter per policy. ARGV: cost, then limit, window_ms, bucket_ms per policy.
# Returns: {allowed, now_ms, then per policy: used, retry_after_ms, reset_ms}.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local allowed = 1
local seen = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 * i - 1])
  local window = tonumber(ARGV[3 * i])
  local size = tonumber(ARGV[3 * i + 1])
  local oldest = math.floor((now - window) / size)
  local fields = redis.call('HGETALL', key)
  local used, buckets, stale = 0, {}, {}
  for j = 1, #fields, 2 do
    local b, c = tonumber(fields[j]), tonumber(fields[j + 1])
    if b < oldest then
      stale[#stale + 1] = fields[j]
    else
      used = used + c
      buckets[#buckets + 1] = {b, c}
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  table.sort(buckets, function(x, y) return x[1] < y[1] end)
  local retry = 0
  if used + cost > limit then
    allowed = 0
    retry = window
    if cost <= limit then
      local excess, freed = used + cost - limit, 0
      for _, bucket in ipairs(buckets) do
        freed = freed + bucket[2]
        if freed >= excess then
          retry = math.max(1, (bucket[1] + 1) * size + window - now)
          break
        end
      end
    end
  end
  seen[i] = {used, retry, buckets[1] and buckets[1][1] or nil, window, size}
end
local out = {allowed, now}
for i, key in ipairs(KEYS) do
  local used, retry, first, window, size = seen[i][1], seen[i][2], seen[i][3], seen[i][4], seen[i][5]
  if allowed == 1 and cost > 0 then
    local current = math.floor(now / size)
    redis.call('HINCRBY', key, string.format('%d', current), cost)
    redis.call('PEXPIRE', key, window + size)
    used = used + cost
    if first == nil or current < first then first = current end
  end
  local reset = 0
  if first ~= nil then reset = (first + 1) * size + window - now end
  out[#out + 1] = used
  out[#out + 1] = retry
  out[#out + 1] = reset
end
return out
"""

# KEYS: the counters of an earlier acquire. ARGV: delta, at_ms, then window_ms, bucket_ms per policy.
ADJUST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local delta = tonumber(ARGV[1])
local at = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i + 1])
  local size = tonumber(ARGV[2 * i + 2])
  local bucket = math.floor(at / size)
  if bucket < math.floor((now - window) / size) then
    if delta > 0 then bucket = math.floor(now / size) else bucket = nil end
  end
  if bucket ~= nil then
    local field = string.format('%d', bucket)
    if redis.call('HINCRBY', key, field, delta) <= 0 then redis.call('HDEL', key, field) end
    redis.call('PEXPIRE', key, window + size)
  end
end
return 1
"""


class RedisRateLimiter(RateLimiter):
    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._prefix = prefix
        batcher = shared_batcher(redis)  # the concurrent requests' checks share one round trip
        self._acquire = batcher.script(ACQUIRE)
        self._adjust = batcher.script(ADJUST)

    async def acquire(self, limits: Sequence[RateLimit], cost: int = 1) -> RateDecision:
        if not limits:
            return RateDecision(allowed=True)
        args: list[int] = [cost]
        for limit in limits:
            args += [limit.limit, limit.window_ms, limit.bucket_ms]
        async with translated_errors("rate limiter"):
            reply = await self._acquire([self._prefix + limit.key for limit in limits], args)
        allowed, now = int(reply[0]), int(reply[1])
        states, retries = [], []
        for index, limit in enumerate(limits):
            used, retry_ms, reset_ms = (int(v) for v in reply[2 + 3 * index : 5 + 3 * index])
            retries.append(retry_ms)
            states.append(
                LimitState(
                    name=limit.name,
                    limit=limit.limit,
                    remaining=max(0, limit.limit - used),
                    reset_seconds=-(-reset_ms // 1000),
                    window_seconds=limit.window_ms // 1000,
                    unit=limit.unit,
                )
            )
        if allowed:
            return RateDecision(allowed=True, states=tuple(states), at_ms=now)
        worst = max(range(len(limits)), key=lambda i: retries[i])
        return RateDecision(
            allowed=False, states=tuple(states), retry_after_seconds=retries[worst] / 1000, denied_by=limits[worst].name
        )

    async def adjust(self, limits: Sequence[RateLimit], delta: int, at_ms: int) -> None:
        if not limits or delta == 0:
            return
        args: list[int] = [delta, at_ms]
        for limit in limits:
            args += [limit.window_ms, limit.bucket_ms]
        async with translated_errors("rate limiter"):
            await self._adjust([self._prefix + limit.key for limit in limits], args)
