"""Contracts of the usage ports, against every adapter: the ledger (memory, SQLite, PostgreSQL), and the limiter,
the spend counter and the response cache (memory, Redis)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Role, User
from domain.llm.model import Completion, FinishReason, ServedBy, TokenUsage
from domain.usage.model import Limits, UsageGrouping, UsageQuery, UsageRecord, UsageStatus, UsageTotals
from domain.usage.ports import CompletionCache, Hold, RateLimiter, SpendCounter
from domain.usage.rate_limits import LimitUnit, RateLimit
from infrastructure.memory.completion_cache import InMemoryCompletionCache
from infrastructure.memory.rate_limiter import InMemoryRateLimiter
from infrastructure.memory.spend_counter import InMemorySpendCounter
from infrastructure.redis.client import create_redis
from infrastructure.redis.completion_cache import RedisCompletionCache
from infrastructure.redis.rate_limiter import RedisRateLimiter
from infrastructure.redis.spend_counter import RedisSpendCounter

pytestmark = pytest.mark.contract

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ALICE, BOB = uuid.uuid4(), uuid.uuid4()
KEY = uuid.uuid4()


def a_record(**overrides: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "created_at": T0,
        "request_id": "req",
        "user_id": ALICE,
        "api_key_id": None,
        "conversation_id": None,
        "model": "gpt-main",
        "served_model": "gpt-main",
        "provider": "openai",
        "upstream_model": "gpt-4o-mini",
        "variant": "a",
        "input_tokens": 10,
        "output_tokens": 20,
        "cached_tokens": 5,
        "cache_write_tokens": 3,
        "cost_micros": 100,
        "cache_savings_micros": 7,
        "latency_ms": 250,
        "ttft_ms": 40,
    }
    return UsageRecord(**(values | overrides))


async def _add(uow_factory: UnitOfWorkFactory, *records: UsageRecord) -> None:
    async with uow_factory() as uow:
        await uow.usage.add_many(records)
        await uow.commit()


async def _summarize(uow_factory: UnitOfWorkFactory, **options: Any) -> list[UsageTotals]:
    query = UsageQuery(since=T0 - timedelta(days=30), until=T0 + timedelta(days=30), **options)
    async with uow_factory() as uow:
        return await uow.usage.summarize(query)


class TestUsageRepository:
    async def test_a_batch_is_stored_once_however_often_it_is_written(self, uow_factory: UnitOfWorkFactory) -> None:
        batch = [a_record(), a_record(status=UsageStatus.ERROR, error_code="upstream_timeout", cost_micros=0)]
        await _add(uow_factory, *batch)
        await _add(uow_factory, *batch, a_record())  # a retried batch, with one new record
        [totals] = await _summarize(uow_factory)
        assert totals == UsageTotals(
            requests=3,
            failed_requests=1,
            input_tokens=30,
            output_tokens=60,
            cached_tokens=15,
            cache_write_tokens=9,
            cost_micros=200,
            cache_savings_micros=21,
        )

    async def test_nothing_committed_nothing_stored(self, uow_factory: UnitOfWorkFactory) -> None:
        async with uow_factory() as uow:
            await uow.usage.add_many([a_record()])
        assert (await _summarize(uow_factory))[0].requests == 0

    async def test_totals_over_nothing_are_zero(self, uow_factory: UnitOfWorkFactory) -> None:
        assert await _summarize(uow_factory) == [UsageTotals()]
        assert await _summarize(uow_factory, group_by=UsageGrouping.DAY) == []

    async def test_groups_by_day_model_key_and_user(self, uow_factory: UnitOfWorkFactory) -> None:
        await _add(
            uow_factory,
            a_record(created_at=T0.replace(hour=23, minute=59)),
            a_record(created_at=T0 + timedelta(days=1), model="claude-main", api_key_id=KEY, cached=True),
            a_record(created_at=T0 + timedelta(days=1, hours=1), user_id=BOB, api_key_id=KEY),
        )
        by_day = await _summarize(uow_factory, group_by=UsageGrouping.DAY)
        assert [(g.group, g.requests) for g in by_day] == [("2024-05-01", 1), ("2024-05-02", 2)]
        by_model = await _summarize(uow_factory, group_by=UsageGrouping.MODEL)
        assert [(g.group, g.requests, g.cached_requests) for g in by_model] == [
            ("claude-main", 1, 1),
            ("gpt-main", 2, 0),
        ]
        by_key = await _summarize(uow_factory, group_by=UsageGrouping.KEY)
        assert [(g.group, g.requests) for g in by_key] == [(str(KEY), 2), (None, 1)]
        by_user = await _summarize(uow_factory, group_by=UsageGrouping.USER)
        assert sorted((g.group, g.cost_micros) for g in by_user) == sorted([(str(ALICE), 200), (str(BOB), 100)])

    async def test_filters_by_time_user_key_and_model(self, uow_factory: UnitOfWorkFactory) -> None:
        await _add(
            uow_factory,
            a_record(),
            a_record(user_id=BOB),
            a_record(api_key_id=KEY),
            a_record(model="claude-main"),
            a_record(created_at=T0 + timedelta(hours=1)),
        )
        assert (await _summarize(uow_factory, user_id=ALICE))[0].requests == 4
        assert (await _summarize(uow_factory, api_key_id=KEY))[0].requests == 1
        assert (await _summarize(uow_factory, model="claude-main"))[0].requests == 1
        query = UsageQuery(since=T0, until=T0 + timedelta(hours=1))  # until is excluded
        async with uow_factory() as uow:
            assert (await uow.usage.summarize(query))[0].requests == 4

    async def test_total_cost_since_a_date_per_user_and_per_key(self, uow_factory: UnitOfWorkFactory) -> None:
        await _add(
            uow_factory,
            a_record(cost_micros=5),
            a_record(cost_micros=7, api_key_id=KEY),
            a_record(cost_micros=11, created_at=T0 - timedelta(days=1)),
            a_record(cost_micros=13, user_id=BOB),
        )
        async with uow_factory() as uow:
            assert await uow.usage.total_cost(since=T0, user_id=ALICE) == 12
            assert await uow.usage.total_cost(since=T0, api_key_id=KEY) == 7
            assert await uow.usage.total_cost(since=T0, user_id=uuid.uuid4()) == 0

    async def test_a_record_comes_back_as_it_was_written(self, uow_factory: UnitOfWorkFactory) -> None:
        record = a_record(cost_micros=2**40, streamed=True, estimated=True, conversation_id=uuid.uuid4())
        await _add(uow_factory, record)
        [totals] = await _summarize(uow_factory)
        assert totals.cost_micros == 2**40  # micro-dollars beyond 32 bits


class TestLimitsOnUsersAndKeys:
    async def test_limits_are_stored_with_the_user(self, uow_factory: UnitOfWorkFactory) -> None:
        user = User(
            id=uuid.uuid4(),
            email=f"{uuid.uuid4().hex[:8]}@example.com",
            password_hash="x",
            role=Role.MEMBER,
            is_active=True,
            created_at=T0,
            updated_at=T0,
            limits=Limits(monthly_budget_micros=5_000_000_000, requests_per_minute=7),
        )
        async with uow_factory() as uow:
            await uow.users.add(user)
            await uow.commit()
        async with uow_factory() as uow:
            stored = await uow.users.get(user.id)
            assert stored.limits == user.limits
            stored.limits = replace(stored.limits, requests_per_minute=None, tokens_per_minute=9)
            await uow.users.update(stored)
            await uow.commit()
        async with uow_factory() as uow:
            assert (await uow.users.get(user.id)).limits == Limits(
                monthly_budget_micros=5_000_000_000, tokens_per_minute=9
            )


# --- shared-state ports: in memory and on Redis ---------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str] | None:
    """``None`` for the in-memory adapters, else the test Redis and this test's key prefix."""
    if request.param == "memory":
        return None
    return request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")


