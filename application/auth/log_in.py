from __future__ import annotations

from dataclasses import dataclass

from application.auth.tokens import TokenPair, issue_token_pair
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import normalize_email
from domain.auth.ports import PasswordHasher, TokenService
from domain.shared.clock import Clock
from domain.shared.errors import RuleViolation, Unauthenticated
from domain.shared.ids import new_id

BAD_CREDENTIALS = "incorrect email or password"


@dataclass(frozen=True)
class LogInCommand:
    email: str
    password: str


class LogIn:
    """Same answer, and about the same time, for an unknown email, a wrong password and a deactivated account."""

    def __init__(self, *, uow: UnitOfWorkFactory, hasher: PasswordHasher, tokens: TokenService, clock: Clock) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock

    async def execute(self, command: LogInCommand) -> TokenPair:
        try:
            email = normalize_email(command.email)
        except RuleViolation:
            email = None
        async with self._uow() as uow:
            user = await uow.users.find_by_email(email) if email else None
            if user is None:
                await self._hasher.burn(command.password)
                raise Unauthenticated(BAD_CREDENTIALS)
            if not await self._hasher.verify(user.password_hash, command.password) or not user.is_active:
                raise Unauthenticated(BAD_CREDENTIALS)
            now = self._clock.now()
            if self._hasher.needs_rehash(user.password_hash):
                user.password_hash = await self._hasher.hash(command.password)
                user.updated_at = now
                await uow.users.update(user)
            pair = await issue_token_pair(uow, self._tokens, user, family_id=new_id(), now=now)
            await uow.commit()
        return pair
