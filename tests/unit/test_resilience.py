"""Retries, retry budget, circuit breaker and fallbacks, on the fake upstream through the real SDKs.

Time is a fake clock and sleeping only records how long it would have slept, so nothing here waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from domain.llm.model import (
    Completion,
    CompletionRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
    partial_completion,
)
from domain.llm.ports import LLMProvider
from domain.shared.errors import (
    CircuitOpen,
    ContextTooLong,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from infrastructure.llm.catalog import parse_catalog
from infrastructure.llm.local import LocalProvider
from infrastructure.llm.resilience import CircuitBreaker, CircuitState, ResiliencePolicy, RetryBudget
from infrastructure.llm.router import ModelRouter
from tests.fakes.upstream import (
    Behaviour,
    FakeUpstream,
    auth_error,
    context_length_exceeded,
    drop_stream_after,
    error,
    hang,
    html_error,
    ok,
    rate_limited,
    redirect,
    server_error,
)
from tests.unit.routing_support import CLAUDE, GPT, HELLO, FakeClock, RouterMaker, Sleeps, calls_to

pytestmark = pytest.mark.unit


MakeRouter = RouterMaker


# ---- retries ---------------------------------------------------------------------------------------------------


async def test_a_retryable_failure_is_retried_until_it_succeeds(
    upstream: FakeUpstream, make_router: MakeRouter, sleeps: Sleeps
) -> None:
    upstream.push(server_error(500), server_error(503), ok())
    router = make_router()

    completion = await router.complete(HELLO)

    assert completion.served_by.model == "gpt-main"
    assert completion.attempts == 3
    assert completion.fallbacks == ()
    assert calls_to(upstream, GPT) == 3
    assert len(sleeps.taken) == 2
    assert 0 <= sleeps.taken[0] <= 0.25  # full jitter under the first ceiling
    assert 0 <= sleeps.taken[1] <= 0.5  # and under the doubled one


@pytest.mark.parametrize(
    "behaviour", [error(400, message="bad"), context_length_exceeded(), error(422)], ids=["400", "context", "422"]
)
async def test_a_rejected_request_is_never_retried_nor_sent_to_a_fallback(
    upstream: FakeUpstream, make_router: MakeRouter, sleeps: Sleeps, behaviour: Behaviour
) -> None:
    upstream.push(behaviour)
    router = make_router()

    with pytest.raises((UpstreamRejected, ContextTooLong)):
        await router.complete(HELLO)

    assert calls_to(upstream, GPT) == 1
    assert calls_to(upstream, CLAUDE) == 0
    assert sleeps.taken == []


async def test_retry_after_is_waited_exactly(upstream: FakeUpstream, make_router: MakeRouter, sleeps: Sleeps) -> None:
    upstream.push(rate_limited(retry_after=2), rate_limited(retry_after_ms=750), ok())
    router = make_router()

    completion = await router.complete(HELLO)

    assert sleeps.taken == [2.0, 0.75]
    assert completion.attempts == 3


async def test_a_retry_after_beyond_the_cap_is_not_waited_out_but_falls_back(
    upstream: FakeUpstream, make_router: MakeRouter, sleeps: Sleeps
) -> None:
    upstream.push(rate_limited(retry_after=120))
    router = make_router(upstream_retry_after_max_seconds=10)

    completion = await router.complete(HELLO)

    assert sleeps.taken == []
    assert completion.served_by.model == "claude-main"
    assert completion.fallbacks == ("gpt-main",)


async def test_the_retry_budget_caps_retries_against_a_dead_upstream(
    upstream: FakeUpstream, make_router: MakeRouter, clock: FakeClock
) -> None:
    upstream.fail_model(GPT, 503)
    upstream.fail_model(CLAUDE, 503)
    router = make_router(upstream_max_attempts=5, upstream_retry_budget_ratio=0.0, upstream_retry_budget_min_retries=3)

    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await router.complete(HELLO)

    # 3 retries in the window, then every call goes once: 3 + 3 calls, not 3 * 5.
    assert calls_to(upstream, GPT) == 3 + 3
    clock.advance(11)  # the window slides: retries are allowed again
    with pytest.raises(UpstreamUnavailable):
        await router.complete(HELLO)
    assert calls_to(upstream, GPT) == 6 + 4


def test_the_retry_budget_grows_with_traffic(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.2, min_retries=0, window_seconds=10, clock=clock)
    for _ in range(10):
        budget.record_call()

    assert [budget.try_spend() for _ in range(3)] == [True, True, False]


def test_the_retry_budget_remembers_one_window_of_calls_only(clock: FakeClock) -> None:
    """A deployment that never retries once kept the time of every call it ever made: 32 bytes a call, a leak."""
    budget = RetryBudget(ratio=0.2, min_retries=0, window_seconds=10, clock=clock)
    for _ in range(50_000):  # 1,000 calls a second for 50 s, no retry
        budget.record_call()
        clock.advance(0.001)
    assert budget.remembered <= 10_001
    assert [budget.try_spend() for _ in range(2_001)].count(True) == 2_000  # still a fifth of the window's calls


@pytest.mark.parametrize(
    "behaviour",
    [html_error(502), redirect("http://127.0.0.1:9/elsewhere")],
    ids=["html-page", "redirect"],
)
async def test_a_redirect_or_an_html_page_is_not_retried_but_falls_back(
    upstream: FakeUpstream, make_router: MakeRouter, sleeps: Sleeps, behaviour: Behaviour
) -> None:
    upstream.push(behaviour)
    router = make_router()

    completion = await router.complete(HELLO)

    assert calls_to(upstream, GPT) == 1  # it would have come again
    assert sleeps.taken == []
    assert completion.served_by.model == "claude-main"
    assert completion.fallbacks == ("gpt-main",)


# ---- circuit breaker -------------------------------------------------------------------------------------------


def make_breaker(clock: FakeClock, **changes: float) -> CircuitBreaker:
    options: dict[str, float] = {
        "failure_threshold": 3,
        "failure_rate": 0.5,
        "min_calls": 100,
        "window_seconds": 60,
        "cool_down_seconds": 30,
    }
    options.update(changes)
    return CircuitBreaker("d", clock=clock, **options)  # type: ignore[arg-type]


def test_the_breaker_opens_after_consecutive_failures_and_probes_once_after_the_cool_down(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    for _ in range(3):
        breaker.before_call()
        breaker.record(UpstreamUnavailable("down"))

    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpen):
        breaker.before_call()

    clock.advance(30)
    breaker.before_call()  # the probe
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # only one probe at a time

    breaker.record(None)
    assert breaker.state is CircuitState.CLOSED
    breaker.before_call()


def test_a_failed_probe_opens_the_breaker_again(clock: FakeClock) -> None:
    breaker = make_breaker(clock, failure_threshold=1)
    breaker.before_call()
    breaker.record(UpstreamTimeout("slow"))
    clock.advance(30)
    breaker.before_call()

    breaker.record(UpstreamTimeout("still slow"))

    assert breaker.state is CircuitState.OPEN
    clock.advance(29)
    with pytest.raises(CircuitOpen):
        breaker.before_call()


def test_a_cancelled_probe_lets_another_probe_through(clock: FakeClock) -> None:
    breaker = make_breaker(clock, failure_threshold=1)
    breaker.before_call()
    breaker.record(UpstreamTimeout("slow"))
    clock.advance(30)
    breaker.before_call()

    breaker.release()

    breaker.before_call()
    assert breaker.state is CircuitState.HALF_OPEN


def test_the_breaker_opens_on_a_failure_rate_over_the_window(clock: FakeClock) -> None:
    breaker = make_breaker(clock, min_calls=6, failure_threshold=100)
    for failed in (False, True, False, True, False):
        breaker.record(UpstreamBadResponse("bad") if failed else None)
        assert breaker.state is CircuitState.CLOSED

    breaker.record(UpstreamBadResponse("bad"))

    assert breaker.state is CircuitState.OPEN


def test_old_outcomes_leave_the_window(clock: FakeClock) -> None:
    breaker = make_breaker(clock, min_calls=4, failure_threshold=100)
    for _ in range(3):
        breaker.record(UpstreamBadResponse("bad"))
    clock.advance(61)

    breaker.record(UpstreamBadResponse("bad"))

    assert breaker.state is CircuitState.CLOSED


@pytest.mark.parametrize(
    "error", [UpstreamRejected("no"), ContextTooLong("long")], ids=["rejected", "context-too-long"]
)
def test_a_rejected_request_does_not_count_against_the_upstream(clock: FakeClock, error: UpstreamError) -> None:
    breaker = make_breaker(clock, failure_threshold=1)
    for _ in range(10):
        breaker.before_call()
        breaker.record(error)

    assert breaker.state is CircuitState.CLOSED


async def test_an_open_circuit_fails_fast_without_calling_the_upstream(
    upstream: FakeUpstream, make_router: MakeRouter, clock: FakeClock
) -> None:
    upstream.fail_model(GPT, 500)
    router = make_router(upstream_max_attempts=1, breaker_failure_threshold=2)
    for _ in range(2):
        await router.complete(HELLO)  # served by the fallback
    assert router.resilience("gpt-main").breaker.state is CircuitState.OPEN
    before = calls_to(upstream, GPT)

    completion = await router.complete(HELLO)

    assert calls_to(upstream, GPT) == before  # no call while open
    assert completion.served_by.model == "claude-main"
    assert completion.fallbacks == ("gpt-main",)
    assert completion.attempts == 1  # only the fallback's call

    upstream.unfail_model(GPT)
    clock.advance(30)
    probe = await router.complete(HELLO)
    assert probe.served_by.model == "gpt-main"
    assert router.resilience("gpt-main").breaker.state is CircuitState.CLOSED


# ---- fallbacks -------------------------------------------------------------------------------------------------


async def test_an_openai_deployment_falls_over_to_an_anthropic_one(
    upstream: FakeUpstream, make_router: MakeRouter
) -> None:
    upstream.fail_model(GPT, 503)
    router = make_router()

    completion = await router.complete(HELLO)

    assert completion.served_by.model == "claude-main"
    assert completion.served_by.provider == "anthropic"
    assert completion.served_by.upstream_model == CLAUDE
    assert completion.fallbacks == ("gpt-main",)
    assert completion.attempts == 3 + 1
    assert "hello there my friend" in completion.content


async def test_refused_credentials_fall_back_without_retrying(upstream: FakeUpstream, make_router: MakeRouter) -> None:
    upstream.push(auth_error())
    router = make_router()

    completion = await router.complete(HELLO)

    assert completion.served_by.model == "claude-main"
    assert completion.attempts == 2


async def test_when_every_model_fails_the_most_meaningful_error_is_raised(
    upstream: FakeUpstream, make_router: MakeRouter
) -> None:
    upstream.push(hang())  # the primary times out once...
    upstream.fail_model(CLAUDE, 503)  # ...and the fallback is down
    router = make_router(upstream_max_attempts=1)

    with pytest.raises(UpstreamTimeout):
        await router.complete(HELLO)

    assert calls_to(upstream, CLAUDE) == 1


async def test_an_open_circuit_is_raised_only_when_nothing_better_is_known(
    upstream: FakeUpstream, make_router: MakeRouter
) -> None:
    upstream.fail_model(GPT, 500)
    upstream.fail_model(CLAUDE, 500)
    router = make_router(upstream_max_attempts=1, breaker_failure_threshold=1)
    with pytest.raises(UpstreamUnavailable):
        await router.complete(HELLO)

    with pytest.raises(CircuitOpen):
        await router.complete(HELLO)


async def test_fallbacks_are_followed_transitively_without_cycles() -> None:
    text = """
