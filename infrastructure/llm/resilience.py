"""Retries, a retry budget and a circuit breaker around each upstream deployment.

- Retries (``tenacity``): only ``UpstreamError``s marked ``retryable`` (rate limits, 5xx, timeouts, cut answers),
  never a rejected request nor an answer that would be as bad again (a redirect, an HTML page). Waits are
  exponential backoff with full jitter, or exactly the upstream's Retry-After; a Retry-After beyond
  ``retry_after_max_seconds`` is not waited out: the call gives up at once, so the router can fall back instead of
  holding the client.
- A retry is decided after its wait is known, and not taken when the breaker is open now (the retry would only meet
  ``CircuitOpen``) or when the wait would end past the call's deadline (``Tally.deadline``); the budget is spent
  only on a retry taken. Giving up raises the last real error of the attempts, never a ``CircuitOpen`` that a
  concurrent call opened while this one waited.
- A retry budget per deployment: over a sliding window, retries may not exceed ``min_retries`` plus ``ratio`` of the
  calls, so a dead upstream sees roughly the traffic it would without retries, not several times it.
- A circuit breaker per deployment: closed, it opens after ``failure_threshold`` consecutive failures or a failure
  rate of ``failure_rate`` over ``min_calls`` calls within the window; open, it fails fast with ``CircuitOpen``
  (no upstream call); after ``cool_down_seconds`` it lets one probe through (half-open): success closes it, failure
  opens it again. Only upstream-health errors count as failures; a rejected request proves the upstream is up.

Time comes from an injectable monotonic clock and sleep, so tests run in microseconds.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState

from domain.shared.errors import (
    CircuitOpen,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from infrastructure.llm.observer import NO_OBSERVER, RouterObserver

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")
_HEALTH_ERRORS = (UpstreamUnavailable, UpstreamTimeout, UpstreamRateLimited, UpstreamBadResponse)
log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ResiliencePolicy:
    max_attempts: int = 3  # upstream calls per deployment per request, the first one included
    backoff_base_seconds: float = 0.25
    backoff_max_seconds: float = 4.0
    retry_after_max_seconds: float = 10.0
    retry_budget_ratio: float = 0.2
    retry_budget_min_retries: int = 3
    retry_budget_window_seconds: float = 10.0
    breaker_failure_threshold: int = 5
    breaker_failure_rate: float = 0.5
    breaker_min_calls: int = 20
    breaker_window_seconds: float = 60.0
    breaker_cool_down_seconds: float = 30.0


def counts_against_health(error: BaseException) -> bool:
    """Whether an error says the upstream is unwell (as opposed to the request being wrong)."""
    return isinstance(error, _HEALTH_ERRORS)


class RetryBudget:
    """Retries allowed over a sliding window: ``min_retries`` plus ``ratio`` of the calls made in it."""

    def __init__(self, *, ratio: float, min_retries: int, window_seconds: float, clock: Clock) -> None:
        self._ratio = ratio
        self._min_retries = min_retries
        self._window = window_seconds
        self._clock = clock
        self._calls: deque[float] = deque()
        self._retries: deque[float] = deque()

    def record_call(self) -> None:
        now = self._clock()
        self._calls.append(now)
        self._forget(now)  # here too: a deployment that never retries kept every call's time (a leak)

    @property
    def remembered(self) -> int:
        """How many call and retry times it holds: those of one window at most."""
        return len(self._calls) + len(self._retries)

    def try_spend(self) -> bool:
        """Takes one retry from the budget; ``False`` when it is spent."""
        now = self._clock()
        self._forget(now)
        if len(self._retries) >= self._min_retries + self._ratio * len(self._calls):
            return False
        self._retries.append(now)
        return True

    def _forget(self, now: float) -> None:
        for events in (self._calls, self._retries):
            while events and events[0] <= now - self._window:
                events.popleft()


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        failure_rate: float,
        min_calls: int,
        window_seconds: float,
        cool_down_seconds: float,
        clock: Clock,
        on_change: Callable[[CircuitState], None] | None = None,
    ) -> None:
        self.name = name
        self._on_change = on_change
        self._threshold = failure_threshold
        self._rate = failure_rate
        self._min_calls = min_calls
        self._window = window_seconds
        self._cool_down = cool_down_seconds
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._consecutive = 0
        self._outcomes: deque[tuple[float, bool]] = deque()  # (when, failed)
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> CircuitState:
        return self._state

    def before_call(self) -> None:
        """Raises ``CircuitOpen`` unless a call may go through now; a call let through must then report back."""
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self._cool_down:
            self._change(CircuitState.HALF_OPEN)
            self._probing = False
        if self._state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True  # this call is the probe
            return
        if self._state is not CircuitState.CLOSED:
            raise CircuitOpen(f"deployment '{self.name}' is failing; calls are suspended for a while", model=self.name)

    def allows_call(self) -> bool:
        """Whether ``before_call`` would let a call through now; changes nothing."""
        if self._state is CircuitState.CLOSED:
            return True
        if self._state is CircuitState.OPEN:
            return self._clock() - self._opened_at >= self._cool_down
        return not self._probing

    def record(self, error: BaseException | None) -> None:
        """Reports the outcome of a call let through: ``None`` or an error that does not count is a success."""
        if error is not None and counts_against_health(error):
            self._failure()
        else:
            self._success()

    def release(self) -> None:
        """A call let through ended without an outcome (cancelled): a half-open breaker may probe again."""
        self._probing = False

    def _success(self) -> None:
        self._remember(failed=False)
        self._consecutive = 0
        if self._state is CircuitState.HALF_OPEN:
            log.info("circuit of %s closed", self.name)
            self._change(CircuitState.CLOSED)
            self._outcomes.clear()
        self._probing = False

    def _failure(self) -> None:
        self._remember(failed=True)
        self._consecutive += 1
        failures = sum(failed for _, failed in self._outcomes)
        too_many = self._consecutive >= self._threshold
        too_often = len(self._outcomes) >= self._min_calls and failures >= self._rate * len(self._outcomes)
        if self._state is CircuitState.HALF_OPEN or too_many or too_often:
            if self._state is not CircuitState.OPEN:
                log.warning("circuit of %s opened", self.name)
                self._change(CircuitState.OPEN)
            self._opened_at = self._clock()
        self._probing = False

    def _change(self, state: CircuitState) -> None:
        self._state = state
        if self._on_change is not None:
            self._on_change(state)

    def _remember(self, *, failed: bool) -> None:
        now = self._clock()
        self._outcomes.append((now, failed))
        while self._outcomes and self._outcomes[0][0] <= now - self._window:
            self._outcomes.popleft()


@dataclass
class Tally:
    """Upstream calls made for one request, across retries and fallbacks, and when the request must be over (on
    the resilience clock; ``None``: no deadline)."""

    attempts: int = 0
    deadline: float | None = None


class Resilience:
    """The breaker, budget and retry loop of one deployment."""

    def __init__(
        self,
        name: str,
        policy: ResiliencePolicy,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        observer: RouterObserver = NO_OBSERVER,
    ) -> None:
        self.name = name
        self._policy = policy
        self._observer = observer
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.breaker = CircuitBreaker(
            name,
            failure_threshold=policy.breaker_failure_threshold,
            failure_rate=policy.breaker_failure_rate,
            min_calls=policy.breaker_min_calls,
            window_seconds=policy.breaker_window_seconds,
            cool_down_seconds=policy.breaker_cool_down_seconds,
            clock=clock,
            on_change=lambda state: observer.circuit_changed(name, state.value),
        )
        observer.circuit_changed(name, self.breaker.state.value)
        self.budget = RetryBudget(
            ratio=policy.retry_budget_ratio,
            min_retries=policy.retry_budget_min_retries,
            window_seconds=policy.retry_budget_window_seconds,
            clock=clock,
        )

    async def call(self, fn: Callable[[], Awaitable[T]], tally: Tally) -> T:
        """``fn()`` through the breaker, retried as the policy allows; raises the last error.

        The first attempt runs on its own: most calls succeed at once and need none of tenacity's machinery (an
        ``AsyncRetrying`` per call was a twentieth of the hot path's CPU). When it fails with a retryable error,
        tenacity takes over from attempt 1, which replays that failure, so waits, logs and budgets are as before.
        """
        self.budget.record_call()
        try:
            return await self._once(fn, tally)
        except UpstreamError as exc:
            if self._policy.max_attempts <= 1 or not exc.retryable or isinstance(exc, CircuitOpen):
                raise
            first = exc
        return await self._retried(fn, tally, first)

    async def _retried(self, fn: Callable[[], Awaitable[T]], tally: Tally, first: UpstreamError) -> T:
        failed = first  # the last real error of the attempts
        replay: UpstreamError | None = first

        async def attempt(fn: Callable[[], Awaitable[T]], tally: Tally) -> T:
            nonlocal failed, replay
            if replay is not None:
                error, replay = replay, None
                raise error
            try:
                return await self._once(fn, tally)
            except CircuitOpen:
                # Opened while this call waited (by a concurrent call): its own error is still the one to report.
                raise failed from None
            except UpstreamError as exc:
                failed = exc
                raise

        retrying = AsyncRetrying(
            stop=partial(self._gives_up, tally),
            wait=self._wait,
            retry=self._retryable,
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        result: T = await retrying(attempt, fn, tally)
        return result

    async def _once(self, fn: Callable[[], Awaitable[T]], tally: Tally) -> T:
        self.breaker.before_call()
        tally.attempts += 1
        try:
            result = await fn()
        except UpstreamError as exc:
            self.breaker.record(exc)
            raise
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.record(None)
        return result

    @staticmethod
    def _retryable(state: RetryCallState) -> bool:
        """Whether the attempt's error is of a kind a retry may cure (``_gives_up`` then decides on this retry)."""
        error = state.outcome.exception() if state.outcome is not None else None
        return isinstance(error, UpstreamError) and error.retryable and not isinstance(error, CircuitOpen)

    def _gives_up(self, tally: Tally, state: RetryCallState) -> bool:
        """Whether not to retry a retryable error, its wait (``state.upcoming_sleep``) known; the budget is spent
        last, only on a retry taken."""
        error = state.outcome.exception() if state.outcome is not None else None
        if state.attempt_number >= self._policy.max_attempts:
            return True
        retry_after = error.retry_after_seconds if isinstance(error, UpstreamRateLimited) else None
        if retry_after is not None and retry_after > self._policy.retry_after_max_seconds:
            return True
        if not self.breaker.allows_call():
            log.info("circuit of %s is open: not retrying", self.name)
            return True
        if tally.deadline is not None and self._clock() + state.upcoming_sleep > tally.deadline:
            log.info("retrying %s would end past the call's deadline: not retrying", self.name)
            return True
        if not self.budget.try_spend():
            log.warning("retry budget of %s spent: not retrying", self.name)
            return True
        return False

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, UpstreamRateLimited) and error.retry_after_seconds is not None:
            return error.retry_after_seconds
        ceiling = self._policy.backoff_base_seconds * 2 ** (state.attempt_number - 1)
        return self._rng.uniform(0, min(ceiling, self._policy.backoff_max_seconds))

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.info("retrying %s after %s (attempt %d)", self.name, type(error).__name__, state.attempt_number)
        self._observer.retried(self.name, error)
