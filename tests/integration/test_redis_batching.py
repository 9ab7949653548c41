"""Concurrent calls of one Lua script share one round trip, and each still gets its own answer (real Redis)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from domain.usage.rate_limits import RateLimit
from infrastructure.redis.batching import ScriptBatcher
from infrastructure.redis.rate_limiter import RedisRateLimiter

pytestmark = pytest.mark.integration

ECHO = "redis.call('INCRBY', KEYS[1], ARGV[1]) return {KEYS[1], ARGV[1], #KEYS, #ARGV}"


async def _evalsha_calls(client: Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_concurrent_calls_go_out_as_one_evalsha_each_with_its_own_answer(
    redis_url: str, redis_prefix: str
) -> None:
    client = Redis.from_url(redis_url)
    try:
        batcher = ScriptBatcher(client).script(ECHO)
        await batcher([redis_prefix + "warm"], [0])  # loads the script
        before = await _evalsha_calls(client)

        keys = [f"{redis_prefix}k{i % 5}" for i in range(50)]
        replies = await asyncio.gather(*(batcher([key], [i]) for i, key in enumerate(keys)))

        assert await _evalsha_calls(client) - before == 1
        assert [(r[0].decode(), int(r[1]), r[2], r[3]) for r in replies] == [(k, i, 1, 1) for i, k in enumerate(keys)]
        totals = [int(await client.get(f"{redis_prefix}k{j}")) for j in range(5)]
        assert totals == [sum(i for i in range(50) if i % 5 == j) for j in range(5)]
    finally:
        await client.aclose()


async def test_a_failing_batch_fails_each_of_its_callers(redis_url: str, redis_prefix: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        batcher = ScriptBatcher(client).script("return redis.call('INCRBY', KEYS[1], 'not a number')")
        results = await asyncio.gather(*(batcher([redis_prefix + "x"], []) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, ResponseError) for r in results)
    finally:
        await client.aclose()


async def test_calls_of_different_scripts_share_a_batch(redis_url: str, redis_prefix: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        batcher = ScriptBatcher(client)
        double = batcher.script("return tonumber(ARGV[1]) * 2")
        echo = batcher.script(ECHO)
        await double([], [1])
        await echo([redis_prefix + "warm"], [0])  # the source with both scripts is loaded
        before = await _evalsha_calls(client)
        doubled, echoed = await asyncio.gather(double([], [21]), echo([redis_prefix + "e"], [5]))
        assert await _evalsha_calls(client) - before == 1
        assert doubled == 42
        assert echoed[1] == b"5"
    finally:
        await client.aclose()


async def test_batched_admissions_never_exceed_a_limit(redis_url: str, redis_prefix: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        limiter = RedisRateLimiter(client, prefix=redis_prefix)
        limit = RateLimit(name="key", key="rpm:k", limit=25)
        decisions = await asyncio.gather(*(limiter.acquire([limit]) for _ in range(80)))
        assert sum(d.allowed for d in decisions) == 25
        assert sorted(d.states[0].remaining for d in decisions if d.allowed) == list(range(25))
    finally:
        await client.aclose()
