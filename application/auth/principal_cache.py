"""Recently authenticated callers, kept in process for a few seconds so that the hot path skips the database.

A revocation, deactivation or limit change made through this process takes effect at once (the use cases that make
them invalidate the entries); made through another instance, within the time to live. Keep the TTL short.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from domain.auth.model import Principal


@dataclass
class CachedPrincipal:
    principal: Principal
    fresh_until: float  # monotonic deadline
    key_expires_at: datetime | None = None  # an API key's own expiry, still checked on every hit
    last_used_written: datetime | None = None  # when the key's last_used_at was last stored


class PrincipalCache:
    def __init__(
        self, *, ttl_seconds: float, max_entries: int = 10_000, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._monotonic = monotonic
        self._entries: OrderedDict[str, CachedPrincipal] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def get(self, token: str) -> CachedPrincipal | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if entry.fresh_until <= self._monotonic():
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return entry

    def put(
        self,
        token: str,
        principal: Principal,
        *,
        key_expires_at: datetime | None = None,
        last_used_written: datetime | None = None,
    ) -> None:
        if not self.enabled:
            return
        self._entries[token] = CachedPrincipal(
            principal=principal,
            fresh_until=self._monotonic() + self._ttl,
            key_expires_at=key_expires_at,
            last_used_written=last_used_written,
        )
        self._entries.move_to_end(token)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def invalidate_user(self, user_id: uuid.UUID) -> None:
        """Forgets every entry of this user: their log-in sessions and all their keys."""
        for token in [t for t, e in self._entries.items() if e.principal.user_id == user_id]:
            del self._entries[token]

    def invalidate_key(self, key_id: uuid.UUID) -> None:
        for token in [t for t, e in self._entries.items() if e.principal.api_key_id == key_id]:
            del self._entries[token]