[models.a]
provider = "local"
upstream_model = "x"
fallbacks = ["b", "c"]
[models.b]
provider = "local"
upstream_model = "x"
fallbacks = ["d"]
[models.c]
provider = "local"
upstream_model = "x"
[models.d]
provider = "local"
upstream_model = "x"
"""
    catalog = parse_catalog(text, env={})
    down = {"a", "b", "c"}

    class Flaky(LLMProvider):
        def __init__(self, name: str, inner: LLMProvider) -> None:
            self.name, self.inner = name, inner

        async def complete(self, request: CompletionRequest) -> Completion:
            if self.name in down:
                raise UpstreamUnavailable(f"{self.name} is down", model=self.name)
            return await self.inner.complete(request)

        def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
            return self.inner.stream(request)

    deployments = {name: Flaky(name, LocalProvider(spec)) for name in "abcd" if (spec := catalog.find(name))}
    router = ModelRouter(catalog, deployments, policy=ResiliencePolicy(max_attempts=1))

    completion = await router.complete(CompletionRequest(model="a", messages=HELLO.messages))

    assert completion.served_by.model == "d"
    assert completion.fallbacks == ("a", "b", "c")  # breadth first: a's own list before b's


# ---- streams ---------------------------------------------------------------------------------------------------


async def test_a_stream_falls_back_before_its_first_delta(upstream: FakeUpstream, make_router: MakeRouter) -> None:
    upstream.fail_model(GPT, 503)
    router = make_router()

    events = [event async for event in await router.open_stream(HELLO)]

    assert all(isinstance(e, TextDelta) for e in events[:-1])
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.completion.served_by.model == "claude-main"
    assert end.completion.fallbacks == ("gpt-main",)
    assert end.completion.attempts == 4
    assert end.completion.content == "".join(e.text for e in events[:-1] if isinstance(e, TextDelta))


async def test_a_stream_retries_a_failure_before_it_opens(upstream: FakeUpstream, make_router: MakeRouter) -> None:
    upstream.push(server_error(502), drop_stream_after(0))  # the second cuts the stream before its first event
    router = make_router()

    events = [event async for event in await router.open_stream(HELLO)]

    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.completion.served_by.model == "gpt-main"
    assert end.completion.attempts == 3


async def test_a_stream_cut_after_it_opened_is_not_retried_even_before_any_text(
    upstream: FakeUpstream, make_router: MakeRouter
) -> None:
    """Its first event (the role chunk) opened it: the front door has sent its own first event to the client, so
    the stream is no longer the router's to retry or hand to a fallback."""
    upstream.push(drop_stream_after(1))
    router = make_router()
    stream = await router.open_stream(HELLO)

    with pytest.raises(UpstreamBadResponse):
        await anext(stream)

    await stream.aclose()
    assert calls_to(upstream, GPT) == 1


