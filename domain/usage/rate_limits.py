"""Rate limits: policies, decisions, and the sliding-window algorithm both limiter adapters implement.

The algorithm (a sliding window over sub-window buckets) admits a request of cost ``c`` at time ``t`` when the
costs already admitted in the buckets overlapping ``[t - window, t]`` plus ``c`` do not exceed the limit. Buckets
that only partly overlap the window count in full, so the check sees a superset of the true window: the limiter may
refuse a little early (by at most one bucket's age) but never admits more than ``limit`` within ANY interval of
length ``window``. State per limit is one counter per bucket (``window / bucket`` of them), whatever the traffic.
The Redis adapter runs the same steps in one Lua script; the property tests check the in-memory one against the
guarantee.
"""

from __future__ import annotations

import enum
import math
from collections.abc import MutableMapping
from dataclasses import dataclass

WINDOW_MS = 60_000
BUCKET_MS = 1_000


class LimitUnit(enum.StrEnum):
    REQUESTS = "requests"
    TOKENS = "tokens"


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    """One quota policy: ``limit`` units per ``window_ms`` for the counter ``key``; ``name`` is what clients see."""

    name: str
    key: str
    limit: int
    unit: LimitUnit = LimitUnit.REQUESTS
    window_ms: int = WINDOW_MS
    bucket_ms: int = BUCKET_MS


@dataclass(frozen=True, kw_only=True)
class LimitState:
    """Where one policy stands after a decision (for the ``RateLimit`` / ``RateLimit-Policy`` headers)."""

    name: str
    limit: int
    remaining: int
    reset_seconds: int  # until the oldest counted bucket leaves the window and gives some quota back
    window_seconds: int
    unit: LimitUnit = LimitUnit.REQUESTS


@dataclass(frozen=True, kw_only=True)
class RateDecision:
    allowed: bool
    states: tuple[LimitState, ...] = ()
    retry_after_seconds: float = 0.0  # when refused: until every policy would admit the request
    denied_by: str | None = None  # the refusing policy's name
    at_ms: int = 0  # the limiter's clock when the cost was counted, to hand back to ``adjust``


@dataclass(frozen=True)
class WindowCheck:
    """The result of checking one counter: admitted or not, and the figures for the headers."""

    allowed: bool
    used: int  # units counted in the window, including this request when admitted
    retry_after_ms: int
    reset_ms: int


def window_check(buckets: MutableMapping[int, int], limit: RateLimit, now_ms: int, cost: int) -> WindowCheck:
    """Prunes buckets that left the window and checks ``cost`` against ``limit``; counts nothing.

    A bucket ``b`` covers ``[b * bucket_ms, (b + 1) * bucket_ms)`` and counts until ``now - window`` passes its end.
    """
    oldest = (now_ms - limit.window_ms) // limit.bucket_ms
    for bucket in [b for b in buckets if b < oldest]:
        del buckets[bucket]
    used = sum(buckets.values())
    allowed = used + cost <= limit.limit
    counted = [*buckets, now_ms // limit.bucket_ms] if allowed and cost > 0 else list(buckets)
    reset_ms = (min(counted) + 1) * limit.bucket_ms + limit.window_ms - now_ms if counted else 0
    if allowed:
        return WindowCheck(allowed=True, used=used + cost, retry_after_ms=0, reset_ms=reset_ms)
    retry_after_ms = _retry_after_ms(buckets, limit, now_ms, cost)
    return WindowCheck(allowed=False, used=used, retry_after_ms=retry_after_ms, reset_ms=reset_ms)


def _retry_after_ms(buckets: MutableMapping[int, int], limit: RateLimit, now_ms: int, cost: int) -> int:
    """How long until enough old buckets leave the window for ``cost`` to fit (a whole window when it never fits)."""
    if cost > limit.limit:
        return limit.window_ms
    excess = sum(buckets.values()) + cost - limit.limit
    freed = 0
    for bucket in sorted(buckets):
        freed += buckets[bucket]
        if freed >= excess:
            return max(1, (bucket + 1) * limit.bucket_ms + limit.window_ms - now_ms)
    return limit.window_ms  # pragma: no cover - the loop always frees enough: excess <= sum(buckets)


def state_of(limit: RateLimit, check: WindowCheck) -> LimitState:
    return LimitState(
        name=limit.name,
        limit=limit.limit,
        remaining=max(0, limit.limit - check.used),
        reset_seconds=math.ceil(check.reset_ms / 1000),
        window_seconds=limit.window_ms // 1000,
        unit=limit.unit,
    )
