"""What log-in throttling does when its shared store (Redis) is down: never nothing.

Limits and budgets may fail open, because a request they wave through is still authenticated and billed. Log-in
throttling is the only thing that keeps password guessing slow, so it never simply lets attempts through:

- fail-closed (no ``local`` throttle): every log-in is refused with ``DependencyUnavailable`` (503) until the store
  answers again;
- fail-open (a ``local`` throttle): attempts are counted in this process instead, with a logged warning. Each
  instance then throttles on its own (weaker, but never off), and what it counted keeps applying after the outage
  until its window ends, so an outage cannot be used to wipe a count.

Resetting an account after a successful log-in is best effort: the log-in has happened, and a reset that did not
reach the store only leaves an old count to run out.
"""

from __future__ import annotations

from application.degraded import DegradedWarning
from domain.auth.ports import LoginAttempt, LoginThrottle
from domain.shared.errors import DependencyUnavailable

LOGGER = "switchboard.auth"


class ResilientLoginThrottle(LoginThrottle):
    def __init__(self, *, shared: LoginThrottle, local: LoginThrottle | None) -> None:
        self._shared = shared
        self._local = local
        self._degraded = DegradedWarning("login throttle", logger=LOGGER)

    async def retry_after(self, attempt: LoginAttempt) -> float | None:
        local = await self._local.retry_after(attempt) if self._local is not None else None
        try:
            shared = await self._shared.retry_after(attempt)
        except DependencyUnavailable as exc:
            if self._local is None:
                raise
            self._counting_locally(exc)
            return local
        waits = [wait for wait in (shared, local) if wait is not None]
        return max(waits) if waits else None

    async def record_failure(self, attempt: LoginAttempt) -> None:
        try:
            await self._shared.record_failure(attempt)
        except DependencyUnavailable as exc:
            if self._local is None:
                raise
            self._counting_locally(exc)
            await self._local.record_failure(attempt)

    async def record_success(self, attempt: LoginAttempt) -> None:
        if self._local is not None:
            await self._local.record_success(attempt)
        try:
            await self._shared.record_success(attempt)
        except DependencyUnavailable as exc:
            self._degraded.warn(exc, "the account's failed log-ins were not reset")

    def _counting_locally(self, exc: DependencyUnavailable) -> None:
        self._degraded.warn(exc, "failed log-ins are counted in this process only (fail-open)")
