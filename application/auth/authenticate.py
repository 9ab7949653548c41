from __future__ import annotations

from datetime import timedelta

from application.auth.principal_cache import PrincipalCache
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.api_keys import hash_api_key, hashes_match, looks_like_api_key
from domain.auth.model import Principal, Scope
from domain.auth.ports import SessionRevocations, TokenService
from domain.shared.clock import Clock
from domain.shared.errors import Unauthenticated

INVALID_CREDENTIALS = "credentials are missing, invalid or expired"
LAST_USED_RESOLUTION = timedelta(minutes=1)


class Authenticate:
    """Turns a bearer credential (an access JWT or an ``sk-sb-`` API key) into a ``Principal``.

    With a ``PrincipalCache``, a caller seen in the last few seconds is answered from memory: no database round trip
    on the hot path. Token signatures, key expiry and logged-out sessions (from memory too) are checked on every call.
    """

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        tokens: TokenService,
        sessions: SessionRevocations,
        clock: Clock,
        cache: PrincipalCache | None = None,
    ) -> None:
        self._uow = uow
        self._tokens = tokens
        self._sessions = sessions
        self._clock = clock
        self._cache = cache or PrincipalCache(ttl_seconds=0)

    async def execute(self, credential: str) -> Principal:
        if looks_like_api_key(credential):
            return await self._from_api_key(credential)
        claims = self._tokens.decode_access(credential)
        if claims.session_id is not None and self._sessions.is_revoked(claims.session_id):
            raise Unauthenticated(INVALID_CREDENTIALS)
        cache_key = f"user:{claims.user_id}"
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached.principal
        async with self._uow() as uow:
            user = await uow.users.find(claims.user_id)
        if user is None or not user.is_active:
            raise Unauthenticated(INVALID_CREDENTIALS)
        principal = Principal(
            user_id=user.id, role=user.role, scopes=Scope.for_role(user.role), user_limits=user.limits
        )
        self._cache.put(cache_key, principal)
        return principal

    async def _from_api_key(self, credential: str) -> Principal:
        now = self._clock.now()
        key_hash = hash_api_key(credential)
        cached = self._cache.get(key_hash)
        if cached is not None:
            expired = cached.key_expires_at is not None and cached.key_expires_at <= now
            stale_use = cached.last_used_written is None or now - cached.last_used_written >= LAST_USED_RESOLUTION
            if not expired and not stale_use:
                return cached.principal
        async with self._uow() as uow:
            key = await uow.api_keys.find_by_hash(key_hash)
            if key is None or not hashes_match(key.key_hash, credential) or not key.is_usable(now):
                raise Unauthenticated(INVALID_CREDENTIALS)
            user = await uow.users.find(key.owner_id)
            if user is None or not user.is_active:
                raise Unauthenticated(INVALID_CREDENTIALS)
            if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
                key.last_used_at = now
                await uow.api_keys.update(key)
                await uow.commit()
        # A key never holds more than its owner's role allows today, whatever it was created with.
        principal = Principal(
            user_id=user.id,
            role=user.role,
            scopes=key.scopes & Scope.for_role(user.role),
            api_key_id=key.id,
            user_limits=user.limits,
            key_limits=key.limits,
        )
        self._cache.put(key_hash, principal, key_expires_at=key.expires_at, last_used_written=key.last_used_at)
        return principal
