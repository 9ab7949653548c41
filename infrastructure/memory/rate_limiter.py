"""The in-memory rate limiter: the sliding-window algorithm of ``domain.usage.rate_limits`` for one process."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from domain.usage.ports import RateLimiter
from domain.usage.rate_limits import RateDecision, RateLimit, state_of, window_check

SWEEP_EVERY = 10_000  # acquisitions between two sweeps of counters nobody touched for a whole window


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class InMemoryRateLimiter(RateLimiter):
    """Exact within one process (the event loop runs one ``acquire`` at a time: no await inside)."""

    def __init__(self, *, clock_ms: Callable[[], int] = _monotonic_ms) -> None:
        self._clock_ms = clock_ms
        self._counters: dict[str, dict[int, int]] = {}
        self._calls = 0

    async def acquire(self, limits: Sequence[RateLimit], cost: int = 1) -> RateDecision:
        return self.acquire_now(limits, cost)

    def acquire_now(self, limits: Sequence[RateLimit], cost: int = 1) -> RateDecision:
        now = self._clock_ms()
        self._sweep(now, limits)
        checks = [window_check(self._counters.setdefault(limit.key, {}), limit, now, cost) for limit in limits]
        refused = [(limit, check) for limit, check in zip(limits, checks, strict=True) if not check.allowed]
        if refused:
            # Nothing is counted: report every policy as it stands without this request.
            idle = [window_check(self._counters[limit.key], limit, now, 0) for limit in limits]
            states = tuple(state_of(limit, check) for limit, check in zip(limits, idle, strict=True))
            denier, worst = max(refused, key=lambda pair: pair[1].retry_after_ms)
            wait = worst.retry_after_ms / 1000
            return RateDecision(allowed=False, states=states, retry_after_seconds=wait, denied_by=denier.name)
        states = tuple(state_of(limit, check) for limit, check in zip(limits, checks, strict=True))
        for limit in limits:
            bucket = now // limit.bucket_ms
            counter = self._counters[limit.key]
            counter[bucket] = counter.get(bucket, 0) + cost
        return RateDecision(allowed=True, states=states, at_ms=now)

    async def adjust(self, limits: Sequence[RateLimit], delta: int, at_ms: int) -> None:
        now = self._clock_ms()
        for limit in limits:
            counter = self._counters.setdefault(limit.key, {})
            bucket = at_ms // limit.bucket_ms
            oldest = (now - limit.window_ms) // limit.bucket_ms
            if bucket >= oldest:
                counter[bucket] = max(0, counter.get(bucket, 0) + delta)
            elif delta > 0:  # the reservation already left the window: count the extra use now
                current = now // limit.bucket_ms
                counter[current] = counter.get(current, 0) + delta

    def _sweep(self, now: int, limits: Sequence[RateLimit]) -> None:
        self._calls += 1
        if self._calls % SWEEP_EVERY or not limits:
            return
        window = max(limit.window_ms for limit in limits)
        bucket_ms = min(limit.bucket_ms for limit in limits)
        oldest = (now - window) // bucket_ms
        for key in [k for k, buckets in self._counters.items() if not buckets or max(buckets) < oldest]:
            del self._counters[key]
