"""The router's view of the keys users bring: a user's secret for a provider, read and opened once, then remembered
for ``ttl_seconds`` (and that they have none, too), so a call costs a dictionary look-up, not a query.

A change made on this instance applies at once (the use cases call ``invalidate``); one made on another instance
within ``ttl_seconds``. When the database cannot be read, a remembered answer is used even if stale, else the
operator's key (the usage record says so: ``key_owner`` operator); a row that does not open (altered, or moved from
another row) is logged and the operator's key used. Neither failure names or logs a secret.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from application.unit_of_work import UnitOfWorkFactory
from domain.credentials.errors import CredentialEncryptionUnavailable
from domain.credentials.model import binding
from domain.credentials.ports import CredentialLookup, SecretCipher
from domain.shared.errors import ServiceUnavailable
from infrastructure.settings import SettingsError

log = logging.getLogger("switchboard.credentials")
MAX_ENTRIES = 10_000


class CachedCredentialLookup(CredentialLookup):
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        cipher: SecretCipher,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._uow = uow
        self._cipher = cipher
        self._ttl = ttl_seconds
        self._clock = clock
        self._max = max_entries
        self._remembered: dict[tuple[uuid.UUID, str], tuple[str | None, float]] = {}

    def __repr__(self) -> str:
        return f"CachedCredentialLookup(entries={len(self._remembered)})"

    async def secret_for(self, user_id: uuid.UUID, provider: str) -> str | None:
        if not self._cipher.available:
            return None
        key = (user_id, provider)
        remembered = self._remembered.get(key)
        now = self._clock()
        if remembered is not None and remembered[1] > now:
            return remembered[0]
        try:
            secret = await self._read(user_id, provider)
        except ServiceUnavailable:
            log.warning("provider credentials unreadable (database unavailable): using the remembered or operator key")
            return remembered[0] if remembered is not None else None
        except (ValueError, CredentialEncryptionUnavailable) as exc:
            log.error(
                "a provider credential of user %s for %s does not open (%s)", user_id, provider, type(exc).__name__
            )
            secret = None
        if len(self._remembered) >= self._max:
            self._remembered.pop(next(iter(self._remembered)))  # the oldest entry
        self._remembered[key] = (secret, now + self._ttl)
        return secret

    async def _read(self, user_id: uuid.UUID, provider: str) -> str | None:
        async with self._uow() as uow:
            credential = await uow.provider_credentials.find(user_id, provider)
        if credential is None:
            return None
        return self._cipher.open(credential.sealed, binding(user_id, provider))

    def invalidate(self, user_id: uuid.UUID, provider: str) -> None:
        self._remembered.pop((user_id, provider), None)


async def check_credential_keys(uow: UnitOfWorkFactory, key_ids: frozenset[str]) -> None:
    """At start-up: every stored credential must be readable with the configured keys, else a ``SettingsError``
    that says what is missing (a key id, never a key). A database not reachable yet is not this check's to report."""
    try:
        async with uow() as work:
            stored = await work.provider_credentials.key_ids()
    except ServiceUnavailable:
        log.warning("provider credential keys not checked: the database is unavailable")
        return
    if stored and not key_ids:
        raise SettingsError(
            "SWITCHBOARD_CREDENTIAL_KEYS is not set, but provider credentials are stored: set the keys they were "
            "encrypted with (or delete the credentials)"
        )
    missing = sorted(stored - key_ids)
    if missing:
        raise SettingsError(
            f"SWITCHBOARD_CREDENTIAL_KEYS lacks the key(s) {', '.join(missing)} that stored provider credentials are "
            "encrypted with: keep old keys configured until `switchboard rotate-credentials` has re-encrypted them"
        )
