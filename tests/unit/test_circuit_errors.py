"""The circuit breaker never masks the attempts' own error, on the fake upstream through the router.

A breaker that opens during a call's own retries (or a concurrent call's) used to turn the call's next retry into
``CircuitOpen`` after a wasted backoff: 503 ``circuit_open`` instead of the upstream's timeout or 500. Now the
breaker is checked before a retry is spent, and a call reports the most meaningful error of its attempts.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from domain.shared.errors import CircuitOpen, UpstreamTimeout, UpstreamUnavailable
from infrastructure.llm.resilience import CircuitBreaker, CircuitState
from infrastructure.llm.router import ModelRouter
from tests.fakes.upstream import FakeUpstream, hang
from tests.unit.routing_support import CLAUDE, HELLO, FakeClock, RouterMaker, Sleeps, calls_to, catalog_text

pytestmark = pytest.mark.unit
CLAUDE_ONLY = replace(HELLO, model="claude-main")  # no fallback: the model's own error reaches the caller


def hanging(up: FakeUpstream) -> str:
    """Short timeouts, and a deadline long enough for every attempt (the deadline has tests of its own)."""
    return catalog_text(up, timeout=0.5, extra="deadline_seconds = 30\n")


async def test_a_hanging_upstream_gives_its_timeout_not_the_circuit_its_timeouts_opened(
    upstream: FakeUpstream, make_router: RouterMaker, sleeps: Sleeps
) -> None:
    upstream.push(*[hang() for _ in range(5)])
    router = make_router(catalog=hanging(upstream), breaker_failure_threshold=5)
    with pytest.raises(UpstreamTimeout):
        await router.complete(CLAUDE_ONLY)  # three timeouts: failures 1 to 3
    assert len(sleeps.taken) == 2

    with pytest.raises(UpstreamTimeout) as caught:
        await router.complete(CLAUDE_ONLY)  # failures 4 and 5: the circuit opens after the second

    assert caught.value.code == "upstream_timeout"
    assert router.resilience("claude-main").breaker.state is CircuitState.OPEN
    assert calls_to(upstream, CLAUDE) == 5
    assert len(sleeps.taken) == 3  # no backoff spent on a retry the open circuit would refuse


async def test_a_stream_opening_on_a_hanging_upstream_gives_its_timeout(
    upstream: FakeUpstream, make_router: RouterMaker, sleeps: Sleeps
) -> None:
    upstream.push(hang(), hang())
    router = make_router(catalog=hanging(upstream), breaker_failure_threshold=2)

    with pytest.raises(UpstreamTimeout):
        async for _ in await router.open_stream(CLAUDE_ONLY):
            pass

    assert calls_to(upstream, CLAUDE) == 2
    assert len(sleeps.taken) == 1


async def test_an_upstream_answering_500_is_reported_not_the_circuit_it_opened(
    upstream: FakeUpstream, make_router: RouterMaker, sleeps: Sleeps
) -> None:
    upstream.fail_model(CLAUDE, 500)
    router = make_router(breaker_failure_threshold=2)

    with pytest.raises(UpstreamUnavailable) as caught:
        await router.complete(CLAUDE_ONLY)

    assert not isinstance(caught.value, CircuitOpen)
    assert caught.value.code == "upstream_unavailable"
    assert "500" in caught.value.detail
    assert calls_to(upstream, CLAUDE) == 2
    assert len(sleeps.taken) == 1


async def test_a_circuit_opened_by_another_call_during_the_backoff_does_not_replace_the_error(
    upstream: FakeUpstream, clock: FakeClock
) -> None:
    routers: list[ModelRouter] = []

    async def concurrent_failures(seconds: float) -> None:
        breaker = routers[0].resilience("claude-main").breaker
        for _ in range(3):
            breaker.record(UpstreamUnavailable("another call failed"))

    maker = RouterMaker(upstream, clock, concurrent_failures)
    routers.append(maker(breaker_failure_threshold=3))
    upstream.fail_model(CLAUDE, 503)
    try:
        with pytest.raises(UpstreamUnavailable) as caught:
            await routers[0].complete(CLAUDE_ONLY)
    finally:
        await maker.aclose()

    assert not isinstance(caught.value, CircuitOpen)
    assert "503" in caught.value.detail
    assert calls_to(upstream, CLAUDE) == 1  # the retry met the open circuit: no second upstream call


async def test_an_open_circuit_is_still_what_a_call_gets_when_it_saw_no_other_error(
    upstream: FakeUpstream, make_router: RouterMaker, clock: FakeClock
) -> None:
    upstream.fail_model(CLAUDE, 500)
    router = make_router(upstream_max_attempts=1, breaker_failure_threshold=1)
    with pytest.raises(UpstreamUnavailable):
        await router.complete(CLAUDE_ONLY)

    with pytest.raises(CircuitOpen):
        await router.complete(CLAUDE_ONLY)


def test_asking_whether_the_breaker_allows_a_call_changes_nothing(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        "d", failure_threshold=1, failure_rate=0.5, min_calls=100, window_seconds=60, cool_down_seconds=30, clock=clock
    )
    assert breaker.allows_call()
    breaker.record(UpstreamTimeout("slow"))
    assert not breaker.allows_call()

    clock.advance(30)

    assert breaker.allows_call()
    assert breaker.state is CircuitState.OPEN  # only before_call moves it to half-open
    breaker.before_call()  # the probe
    assert not breaker.allows_call()  # one probe at a time
