"""Fakes of the auth ports: a log-in throttle whose store goes down and comes back."""

from __future__ import annotations

from domain.auth.ports import LoginAttempt, LoginThrottle
from domain.shared.errors import DependencyUnavailable

EVERY_OPERATION = frozenset({"retry_after", "record_failure", "record_success"})


class OutageLoginThrottle(LoginThrottle):
    """Another throttle's counts behind a switch: the operations named in ``down`` raise ``DependencyUnavailable``
    as the Redis adapter does when Redis is unreachable; the others (and all, once ``down`` is empty) pass through."""

    def __init__(self, inner: LoginThrottle) -> None:
        self.inner = inner
        self.down: frozenset[str] = frozenset()

    def _check(self, operation: str) -> None:
        if operation in self.down:
            raise DependencyUnavailable("login throttle: Redis is unreachable (ConnectionError)")

    async def retry_after(self, attempt: LoginAttempt) -> float | None:
        self._check("retry_after")
        return await self.inner.retry_after(attempt)

    async def record_failure(self, attempt: LoginAttempt) -> None:
        self._check("record_failure")
        await self.inner.record_failure(attempt)

    async def record_success(self, attempt: LoginAttempt) -> None:
        self._check("record_success")
        await self.inner.record_success(attempt)
