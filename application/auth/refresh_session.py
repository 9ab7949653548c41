from __future__ import annotations

from dataclasses import dataclass

from application.auth.tokens import TokenPair, issue_token_pair
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.ports import SessionRevocations, TokenService
from domain.shared.clock import Clock
from domain.shared.errors import Unauthenticated

INVALID_REFRESH = "refresh token is invalid, expired or revoked"


@dataclass(frozen=True)
class RefreshSessionCommand:
    refresh_token: str


class RefreshSession:
    """Trades a refresh token for a new pair. Each refresh token works once: presenting a spent one again means it
    leaked, so its whole family (every token descended from the same log-in) is revoked, access tokens included."""

    def __init__(
        self, *, uow: UnitOfWorkFactory, tokens: TokenService, sessions: SessionRevocations, clock: Clock
    ) -> None:
        self._uow = uow
        self._tokens = tokens
        self._sessions = sessions
        self._clock = clock

    async def execute(self, command: RefreshSessionCommand) -> TokenPair:
        claims = self._tokens.decode_refresh(command.refresh_token)
        now = self._clock.now()
        async with self._uow() as uow:
            stored = await uow.refresh_tokens.find(claims.token_id)
            if stored is None or stored.user_id != claims.user_id:
                raise Unauthenticated(INVALID_REFRESH)
            if stored.used_at is not None or stored.revoked_at is not None:
                await uow.refresh_tokens.revoke_family(stored.family_id, now)
                await uow.commit()
                await self._sessions.revoke(stored.family_id)
                raise Unauthenticated(INVALID_REFRESH)
            user = await uow.users.find(stored.user_id)
            if stored.expires_at <= now or user is None or not user.is_active:
                raise Unauthenticated(INVALID_REFRESH)
            stored.used_at = now
            await uow.refresh_tokens.update(stored)
            pair = await issue_token_pair(uow, self._tokens, user, family_id=stored.family_id, now=now)
            await uow.commit()
        return pair