@pytest.fixture
async def redis_or_none(backend: tuple[str, str] | None) -> AsyncIterator[tuple[Redis | None, str]]:
    if backend is None:
        yield None, ""
        return
    client = create_redis(backend[0], timeout_seconds=2)
    yield client, backend[1]
    await client.aclose()


@pytest.fixture
def limiter(redis_or_none: tuple[Redis | None, str]) -> RateLimiter:
    client, prefix = redis_or_none
    return InMemoryRateLimiter() if client is None else RedisRateLimiter(client, prefix=prefix)


@pytest.fixture
def counter(redis_or_none: tuple[Redis | None, str]) -> SpendCounter:
    client, prefix = redis_or_none
    return InMemorySpendCounter() if client is None else RedisSpendCounter(client, prefix=prefix)


@pytest.fixture
def cache(redis_or_none: tuple[Redis | None, str]) -> CompletionCache:
    client, prefix = redis_or_none
    return InMemoryCompletionCache(max_entries=100) if client is None else RedisCompletionCache(client, prefix=prefix)


def policy(name: str = "key", limit: int = 5, **overrides: Any) -> RateLimit:
    return RateLimit(name=name, key=f"rl:{name}", limit=limit, **overrides)


class TestRateLimiter:
    async def test_admits_up_to_the_limit_then_refuses_with_a_retry_after(self, limiter: RateLimiter) -> None:
        decisions = [await limiter.acquire([policy(limit=3)]) for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert [d.states[0].remaining for d in decisions] == [2, 1, 0, 0]
        refused = decisions[-1]
        assert refused.denied_by == "key"
        assert 59 < refused.retry_after_seconds <= 61
        assert 0 < refused.states[0].reset_seconds <= 61
        assert refused.states[0].window_seconds == 60

    async def test_costs_count_in_units(self, limiter: RateLimiter) -> None:
        tokens = policy("tokens", limit=100, unit=LimitUnit.TOKENS)
        assert (await limiter.acquire([tokens], 60)).allowed
        assert not (await limiter.acquire([tokens], 41)).allowed
        assert (await limiter.acquire([tokens], 40)).states[0].remaining == 0

    async def test_all_or_nothing_across_policies(self, limiter: RateLimiter) -> None:
        user, key = policy("user", limit=10), policy("key", limit=1)
        assert (await limiter.acquire([user, key])).allowed
        refused = await limiter.acquire([user, key])
        assert not refused.allowed
        assert refused.denied_by == "key"
        assert [s.remaining for s in refused.states] == [9, 0]  # the refusal counted nothing
        assert (await limiter.acquire([user])).states[0].remaining == 8

    async def test_adjust_gives_back_and_takes_more(self, limiter: RateLimiter) -> None:
        tokens = policy("tokens", limit=100)
        reservation = await limiter.acquire([tokens], 80)
        await limiter.adjust([tokens], -60, reservation.at_ms)
        assert (await limiter.acquire([tokens], 0)).states[0].remaining == 80
        await limiter.adjust([tokens], 50, reservation.at_ms)
        assert (await limiter.acquire([tokens], 0)).states[0].remaining == 30

    async def test_the_window_slides(self, limiter: RateLimiter) -> None:
        short = policy(limit=2, window_ms=400, bucket_ms=50)
        assert (await limiter.acquire([short])).allowed
        assert (await limiter.acquire([short])).allowed
        refused = await limiter.acquire([short])
        assert not refused.allowed
        await asyncio.sleep(refused.retry_after_seconds + 0.02)
        assert (await limiter.acquire([short])).allowed

    async def test_concurrent_callers_never_exceed_the_limit(self, limiter: RateLimiter) -> None:
        decisions = await asyncio.gather(*(limiter.acquire([policy(limit=25)]) for _ in range(100)))
        assert sum(d.allowed for d in decisions) == 25


class TestSpendCounter:
    async def test_unknown_until_seeded_then_counts(self, counter: SpendCounter) -> None:
        assert await counter.get(["a", "b"]) == [None, None]
        assert await counter.add(["a"], 5) == [False]  # nothing to add to: the caller seeds first
        await counter.seed("a", 100, 60)
        assert await counter.add(["a", "b"], 5) == [True, False]
        assert await counter.get(["a", "b"]) == [105, None]

    async def test_the_first_seed_wins(self, counter: SpendCounter) -> None:
        await counter.seed("a", 100, 60)
        await counter.seed("a", 7, 60)
        assert await counter.get(["a"]) == [100]

    async def test_concurrent_additions_are_all_counted(self, counter: SpendCounter) -> None:
        await counter.seed("a", 0, 60)
        await asyncio.gather(*(counter.add(["a"], 3) for _ in range(200)))
        assert await counter.get(["a"]) == [600]

    async def test_a_hold_needs_seeded_counters_and_room_on_each(self, counter: SpendCounter) -> None:
        refused = await counter.hold(["a", "b"], [100, 100], 10, "h1", 60)
        assert (refused.held, refused.totals) == (False, (None, None))
        await counter.seed("a", 50, 60)
        await counter.seed("b", 95, 60)
        tight = await counter.hold(["a", "b"], [100, 100], 10, "h1", 60)
        assert (tight.held, tight.totals) == (False, (50, 95))  # all or nothing: "a" holds nothing either
        held = await counter.hold(["a"], [100], 10, "h1", 60)
        assert (held.held, held.totals) == (True, (50,))
        assert (await counter.hold(["a"], [100], 40, "h2", 60)).totals == (60,)  # the first hold counts

    async def test_releasing_a_hold_frees_its_room_once(self, counter: SpendCounter) -> None:
        await counter.seed("a", 0, 60)
        assert (await counter.hold(["a"], [100], 100, "h1", 60)).held
        assert not (await counter.hold(["a"], [100], 1, "h2", 60)).held
        await counter.release(["a"], "h1")
        await counter.release(["a"], "h1")  # a second release changes nothing
        assert (await counter.hold(["a"], [100], 100, "h3", 60)).held
        await counter.release(["a"], "never-held")
        assert (await counter.hold(["a"], [100], 1, "h4", 60)).totals == (100,)

    async def test_a_charge_releases_its_hold_in_the_same_step(self, counter: SpendCounter) -> None:
        await counter.seed("a", 0, 60)
        assert (await counter.hold(["a"], [100], 100, "h1", 60)).held
        assert await counter.add(["a"], 30, release=Hold(id="h1", keys=("a",))) == [True]
        assert (await counter.hold(["a"], [100], 70, "h2", 60)).totals == (30,)  # h1 is gone, its cost counted
        assert await counter.add([], 0, release=Hold(id="h2", keys=("a",))) == []  # a free call: release only
        assert (await counter.hold(["a"], [100], 70, "h3", 60)).held

    async def test_a_spent_budget_refuses_even_a_free_call(self, counter: SpendCounter) -> None:
        await counter.seed("a", 100, 60)
        assert not (await counter.hold(["a"], [100], 0, "h1", 60)).held

    async def test_a_hold_lapses_after_its_ttl(self, counter: SpendCounter) -> None:
        await counter.seed("a", 0, 60)
        assert (await counter.hold(["a"], [100], 100, "h1", 1)).held
        await asyncio.sleep(1.1)
        assert (await counter.hold(["a"], [100], 100, "h2", 60)).held  # the dead instance's hold is gone

    async def test_concurrent_holds_never_exceed_the_limit(self, counter: SpendCounter) -> None:
        await counter.seed("a", 0, 60)
        results = await asyncio.gather(*(counter.hold(["a"], [350], 106, f"h{i}", 60) for i in range(50)))
        assert sum(result.held for result in results) == 3


ANSWER = Completion(
    content="Échos: ☃",
    finish_reason=FinishReason.STOP,
    usage=TokenUsage(input_tokens=3, output_tokens=4, cached_tokens=1),
    served_by=ServedBy(model="gpt-main", provider="openai", upstream_model="gpt-4o-mini", variant="b"),
    attempts=2,
    fallbacks=("claude-main",),
)


class TestCompletionCache:
    async def test_a_stored_answer_comes_back_whole(self, cache: CompletionCache) -> None:
        assert await cache.get("k") is None
        await cache.put("k", ANSWER, 60)
        assert await cache.get("k") == ANSWER

    async def test_entries_expire(self, cache: CompletionCache) -> None:
        await cache.put("k", ANSWER, 1)
        await asyncio.sleep(1.1)
        assert await cache.get("k") is None


def test_the_in_memory_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache = InMemoryCompletionCache(max_entries=2)

    async def scenario() -> None:
        await cache.put("a", ANSWER, 60)
        await cache.put("b", ANSWER, 60)
        await cache.get("a")
        await cache.put("c", ANSWER, 60)
        assert await cache.get("b") is None
        assert await cache.get("a") == ANSWER
        assert len(cache) == 2

    asyncio.run(scenario())
