"""Interactive traffic first: a batch line counts against its caller's requests-per-minute policies (key, user,
overall) like any request, but is admitted only while the window holds less than ``share`` of each limit. What is
left above that share is only ever taken by interactive requests, so a batch running flat out leaves them room.

Token limits apply to lines as to every call (the model-call pipeline reserves them) at their full size.
"""

from __future__ import annotations

import math
from dataclasses import replace

from application.usage.rate_limits import RateLimitDefaults, request_limits
from domain.auth.model import Principal
from domain.shared.errors import DependencyUnavailable
from domain.usage.errors import LimitExceeded
from domain.usage.ports import RateLimiter


class BatchRateShare:
    def __init__(self, *, limiter: RateLimiter, defaults: RateLimitDefaults, share: float, fail_open: bool) -> None:
        self._limiter = limiter
        self._defaults = defaults
        self._share = share
        self._fail_open = fail_open

    async def admit(self, principal: Principal) -> None:
        """Counts one line, or raises ``LimitExceeded`` (the line waits and is claimed again later)."""
        limits = tuple(
            replace(limit, limit=max(1, math.floor(limit.limit * self._share)))
            for limit in request_limits(principal, self._defaults)
        )
        if not limits:
            return
        try:
            decision = await self._limiter.acquire(limits, 1)
        except DependencyUnavailable:
            if self._fail_open:
                return
            raise
        if not decision.allowed:
            raise LimitExceeded(
                f"batch share of rate limit '{decision.denied_by}' reached",
                retry_after_seconds=decision.retry_after_seconds,
                states=(),
            )
