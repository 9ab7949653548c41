"""The gateway's accounting on in-memory adapters: one usage record per call however it ends, budgets, tokens per
minute, the response cache, and what happens when Redis is down."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, replace
from typing import Any

import pytest

from application.llm.gateway import CachePolicy, CacheStatus, CallContext, LLMGateway
from application.usage.budgets import Budgets
from application.usage.metering import Meter
from application.usage.rate_limits import RateLimitDefaults
from application.usage.response_cache import ResponseCache
from domain.auth.model import Principal, Role, Scope
from domain.llm.model import ChatMessage, ChatRole, CompletionRequest, StreamEnd, StreamEvent, TextDelta
from domain.shared.errors import DependencyUnavailable, UpstreamUnavailable
from domain.usage.errors import BudgetExceeded, LimitExceeded
from domain.usage.model import Limits, UsageRecord, UsageStatus
from domain.usage.ports import CompletionCache, RateLimiter, SpendCounter
from infrastructure.llm.catalog import StaticModelCatalog
from infrastructure.memory.completion_cache import InMemoryCompletionCache
from infrastructure.memory.rate_limiter import InMemoryRateLimiter
from infrastructure.memory.spend_counter import InMemorySpendCounter
from infrastructure.memory.unit_of_work import InMemoryUnitOfWorkFactory
from tests.fakes.clock import FakeClock
from tests.fakes.llm import ScriptedProvider
from tests.fakes.usage import DownCompletionCache, DownRateLimiter, DownSpendCounter, ListRecorder
from tests.unit.conftest import local_spec

pytestmark = pytest.mark.unit

# ScriptedProvider answers as model "scripted": 3 input tokens, one output token per piece.
PRICED = local_spec("scripted", input_price_per_mtok_micros=2_000_000, output_price_per_mtok_micros=10_000_000)


@dataclass
class Rig:
    gateway: LLMGateway
    provider: ScriptedProvider
    recorder: ListRecorder
    uow: InMemoryUnitOfWorkFactory
    counter: SpendCounter
    limiter: RateLimiter

    @property
    def records(self) -> list[UsageRecord]:
        return self.recorder.records


def rig(
    pieces: list[str] | None = None,
    *,
    defaults: RateLimitDefaults | None = None,
    limiter: RateLimiter | None = None,
    counter: SpendCounter | None = None,
    cache: CompletionCache | None = None,
    fail_open: bool = True,
    **provider_options: Any,
) -> Rig:
    provider = ScriptedProvider(pieces or ["a", "b", "c"], **provider_options)
    catalog = StaticModelCatalog([PRICED], default_model="scripted")
    recorder, uow, clock = ListRecorder(), InMemoryUnitOfWorkFactory(), FakeClock()
    counter = counter or InMemorySpendCounter()
    limiter = limiter or InMemoryRateLimiter()
    budgets = Budgets(counter=counter, uow=uow, clock=clock, fail_open=fail_open)
    meter = Meter(
        catalog=catalog,
        recorder=recorder,
        budgets=budgets,
        limiter=limiter,
        defaults=defaults or RateLimitDefaults(),
        clock=clock,
        fail_open=fail_open,
    )
    response_cache = ResponseCache(cache=cache or InMemoryCompletionCache(max_entries=10), ttl_seconds=60)
    gateway = LLMGateway(provider=provider, meter=meter, cache=response_cache)
    return Rig(gateway, provider, recorder, uow, counter, limiter)


def context(principal: Principal | None = None, cache: CachePolicy = CachePolicy.DEFAULT) -> CallContext:
    who = principal or Principal(user_id=uuid.uuid4(), role=Role.MEMBER, scopes=Scope.for_role(Role.MEMBER))
    return CallContext(principal=who, request_id="req-1", cache=cache)


def request(temperature: float | None = None, content: str = "hello there") -> CompletionRequest:
    return CompletionRequest(
        model="scripted", messages=(ChatMessage(ChatRole.USER, content),), temperature=temperature, max_tokens=10
    )


async def test_a_completed_call_writes_one_priced_record() -> None:
    r = rig()
    ctx = context()
    completion = await r.gateway.complete(request(), ctx)
    [record] = r.records
    assert record.status is UsageStatus.SUCCESS
    assert (record.input_tokens, record.output_tokens) == (3, 3)
    assert record.cost_micros == 36  # (3 * 2 + 3 * 10) micro-dollars per token
    assert record.user_id == ctx.principal.user_id
    assert record.request_id == "req-1"
    assert (record.served_model, record.provider, record.upstream_model) == ("scripted", "test", "scripted-1")
    assert not record.cached
    assert not record.streamed
    assert completion.cached is False


async def test_an_upstream_failure_is_recorded_with_its_error_kind() -> None:
    r = rig(fail_after=0, error=UpstreamUnavailable("down"))
    with pytest.raises(UpstreamUnavailable):
        await r.gateway.complete(request(), context())
    [record] = r.records
    assert record.status is UsageStatus.ERROR
    assert record.error_code == "upstream_unavailable"
    assert record.cost_micros == 0


async def test_a_cancelled_call_is_still_recorded() -> None:
    r = rig()

    async def slow(_: CompletionRequest) -> Any:
        await asyncio.sleep(10)

    r.provider.complete = slow  # type: ignore[method-assign]
    task = asyncio.create_task(r.gateway.complete(request(), context()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await r.gateway.drain()
    [record] = r.records
    assert record.status is UsageStatus.CANCELLED
    assert record.error_code == "cancelled"
    assert record.estimated
    assert record.input_tokens > 0


async def test_a_full_stream_is_recorded_before_its_last_event_is_handed_on() -> None:
    r = rig()
    events = []
    async for event in r.gateway.stream(request(), context()):
        events.append(event)
        if isinstance(event, StreamEnd):
            assert len(r.records) == 1  # recorded even if the consumer never asks for more
    [record] = r.records
    assert record.status is UsageStatus.SUCCESS
    assert record.streamed
    assert record.ttft_ms is not None


async def test_a_stream_failing_midway_is_recorded_as_an_error_with_its_partial_usage() -> None:
    r = rig(["a", "b", "c"], fail_after=2, error=UpstreamUnavailable("gone"))
    seen: list[StreamEvent] = []

    async def consume() -> None:
        async for event in r.gateway.stream(request(), context()):
            seen.append(event)

    with pytest.raises(UpstreamUnavailable):
        await consume()
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["a", "b"]
    [record] = r.records
    assert record.status is UsageStatus.ERROR
    assert record.estimated
    assert record.output_tokens == 1


async def test_a_consumer_closing_a_stream_early_records_a_cancelled_call_and_closes_the_upstream() -> None:
    r = rig(["a", "b", "c", "d"])
    stream = r.gateway.stream(request(), context())
    assert await anext(stream) == TextDelta("a")
    await stream.aclose()
    assert r.provider.closed
    [record] = r.records
    assert record.status is UsageStatus.CANCELLED
    assert record.streamed


async def test_a_call_whose_prompt_would_overrun_the_budget_is_refused_before_the_model_is_asked() -> None:
    r = rig()
    user = Principal(user_id=uuid.uuid4(), role=Role.MEMBER, user_limits=Limits(monthly_budget_micros=40))
    await r.gateway.complete(request(), context(user))  # 36 micros spent
    with pytest.raises(BudgetExceeded) as refused:
        await r.gateway.complete(request(), context(user))  # its prompt alone (3 tokens: 6 micros) would overrun
    assert refused.value.budget == "user"
    assert (refused.value.limit_micros, refused.value.spent_micros) == (40, 36)
    assert r.provider.calls == 1
    assert len(r.records) == 1  # a refused call is no call: nothing to record


async def test_spend_counters_are_seeded_from_the_ledger_once() -> None:
    r = rig()
    user = Principal(user_id=uuid.uuid4(), role=Role.MEMBER, user_limits=Limits(monthly_budget_micros=1_000))
    async with r.uow() as uow:  # a previous process spent 990 this month
        record = replace(_any_record(), user_id=user.user_id, cost_micros=990, created_at=FakeClock().now())
        await uow.usage.add_many([record])
        await uow.commit()
    await r.gateway.complete(request(), context(user))
    with pytest.raises(BudgetExceeded):
        await r.gateway.complete(request(), context(user))
    assert (await r.counter.get([_spend_key(user)]))[0] == 990 + 36


async def test_a_key_budget_is_separate_from_its_owners() -> None:
    r = rig()
    key = Principal(
        user_id=uuid.uuid4(), role=Role.MEMBER, api_key_id=uuid.uuid4(), key_limits=Limits(monthly_budget_micros=0)
    )
    with pytest.raises(BudgetExceeded) as refused:
        await r.gateway.complete(request(), context(key))
    assert refused.value.budget == "api_key"


async def test_tokens_per_minute_refuse_a_call_and_unused_tokens_are_given_back() -> None:
    r = rig(defaults=RateLimitDefaults(user_tokens_per_minute=40))
    ctx = context()
    await r.gateway.complete(request(), ctx)  # reserves 3 (prompt estimate) + 10 (max_tokens), uses 6
    await r.gateway.complete(request(), ctx)
    await r.gateway.complete(request(), ctx)
    await r.gateway.complete(request(), ctx)  # 4 * 6 = 24 used; a fifth reservation of 13 would reach 37
    await r.gateway.complete(request(), ctx)
    with pytest.raises(LimitExceeded) as refused:
        await r.gateway.complete(request(), ctx)  # 30 used + 13 > 40
    assert refused.value.retry_after_seconds > 0
    assert [s.name for s in refused.value.states] == ["user-tokens"]
    assert r.provider.calls == 5


async def test_a_deterministic_request_is_answered_from_the_cache_at_no_cost() -> None:
    r = rig()
    ctx = context()
    first = await r.gateway.complete(request(temperature=0), ctx)
    second = await r.gateway.complete(request(temperature=0), ctx)
    assert r.provider.calls == 1
    assert second.cached
    assert second.content == first.content
    assert r.gateway.cache_status(request(temperature=0), ctx, first) is CacheStatus.MISS
    assert r.gateway.cache_status(request(temperature=0), ctx, second) is CacheStatus.HIT
    hit = r.records[-1]
    assert hit.cached
    assert hit.cost_micros == 0
    assert hit.input_tokens == 0
    assert hit.status is UsageStatus.SUCCESS


async def test_one_user_never_reads_another_users_cached_answer() -> None:
    r = rig()
    await r.gateway.complete(request(temperature=0), context())
    other = await r.gateway.complete(request(temperature=0), context())
    assert not other.cached
    assert r.provider.calls == 2


async def test_only_eligible_requests_use_the_cache() -> None:
    r = rig()
    ctx = context()
    warm = await r.gateway.complete(request(temperature=0.7), ctx)
    assert r.gateway.cache_status(request(temperature=0.7), ctx, warm) is CacheStatus.BYPASS
    await r.gateway.complete(request(temperature=0.7), ctx)
    assert r.provider.calls == 2  # not deterministic, not opted in
    opted = context(ctx.principal, CachePolicy.PREFER)
    await r.gateway.complete(request(temperature=0.7), opted)
    assert (await r.gateway.complete(request(temperature=0.7), opted)).cached
    no_store = context(ctx.principal, CachePolicy.BYPASS)
    assert not (await r.gateway.complete(request(temperature=0), no_store)).cached
    assert not (await r.gateway.complete(request(temperature=0), no_store)).cached


async def test_a_cached_answer_streams_as_one_delta_and_the_end() -> None:
    r = rig()
    ctx = context()
    await r.gateway.complete(request(temperature=0), ctx)
    stream = r.gateway.stream(request(temperature=0), ctx)
    events = [e async for e in stream]
    assert stream.cache_status is CacheStatus.HIT
    assert [type(e) for e in events] == [TextDelta, StreamEnd]
    assert events[0] == TextDelta("abc")
    assert r.provider.calls == 1
    assert r.records[-1].cached
    assert r.records[-1].streamed


async def test_redis_down_fail_open_lets_calls_through_and_still_records_them() -> None:
    r = rig(
        defaults=RateLimitDefaults(user_tokens_per_minute=10),
        limiter=DownRateLimiter(),
        counter=DownSpendCounter(),
        cache=DownCompletionCache(),
        fail_open=True,
    )
    user = Principal(user_id=uuid.uuid4(), role=Role.MEMBER, user_limits=Limits(monthly_budget_micros=1))
    await r.gateway.complete(request(temperature=0), context(user))
    assert len(r.records) == 1


async def test_redis_down_fail_closed_refuses_calls() -> None:
    r = rig(defaults=RateLimitDefaults(user_tokens_per_minute=10), limiter=DownRateLimiter(), fail_open=False)
    with pytest.raises(DependencyUnavailable):
        await r.gateway.complete(request(), context())
    assert r.provider.calls == 0
    assert r.records == []


def _spend_key(principal: Principal) -> str:
    from domain.usage.model import BudgetPeriod

    return f"spend:user:{principal.user_id}:{BudgetPeriod.containing(FakeClock().now()).label}"


def _any_record() -> UsageRecord:
    return UsageRecord(
        id=uuid.uuid4(),
        created_at=FakeClock().now(),
        request_id="r",
        user_id=uuid.uuid4(),
        api_key_id=None,
        conversation_id=None,
        model="scripted",
        served_model="scripted",
        provider="test",
        upstream_model="scripted-1",
        variant=None,
    )
