"""Logged-out sessions remembered in process: the denylist of one instance, and the memory of the Redis one."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from domain.auth.ports import SessionRevocations


class InMemorySessionRevocations(SessionRevocations):
    """Each entry is kept ``ttl_seconds`` (the longest an access token is accepted), then forgotten."""

    def __init__(self, *, ttl_seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._until: dict[uuid.UUID, float] = {}  # session id -> monotonic deadline

    async def revoke(self, session_id: uuid.UUID) -> None:
        self.remember(session_id, self._ttl)

    def is_revoked(self, session_id: uuid.UUID) -> bool:
        deadline = self._until.get(session_id)
        if deadline is None:
            return False
        if deadline <= self._monotonic():
            del self._until[session_id]
            return False
        return True

    def remember(self, session_id: uuid.UUID, seconds: float) -> None:
        now = self._monotonic()
        for expired in [sid for sid, deadline in self._until.items() if deadline <= now]:
            del self._until[expired]
        self._until[session_id] = max(self._until.get(session_id, now), now + seconds)

    def __len__(self) -> int:
        return len(self._until)
