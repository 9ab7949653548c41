from __future__ import annotations

from dataclasses import dataclass

from application.auth.tokens import TokenPair, issue_token_pair
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import normalize_email
from domain.auth.ports import LoginAttempt, LoginThrottle, PasswordHasher, TokenService
from domain.shared.clock import Clock
from domain.shared.errors import RateLimited, RuleViolation, Unauthenticated
from domain.shared.ids import new_id

BAD_CREDENTIALS = "incorrect email or password"
THROTTLED = "too many failed log-ins for this account or address; try again later"
MAX_ACCOUNT_KEY_LENGTH = 320


@dataclass(frozen=True)
class LogInCommand:
    email: str
    password: str
    client_address: str | None = None


class LogIn:
    """Same answer, and about the same time, for an unknown email, a wrong password and a deactivated account.

    Failures are counted per account and per client address; over the limit every attempt is refused with
    ``RateLimited`` (whatever the password) until the window ends. A successful log-in resets the account's count.
    """

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        tokens: TokenService,
        clock: Clock,
        throttle: LoginThrottle,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._throttle = throttle

    async def execute(self, command: LogInCommand) -> TokenPair:
        try:
            email: str | None = normalize_email(command.email)
        except RuleViolation:
            email = None
        account = email or command.email.strip().lower()[:MAX_ACCOUNT_KEY_LENGTH]
        attempt = LoginAttempt(account=account, client_address=command.client_address)
        retry_after = await self._throttle.retry_after(attempt)
        if retry_after is not None:
            raise RateLimited(THROTTLED, retry_after_seconds=retry_after)
        async with self._uow() as uow:
            user = await uow.users.find_by_email(email) if email else None
            if user is None:
                await self._hasher.burn(command.password)
            if (
                user is None
                or not await self._hasher.verify(user.password_hash, command.password)
                or not user.is_active
            ):
                await self._throttle.record_failure(attempt)
                raise Unauthenticated(BAD_CREDENTIALS)
            now = self._clock.now()
            if self._hasher.needs_rehash(user.password_hash):
                user.password_hash = await self._hasher.hash(command.password)
                user.updated_at = now
                await uow.users.update(user)
            pair = await issue_token_pair(uow, self._tokens, user, family_id=new_id(), now=now)
            await uow.commit()
        await self._throttle.record_success(attempt)
        return pair