async def test_a_stream_failing_after_its_first_delta_is_neither_retried_nor_sent_to_a_fallback(
    upstream: FakeUpstream, make_router: MakeRouter
) -> None:
    upstream.push(drop_stream_after(4))
    router = make_router()
    deltas: list[str] = []

    async def drain() -> None:
        async for event in await router.open_stream(HELLO):
            assert isinstance(event, TextDelta)
            deltas.append(event.text)

    with pytest.raises(UpstreamBadResponse) as caught:
        await drain()

    assert deltas
    assert calls_to(upstream, GPT) == 1
    assert calls_to(upstream, CLAUDE) == 0
    partial = partial_completion(caught.value)
    assert partial is not None
    assert partial.content == "".join(deltas)
    assert partial.served_by.model == "gpt-main"
    assert partial.attempts == 1


async def test_closing_a_routed_stream_closes_the_upstream_response_at_once(
    upstream: FakeUpstream, make_router: MakeRouter
) -> None:
    upstream.push(hang(after_chunks=5))  # streams 5 events, then holds the response open until the client leaves
    router = make_router()
    events = await router.open_stream(HELLO)
    assert isinstance(await anext(events), TextDelta)

    await events.aclose()

    server = upstream._server  # the fake's uvicorn server: its in-flight request tasks
    assert server is not None
    for _ in range(100):
        if not server.server_state.tasks:
            break
        await asyncio.sleep(0.005)
    assert not server.server_state.tasks
