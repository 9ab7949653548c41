"""Properties of the money arithmetic and of the rate limiter's sliding window."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.llm.model import ModelSpec, TokenUsage
from domain.usage.model import BudgetPeriod, cost_micros
from domain.usage.rate_limits import RateLimit
from infrastructure.memory.rate_limiter import InMemoryRateLimiter

pytestmark = pytest.mark.unit

tokens = st.integers(min_value=0, max_value=10**9)
prices = st.integers(min_value=0, max_value=10**9)  # up to 1,000 USD per million tokens


def spec(input_price: int, output_price: int) -> ModelSpec:
    return ModelSpec(
        name="m",
        provider="local",
        upstream_model="m",
        input_price_per_mtok_micros=input_price,
        output_price_per_mtok_micros=output_price,
    )


@given(tokens, tokens, prices, prices)
def test_cost_is_the_exact_price_rounded_up_to_one_micro_dollar(i: int, o: int, pi: int, po: int) -> None:
    cost = cost_micros(TokenUsage(input_tokens=i, output_tokens=o), spec(pi, po))
    exact_times_a_million = i * pi + o * po
    assert cost * 1_000_000 >= exact_times_a_million  # never under-charges
    assert cost * 1_000_000 - exact_times_a_million < 1_000_000  # over-charges by less than one micro-dollar
    assert isinstance(cost, int)


@given(tokens, tokens, tokens, prices, prices)
def test_cost_grows_with_tokens_and_splitting_a_call_costs_at_most_one_micro_more(
    a: int, b: int, o: int, pi: int, po: int
) -> None:
    model = spec(pi, po)
    whole = cost_micros(TokenUsage(input_tokens=a + b, output_tokens=o), model)
    first = cost_micros(TokenUsage(input_tokens=a, output_tokens=o), model)
    second = cost_micros(TokenUsage(input_tokens=b), model)
    assert first <= whole <= first + second <= whole + 1


def test_a_million_tokens_cost_exactly_the_catalog_price() -> None:
    model = spec(150_000, 600_000)  # 0.15 and 0.60 USD per million
    assert cost_micros(TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000), model) == 750_000
    assert cost_micros(TokenUsage(input_tokens=1, output_tokens=0), model) == 1  # 0.15 micros rounds up
    assert cost_micros(TokenUsage(), model) == 0


@given(st.datetimes(timezones=st.just(__import__("datetime").UTC)))
def test_a_budget_period_is_the_calendar_month_containing_the_instant(when) -> None:  # type: ignore[no-untyped-def]
    period = BudgetPeriod.containing(when)
    assert period.start <= when < period.end
    assert period.start.day == 1
    assert period.end.day == 1
    assert 28 <= (period.end - period.start).days <= 31


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def _windows(events: list[tuple[int, int]], window: int) -> Iterator[int]:
    """For each admission time t, the units admitted in (t - window, t]... and in [t, t + window)."""
    for t, _ in events:
        yield sum(c for s, c in events if t - window < s <= t)
        yield sum(c for s, c in events if t <= s < t + window)


requests = st.lists(
    st.tuples(st.integers(min_value=0, max_value=3_000), st.integers(min_value=1, max_value=6)), max_size=120
)


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=20),
    window=st.sampled_from([1_000, 2_000, 5_000]),
    bucket=st.sampled_from([100, 250, 1_000]),
    steps=requests,
)
def test_the_limiter_never_admits_more_than_its_limit_in_any_window(
    limit: int, window: int, bucket: int, steps: list[tuple[int, int]]
) -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter(clock_ms=clock)
    policy = RateLimit(name="k", key="k", limit=limit, window_ms=window, bucket_ms=bucket)
    admitted: list[tuple[int, int]] = []
    for gap, cost in steps:
        clock.now += gap
        decision = limiter.acquire_now([policy], cost)
        if decision.allowed:
            admitted.append((clock.now, cost))
            assert decision.states[0].remaining >= 0
        else:
            assert 0 < decision.retry_after_seconds * 1000 <= window + bucket
    assert all(units <= limit for units in _windows(admitted, window))


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=20),
    steps=requests,
    cost=st.integers(min_value=1, max_value=6),
)
def test_after_waiting_retry_after_the_same_request_is_admitted(
    limit: int, steps: list[tuple[int, int]], cost: int
) -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter(clock_ms=clock)
    policy = RateLimit(name="k", key="k", limit=limit, window_ms=2_000, bucket_ms=100)
    for gap, step_cost in steps:
        clock.now += gap
        limiter.acquire_now([policy], step_cost)
    decision = limiter.acquire_now([policy], cost)
    if not decision.allowed and cost <= limit:
        clock.now += round(decision.retry_after_seconds * 1000)
        assert limiter.acquire_now([policy], cost).allowed


def test_a_refused_request_counts_against_no_policy() -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter(clock_ms=clock)
    roomy = RateLimit(name="user", key="u", limit=100)
    tight = RateLimit(name="key", key="k", limit=2)
    assert limiter.acquire_now([roomy, tight], 2).allowed
    refused = limiter.acquire_now([roomy, tight], 1)
    assert not refused.allowed
    assert refused.denied_by == "key"
    assert [s.remaining for s in refused.states] == [98, 0]
    assert limiter.acquire_now([roomy], 98).allowed  # the refusal took nothing from the user's quota


def test_adjust_refunds_the_unused_part_of_a_reservation() -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter(clock_ms=clock)
    policy = RateLimit(name="t", key="t", limit=100)
    reservation = limiter.acquire_now([policy], 80)
    asyncio.run(limiter.adjust([policy], -70, reservation.at_ms))  # used 10 of the 80
    clock.now += 500
    assert limiter.acquire_now([policy], 90).allowed
