"""Counts one request against the caller's requests-per-minute policies (key, user, global)."""

from __future__ import annotations

import math

from application.degraded import DegradedWarning
from application.usage.rate_limits import RateLimitDefaults, request_limits, visible_states
from domain.auth.model import Principal
from domain.shared.errors import DependencyUnavailable
from domain.usage.errors import LimitExceeded
from domain.usage.ports import RateLimiter
from domain.usage.rate_limits import LimitState


class CheckRequestRate:
    """Admits or refuses an authenticated request; returns the policies' states for the response headers.

    When the limiter's backend is down, ``fail_open`` lets the request through (with a logged warning); otherwise
    the request fails with ``DependencyUnavailable`` (503).
    """

    def __init__(self, *, limiter: RateLimiter, defaults: RateLimitDefaults, fail_open: bool) -> None:
        self._limiter = limiter
        self._defaults = defaults
        self._fail_open = fail_open
        self._degraded = DegradedWarning("rate limiter")

    async def execute(self, principal: Principal, *, answerable_when_down: bool = False) -> tuple[LimitState, ...]:
        """``answerable_when_down``: a read the database answers alone (the usage report, from the ledger) is let
        through uncounted while the backend is down, whatever the failure mode."""
        limits = request_limits(principal, self._defaults)
        if not limits:
            return ()
        try:
            decision = await self._limiter.acquire(limits, 1)
        except DependencyUnavailable as exc:
            if not (self._fail_open or answerable_when_down):
                raise
            self._degraded.warn(exc, "requests are not rate limited (fail-open)")
            return ()
        states = visible_states(decision)
        if not decision.allowed:
            wait = math.ceil(decision.retry_after_seconds)
            raise LimitExceeded(
                f"rate limit '{decision.denied_by}' reached: retry in {wait} s",
                retry_after_seconds=decision.retry_after_seconds,
                states=states,
            )
        return states
