"""The model-call service's accounting on in-memory adapters: one usage record per call however it ends, budgets
(held at admission, settled at the end), tokens per minute, the response cache, and what happens when Redis is
down."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from application.llm.model_call import ModelCall
from application.usage.budgets import Budgets
from application.usage.context import CachePolicy, CallContext
from application.usage.metering import Meter
from application.usage.rate_limits import RateLimitDefaults
from application.usage.request_admission import RequestAdmission, defer
from application.usage.request_admission import pending as pending_request_admission
from application.usage.response_cache import CacheStatus, ResponseCache
from domain.auth.model import Principal, Role, Scope
from domain.llm.model import ChatMessage, ChatRole, CompletionRequest, StreamEnd, StreamEvent, TextDelta
from domain.llm.ports import LLMProvider
from domain.shared.errors import DependencyUnavailable, RuleViolation, ShuttingDown, UpstreamUnavailable
from domain.usage.errors import BudgetExceeded, LimitExceeded
from domain.usage.model import Limits, UsageRecord, UsageStatus
from domain.usage.ports import CompletionCache, RateLimiter, SpendCounter
from infrastructure.llm.catalog import StaticModelCatalog
from infrastructure.llm.local import LocalProvider
from infrastructure.llm.resilience import ResiliencePolicy
from infrastructure.llm.router import ModelRouter
from infrastructure.memory.completion_cache import InMemoryCompletionCache
from infrastructure.memory.rate_limiter import InMemoryRateLimiter
from infrastructure.memory.spend_counter import InMemorySpendCounter
from infrastructure.memory.unit_of_work import InMemoryUnitOfWorkFactory
from tests.fakes.clock import FakeClock
from tests.fakes.llm import OneModel, ScriptedProvider
from tests.fakes.usage import DownCompletionCache, DownRateLimiter, DownSpendCounter, ListRecorder
from tests.unit.conftest import local_spec

pytestmark = pytest.mark.unit

# ScriptedProvider answers as model "scripted": 3 input tokens, one output token per piece.
HELLO_MESSAGES = (ChatMessage(ChatRole.USER, "hello there, say something long"),)
PRICED = local_spec("scripted", input_price_per_mtok_micros=2_000_000, output_price_per_mtok_micros=10_000_000)


@dataclass
class Rig:
    model_call: ModelCall
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
    model_call = ModelCall(models=OneModel(provider), catalog=catalog, meter=meter, cache=response_cache)
    return Rig(model_call, provider, recorder, uow, counter, limiter)


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
    completion = (await r.model_call.complete(request(), ctx)).completion
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
        await r.model_call.complete(request(), context())
    [record] = r.records
    assert record.status is UsageStatus.ERROR
    assert record.error_code == "upstream_unavailable"
    assert record.cost_micros == 0


async def test_a_cancelled_call_is_still_recorded() -> None:
    r = rig()

    async def slow(_: CompletionRequest) -> Any:
        await asyncio.sleep(10)

    r.provider.complete = slow  # type: ignore[method-assign]
    task = asyncio.create_task(r.model_call.complete(request(), context()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await r.model_call.drain()
    [record] = r.records
    assert record.status is UsageStatus.CANCELLED
    assert record.error_code == "cancelled"
    assert record.estimated
    assert record.input_tokens > 0


async def test_a_full_stream_is_recorded_before_its_last_event_is_handed_on() -> None:
    r = rig()
    events = []
    async for event in await r.model_call.stream(request(), context()):
        events.append(event)
        if isinstance(event, StreamEnd):
            assert len(r.records) == 1  # recorded even if the consumer never asks for more
    [record] = r.records
    assert record.status is UsageStatus.SUCCESS
    assert record.streamed
    assert record.ttft_ms is not None


async def test_a_stream_is_handed_over_once_open_and_its_ttft_is_the_time_to_its_first_output() -> None:
    r = rig(["a", "b"], think=0.05)  # the upstream answers at once, its first text comes 50 ms later
    stream = await r.model_call.stream(request(), context())
    assert r.provider.sent == 0  # open before any text: a front door sends its first event now

    events = [event async for event in stream]

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["a", "b"]
    [record] = r.records
    assert record.ttft_ms is not None
    assert record.ttft_ms >= 50  # the first token, not the opening


async def test_a_stream_closed_before_its_first_output_records_no_time_to_first_token() -> None:
    r = rig(["a"], think=10)
    stream = await r.model_call.stream(request(), context())
    await stream.aclose()
    [record] = r.records
    assert record.status is UsageStatus.CANCELLED
    assert record.ttft_ms is None


async def test_a_stream_failing_midway_is_recorded_as_an_error_with_its_partial_usage() -> None:
    r = rig(["a", "b", "c"], fail_after=2, error=UpstreamUnavailable("gone"))
    seen: list[StreamEvent] = []

    async def consume() -> None:
        async for event in await r.model_call.stream(request(), context()):
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
    stream = await r.model_call.stream(request(), context())
    assert await anext(stream) == TextDelta("a")
    await stream.aclose()
    assert r.provider.closed
    [record] = r.records
    assert record.status is UsageStatus.CANCELLED
    assert record.streamed


async def test_a_call_whose_most_possible_cost_would_overrun_the_budget_is_refused_before_the_model_is_asked() -> None:
    r = rig()
    # The most a call may cost: its prompt (3 tokens: 6 micros) and max_tokens (10: 100 micros); each costs 36.
    user = Principal(user_id=uuid.uuid4(), role=Role.MEMBER, user_limits=Limits(monthly_budget_micros=150))
    await r.model_call.complete(request(), context(user))  # 36 spent
    await r.model_call.complete(request(), context(user))  # 36 + 106 held fits: 72 spent
    with pytest.raises(BudgetExceeded) as refused:
        await r.model_call.complete(request(), context(user))  # 72 + 106 > 150
    assert refused.value.budget == "user"
    assert (refused.value.limit_micros, refused.value.spent_micros) == (150, 72)
    assert "no room for this call" in refused.value.detail
    assert r.provider.calls == 2
    assert len(r.records) == 2  # a refused call is no call: nothing to record


async def test_concurrent_calls_cannot_overrun_a_budget_together() -> None:
    r = rig()
    gate = asyncio.Event()
    answer = r.provider.complete

    async def held(req: CompletionRequest) -> Any:
        await gate.wait()  # every call admitted before any is settled
        return await answer(req)

    r.provider.complete = held  # type: ignore[method-assign]
    user = Principal(user_id=uuid.uuid4(), role=Role.MEMBER, user_limits=Limits(monthly_budget_micros=350))
    calls = [asyncio.ensure_future(r.model_call.complete(request(), context(user))) for _ in range(50)]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    answered = [result for result in results if not isinstance(result, BaseException)]
    assert len(answered) == 3  # 3 * 106 held fits in 350; a fourth does not, until one is settled
    assert all(isinstance(result, BudgetExceeded) for result in results if isinstance(result, BaseException))
    assert sum(record.cost_micros for record in r.records) <= 350
    assert (await r.counter.get([_spend_key(user)]))[0] == 3 * 36


async def test_a_refused_or_failed_call_releases_its_hold() -> None:
    r = rig(fail_after=0, error=UpstreamUnavailable("down"))
    user = Principal(user_id=uuid.uuid4(), role=Role.MEMBER, user_limits=Limits(monthly_budget_micros=106))
    for _ in range(3):  # each holds all 106, fails, and gives the hold back
        with pytest.raises(UpstreamUnavailable):
            await r.model_call.complete(request(), context(user))
    assert r.provider.calls == 3


async def test_spend_counters_are_seeded_from_the_ledger_once() -> None:
    r = rig()
    user = Principal(user_id=uuid.uuid4(), role=Role.MEMBER, user_limits=Limits(monthly_budget_micros=1_000))
    async with r.uow() as uow:  # a previous process spent 880 this month
        record = replace(_any_record(), user_id=user.user_id, cost_micros=880, created_at=FakeClock().now())
        await uow.usage.add_many([record])
        await uow.commit()
    await r.model_call.complete(request(), context(user))
    with pytest.raises(BudgetExceeded):
        await r.model_call.complete(request(), context(user))
    assert (await r.counter.get([_spend_key(user)]))[0] == 880 + 36  # a second call's 106 would overrun it


async def test_a_key_budget_is_separate_from_its_owners() -> None:
    r = rig()
    key = Principal(
        user_id=uuid.uuid4(), role=Role.MEMBER, api_key_id=uuid.uuid4(), key_limits=Limits(monthly_budget_micros=0)
    )
    with pytest.raises(BudgetExceeded) as refused:
        await r.model_call.complete(request(), context(key))
    assert refused.value.budget == "api_key"


async def test_tokens_per_minute_refuse_a_call_and_unused_tokens_are_given_back() -> None:
    r = rig(defaults=RateLimitDefaults(user_tokens_per_minute=40))
    ctx = context()
    await r.model_call.complete(request(), ctx)  # reserves 3 (prompt estimate) + 10 (max_tokens), uses 6
    await r.model_call.complete(request(), ctx)
    await r.model_call.complete(request(), ctx)
    await r.model_call.complete(request(), ctx)  # 4 * 6 = 24 used; a fifth reservation of 13 would reach 37
    await r.model_call.complete(request(), ctx)
    with pytest.raises(LimitExceeded) as refused:
        await r.model_call.complete(request(), ctx)  # 30 used + 13 > 40
    assert refused.value.retry_after_seconds > 0
    assert [s.name for s in refused.value.states] == ["user-tokens"]
    assert r.provider.calls == 5


async def test_a_budget_refusal_gives_back_the_tokens_admitted_beside_it() -> None:
    # The budgets' hold and the token admission run at once: a refused budget leaves no tokens reserved.
    r = rig(defaults=RateLimitDefaults(user_tokens_per_minute=13))  # room for one reservation of 13
    user = Principal(user_id=uuid.uuid4(), role=Role.MEMBER, user_limits=Limits(monthly_budget_micros=50))
    for _ in range(3):
        with pytest.raises(BudgetExceeded):  # 106 most possible > 50, whatever the tokens said
            await r.model_call.complete(request(), context(user))
    roomy = replace(user, user_limits=Limits(monthly_budget_micros=1_000))
    await r.model_call.complete(request(), context(roomy))  # the 13 tokens are all still there
    assert r.provider.calls == 1


async def test_a_token_refusal_releases_the_budget_hold_taken_beside_it() -> None:
    r = rig(defaults=RateLimitDefaults(user_tokens_per_minute=13))
    user = Principal(user_id=uuid.uuid4(), role=Role.MEMBER, user_limits=Limits(monthly_budget_micros=142))
    await r.model_call.complete(request(), context(user))  # 36 spent; 6 of the minute's 13 tokens used
    with pytest.raises(LimitExceeded):  # 36 + 106 fits the budget, 13 tokens do not fit the 7 left
        await r.model_call.complete(request(), context(user))
    roomier = rig(counter=r.counter)  # the same counters, no token limit
    await roomier.model_call.complete(request(), context(user))  # 106 free again: the refused call's hold is gone
    assert (await r.counter.get([_spend_key(user)]))[0] == 72


async def test_a_request_count_left_to_the_call_is_made_once_with_its_admission() -> None:
    r = rig()
    counted: list[int] = []

    async def count() -> None:
        counted.append(1)

    defer(RequestAdmission(count))  # as a model-call route leaves it
    await r.model_call.complete(request(), context())
    await r.model_call.complete(request(temperature=0), context())  # a second call of the same request: not again
    assert counted == [1]
    assert pending_request_admission() is None


async def test_a_refused_request_count_gives_back_the_hold_and_tokens_taken_beside_it() -> None:
    r = rig(defaults=RateLimitDefaults(user_tokens_per_minute=13))  # room for one reservation of 13
    user = Principal(user_id=uuid.uuid4(), role=Role.MEMBER, user_limits=Limits(monthly_budget_micros=106))

    async def refuse() -> None:
        raise LimitExceeded("rate limit 'key' reached: retry in 60 s", retry_after_seconds=60, states=())

    defer(RequestAdmission(refuse))
    with pytest.raises(LimitExceeded, match="'key'"):
        await r.model_call.complete(request(), context(user))
    assert r.provider.calls == 0
    await r.model_call.complete(request(), context(user))  # all 106 micros and 13 tokens free again
    assert r.provider.calls == 1


async def test_a_cached_answer_makes_the_request_count_left_to_the_call() -> None:
    r = rig()
    ctx = context()
    await r.model_call.complete(request(temperature=0), ctx)
    counted: list[int] = []

    async def count() -> None:
        counted.append(1)

    defer(RequestAdmission(count))
    answered = await r.model_call.complete(request(temperature=0), ctx)
    assert answered.cache_status is CacheStatus.HIT
    assert counted == [1]


async def test_a_deterministic_request_is_answered_from_the_cache_at_no_cost() -> None:
    r = rig()
    ctx = context()
    first = await r.model_call.complete(request(temperature=0), ctx)
    second = await r.model_call.complete(request(temperature=0), ctx)
    assert r.provider.calls == 1
    assert second.completion.cached
    assert second.completion.content == first.completion.content
    assert first.cache_status is CacheStatus.MISS
    assert second.cache_status is CacheStatus.HIT
    hit = r.records[-1]
    assert hit.cached
    assert hit.cost_micros == 0
    assert hit.input_tokens == 0
    assert hit.status is UsageStatus.SUCCESS


async def test_one_user_never_reads_another_users_cached_answer() -> None:
    r = rig()
    await r.model_call.complete(request(temperature=0), context())
    other = await r.model_call.complete(request(temperature=0), context())
    assert not other.completion.cached
    assert r.provider.calls == 2


async def test_only_eligible_requests_use_the_cache() -> None:
    r = rig()
    ctx = context()
    warm = await r.model_call.complete(request(temperature=0.7), ctx)
    assert warm.cache_status is CacheStatus.BYPASS
    await r.model_call.complete(request(temperature=0.7), ctx)
    assert r.provider.calls == 2  # not deterministic, not opted in
    opted = context(ctx.principal, CachePolicy.PREFER)
    await r.model_call.complete(request(temperature=0.7), opted)
    assert (await r.model_call.complete(request(temperature=0.7), opted)).completion.cached
    no_store = context(ctx.principal, CachePolicy.BYPASS)
    assert not (await r.model_call.complete(request(temperature=0), no_store)).completion.cached
    assert not (await r.model_call.complete(request(temperature=0), no_store)).completion.cached


async def test_a_cached_answer_streams_as_one_delta_and_the_end() -> None:
    r = rig()
    ctx = context()
    await r.model_call.complete(request(temperature=0), ctx)
    stream = await r.model_call.stream(request(temperature=0), ctx)
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
    await r.model_call.complete(request(temperature=0), context(user))
    assert len(r.records) == 1


async def test_redis_down_fail_closed_refuses_calls() -> None:
    r = rig(defaults=RateLimitDefaults(user_tokens_per_minute=10), limiter=DownRateLimiter(), fail_open=False)
    with pytest.raises(DependencyUnavailable):
        await r.model_call.complete(request(), context())
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


class Down(LLMProvider):
    """A deployment that is down: every call fails before any output."""

    async def complete(self, request: CompletionRequest) -> Any:
        raise UpstreamUnavailable("primary is down", model=request.model)

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        raise UpstreamUnavailable("primary is down", model=request.model)
        yield  # an async generator, like every adapter's stream


def fallback_rig() -> tuple[ModelCall, ListRecorder]:
    """``primary`` (dear, down) falls back to ``backup``, split A/B between two variants of different prices; the B
    variant (weight 1 against 0) serves every call."""
    backup_a = local_spec("backup", upstream_model="cheap-a", variant="a", weight=0, input_price_per_mtok_micros=1)
    backup_b = local_spec(
        "backup",
        provider="openai_compatible",
        upstream_model="cheap-b",
        variant="b",
        weight=1,
        input_price_per_mtok_micros=1_000_000,
        output_price_per_mtok_micros=2_000_000,
    )
    backup = replace(backup_b, variant=None, weight=1, variants=(backup_a, backup_b))
    primary = local_spec(
        "primary",
        fallbacks=("backup",),
        input_price_per_mtok_micros=100_000_000,
        output_price_per_mtok_micros=400_000_000,
    )
    catalog = StaticModelCatalog([primary, backup], default_model="primary")
    deployments: dict[str, LLMProvider] = {
        "primary": Down(),
        "backup#a": LocalProvider(backup_a),
        "backup#b": LocalProvider(backup_b, chunk_delay=0.001),
    }
    router = ModelRouter(catalog, deployments, policy=ResiliencePolicy(max_attempts=1))
    recorder, uow, clock = ListRecorder(), InMemoryUnitOfWorkFactory(), FakeClock()
    budgets = Budgets(counter=InMemorySpendCounter(), uow=uow, clock=clock, fail_open=True)
    meter = Meter(
        catalog=catalog,
        recorder=recorder,
        budgets=budgets,
        limiter=InMemoryRateLimiter(),
        defaults=RateLimitDefaults(),
        clock=clock,
        fail_open=True,
    )
    return ModelCall(models=router, catalog=catalog, meter=meter), recorder


async def test_a_fallback_served_stream_abandoned_midway_is_billed_to_the_deployment_serving_it() -> None:
    model_call, recorder = fallback_rig()
    long_prompt = CompletionRequest(model="primary", messages=(ChatMessage(ChatRole.USER, "word " * 40),))
    stream = await model_call.stream(long_prompt, context())
    assert (stream.served_by.model, stream.served_by.variant) == ("backup", "b")  # known from the opening
    for _ in range(5):
        assert isinstance(await anext(stream), TextDelta)
    await stream.aclose()

    [record] = recorder.records
    assert record.status is UsageStatus.CANCELLED
    assert (record.model, record.served_model, record.variant) == ("primary", "backup", "b")
    assert (record.provider, record.upstream_model) == ("openai_compatible", "cheap-b")
    assert record.estimated
    assert record.output_tokens > 0
    # At backup b's prices (1 and 2 micro-dollars per token), not the dead primary's (100 and 400).
    assert record.cost_micros == record.input_tokens + 2 * record.output_tokens


async def test_a_stream_cut_for_shutdown_is_settled_once_with_its_cause() -> None:
    model_call, recorder = fallback_rig()
    stream = await model_call.stream(CompletionRequest(model="backup", messages=HELLO_MESSAGES), context())
    await anext(stream)
    await stream.aclose(ShuttingDown("the server is restarting"))
    await stream.aclose()  # closed once: a second close settles nothing
    [record] = recorder.records
    assert (record.status, record.error_code) == (UsageStatus.CANCELLED, "shutting_down")
    assert record.served_model == "backup"


async def test_max_tokens_above_the_models_output_limit_is_refused_before_anything_is_spent() -> None:
    r = rig()
    too_many = replace(request(), max_tokens=2_000)  # the scripted model allows 1,024
    with pytest.raises(RuleViolation, match="above the 1024 output tokens"):
        await r.model_call.complete(too_many, context())
    with pytest.raises(RuleViolation, match="above the 1024 output tokens"):
        await r.model_call.stream(too_many, context())
    assert (r.provider.calls, r.records) == (0, [])
