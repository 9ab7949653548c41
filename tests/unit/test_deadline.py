"""Every model call has a total deadline, shared by its retries and fallbacks (the asked model's).

Without one, a hanging upstream held a client ``max_attempts`` timeouts per model (9.2 s for a 3 s timeout) before
its error. Now the client gets its 504 ``upstream_timeout`` by the deadline, and a backoff that would end past the
deadline is not started (the call gives up with the real error, or hands over to a fallback).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from domain.llm.model import StreamEnd
from domain.shared.errors import UpstreamTimeout
from infrastructure.llm.deadline import within_deadline
from tests.fakes.upstream import FakeUpstream, delay, hang, rate_limited
from tests.unit.routing_support import CLAUDE, GPT, HELLO, FakeClock, RouterMaker, Sleeps, calls_to, catalog_text

pytestmark = pytest.mark.unit
SLACK = 0.8  # what a loaded machine may add to a deadline


@pytest.fixture
async def real_time(upstream: FakeUpstream) -> AsyncIterator[RouterMaker]:
    """Routers on the real clock and sleep, short backoffs."""
    maker = RouterMaker(upstream, time.monotonic, asyncio.sleep)
    yield maker
    await maker.aclose()


def deadline_catalog(up: FakeUpstream, seconds: float) -> str:
    return catalog_text(up, timeout=1, extra=f"deadline_seconds = {seconds}\n")


async def test_a_hanging_upstream_gets_the_client_its_504_by_the_deadline(
    upstream: FakeUpstream, real_time: RouterMaker
) -> None:
    upstream.push(*[hang() for _ in range(3)])
    router = real_time(catalog=deadline_catalog(upstream, 1.5), upstream_backoff_base_seconds=0.05)
    started = time.monotonic()

    with pytest.raises(UpstreamTimeout) as caught:
        await router.complete(replace(HELLO, model="claude-main"))  # alone, 3 attempts would take 3 s and more

    elapsed = time.monotonic() - started
    assert 1.4 <= elapsed < 1.5 + SLACK
    assert "deadline of 1.5 s" in caught.value.detail
    assert calls_to(upstream, CLAUDE) == 2  # the second attempt was cut by the deadline


async def test_retries_and_fallbacks_share_the_asked_models_deadline(
    upstream: FakeUpstream, real_time: RouterMaker
) -> None:
    upstream.push(*[hang() for _ in range(6)])
    router = real_time(catalog=deadline_catalog(upstream, 1.5), upstream_max_attempts=1)
    started = time.monotonic()

    with pytest.raises(UpstreamTimeout):
        await router.complete(HELLO)  # gpt-main times out after 1 s, its fallback gets what is left

    assert time.monotonic() - started < 1.5 + SLACK
    assert (calls_to(upstream, GPT), calls_to(upstream, CLAUDE)) == (1, 1)


async def test_a_stream_opens_within_the_deadline_or_fails_with_504(
    upstream: FakeUpstream, real_time: RouterMaker
) -> None:
    upstream.push(*[hang() for _ in range(6)])
    router = real_time(catalog=deadline_catalog(upstream, 1.5), upstream_backoff_base_seconds=0.05)
    started = time.monotonic()

    with pytest.raises(UpstreamTimeout):
        async for _ in await router.open_stream(HELLO):
            pass

    assert time.monotonic() - started < 1.5 + SLACK


async def test_a_stream_that_opened_in_time_is_not_cut_by_the_deadline(
    upstream: FakeUpstream, real_time: RouterMaker
) -> None:
    upstream.push(delay(0, chunk_delay=0.1))  # opens at once, then takes longer than the deadline to finish
    router = real_time(catalog=deadline_catalog(upstream, 0.3))

    events = [event async for event in await router.open_stream(HELLO)]

    assert isinstance(events[-1], StreamEnd)


async def test_a_backoff_that_would_end_past_the_deadline_is_not_started(upstream: FakeUpstream) -> None:
    sleeps = Sleeps()
    maker = RouterMaker(upstream, FakeClock(), sleeps)
    upstream.push(rate_limited(retry_after=2))
    router = maker(catalog=deadline_catalog(upstream, 1.5))
    try:
        completion = await router.complete(HELLO)
    finally:
        await maker.aclose()

    assert sleeps.taken == []  # 2 s of Retry-After would end past the 1.5 s deadline
    assert calls_to(upstream, GPT) == 1
    assert completion.served_by.model == "claude-main"  # the fallback had the time left
    assert completion.fallbacks == ("gpt-main",)


async def test_a_backoff_within_the_deadline_is_taken(upstream: FakeUpstream) -> None:
    sleeps = Sleeps()
    maker = RouterMaker(upstream, FakeClock(), sleeps)
    upstream.push(rate_limited(retry_after=1))
    router = maker(catalog=deadline_catalog(upstream, 1.5))
    try:
        completion = await router.complete(HELLO)
    finally:
        await maker.aclose()

    assert sleeps.taken == [1.0]
    assert completion.served_by.model == "gpt-main"


async def test_the_deadline_is_only_the_deadlines_own_timeout() -> None:
    async def own_timeout() -> None:
        raise TimeoutError("the block's own")

    with pytest.raises(TimeoutError, match="the block's own"):
        async with within_deadline(5, model="m"):
            await own_timeout()

    with pytest.raises(UpstreamTimeout):
        async with within_deadline(0.01, model="m"):
            await asyncio.sleep(1)
