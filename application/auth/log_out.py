from __future__ import annotations

from dataclasses import dataclass

from application.unit_of_work import UnitOfWorkFactory
from domain.auth.ports import SessionRevocations, TokenService
from domain.shared.clock import Clock


@dataclass(frozen=True)
class LogOutCommand:
    refresh_token: str


class LogOut:
    """Revokes the session: its refresh tokens (the family) in the database, and its access tokens at once through
    the denylist every instance checks. Idempotent: logging out twice is not an error, and a retry after a failure
    to share the revocation shares it."""

    def __init__(
        self, *, uow: UnitOfWorkFactory, tokens: TokenService, sessions: SessionRevocations, clock: Clock
    ) -> None:
        self._uow = uow
        self._tokens = tokens
        self._sessions = sessions
        self._clock = clock

    async def execute(self, command: LogOutCommand) -> None:
        claims = self._tokens.decode_refresh(command.refresh_token)
        async with self._uow() as uow:
            stored = await uow.refresh_tokens.find(claims.token_id)
            if stored is None or stored.user_id != claims.user_id:
                return
            await uow.refresh_tokens.revoke_family(stored.family_id, self._clock.now())
            await uow.commit()
        await self._sessions.revoke(stored.family_id)  # after the commit: nothing is published for a rollback
