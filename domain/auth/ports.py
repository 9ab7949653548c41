"""Ports of the auth context: repositories and the crypto services the use cases need."""

from __future__ import annotations

import abc
import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.auth.model import ApiKey, RefreshToken, Role, User


class UserRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, user: User) -> None:
        """Raises ``Conflict`` when the email is taken."""

    @abc.abstractmethod
    async def get(self, user_id: uuid.UUID) -> User:
        """Raises ``NotFound``."""

    @abc.abstractmethod
    async def find(self, user_id: uuid.UUID) -> User | None: ...

    @abc.abstractmethod
    async def find_by_email(self, email: str) -> User | None: ...

    @abc.abstractmethod
    async def list_page(self, *, limit: int, offset: int) -> list[User]:
        """Oldest first."""

    @abc.abstractmethod
    async def count(self) -> int: ...

    @abc.abstractmethod
    async def update(self, user: User) -> None: ...


class ApiKeyRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, key: ApiKey) -> None: ...

    @abc.abstractmethod
    async def find(self, key_id: uuid.UUID) -> ApiKey | None: ...

    @abc.abstractmethod
    async def find_by_hash(self, key_hash: str) -> ApiKey | None: ...

    @abc.abstractmethod
    async def list_by_owner(self, owner_id: uuid.UUID) -> list[ApiKey]:
        """Newest first, revoked ones included."""

    @abc.abstractmethod
    async def count_active_by_owner(self, owner_id: uuid.UUID, now: datetime) -> int: ...

    @abc.abstractmethod
    async def update(self, key: ApiKey) -> None: ...


class RefreshTokenRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, token: RefreshToken) -> None: ...

    @abc.abstractmethod
    async def find(self, token_id: uuid.UUID) -> RefreshToken | None: ...

    @abc.abstractmethod
    async def update(self, token: RefreshToken) -> None: ...

    @abc.abstractmethod
    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None: ...

    @abc.abstractmethod
    async def revoke_all_for_user(self, user_id: uuid.UUID, at: datetime) -> None: ...


class PasswordHasher(abc.ABC):
    @abc.abstractmethod
    async def hash(self, password: str) -> str:
        """Slow on purpose: adapters run it off the event loop."""

    @abc.abstractmethod
    async def verify(self, password_hash: str, password: str) -> bool: ...

    @abc.abstractmethod
    def needs_rehash(self, password_hash: str) -> bool: ...

    @abc.abstractmethod
    async def burn(self, password: str) -> None:
        """Spend the time one verification takes, so unknown accounts answer as slowly as known ones."""


class CommonPasswords(abc.ABC):
    """Passwords known to be common or breached (NIST SP 800-63B's blocklist): guessing tries them first."""

    @abc.abstractmethod
    def contains(self, password: str) -> bool:
        """Whether ``password`` is on the list, whatever its case and surrounding blanks."""


class SessionRevocations(abc.ABC):
    """Log-in sessions ended (logged out, or a spent refresh token replayed) while access tokens issued to them may
    still be unexpired. Access tokens are stateless, so this denylist is what stops them at once; an entry needs to
    outlive only the longest access token, then goes by itself."""

    @abc.abstractmethod
    async def revoke(self, session_id: uuid.UUID) -> None:
        """From now on, in every instance. Raises ``DependencyUnavailable`` when the other instances cannot be told
        and the service fails closed (this one refuses the session's tokens all the same)."""

    @abc.abstractmethod
    def is_revoked(self, session_id: uuid.UUID) -> bool:
        """Answered from memory, never failing: it runs on every request."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    role: Role
    expires_at: datetime
    session_id: uuid.UUID | None = None  # the log-in session (refresh-token family) it was issued to


@dataclass(frozen=True)
class RefreshClaims:
    token_id: uuid.UUID
    user_id: uuid.UUID


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


class TokenService(abc.ABC):
    """Signs and checks session tokens (JWT in production). Decoding raises ``Unauthenticated``."""

    @abc.abstractmethod
    def issue_access(self, user: User, now: datetime, *, session_id: uuid.UUID | None = None) -> IssuedToken: ...

    @abc.abstractmethod
    def issue_refresh(self, token: RefreshToken) -> IssuedToken: ...

    @abc.abstractmethod
    def decode_access(self, token: str) -> AccessClaims: ...

    @abc.abstractmethod
    def decode_refresh(self, token: str) -> RefreshClaims: ...

    @property
    @abc.abstractmethod
    def refresh_ttl_seconds(self) -> int: ...


@dataclass(frozen=True)
class LoginAttempt:
    """Who is trying to log in: the account named (whether it exists or not) and the client's address."""

    account: str
    client_address: str | None = None


class LoginThrottle(abc.ABC):
    """Counts failed log-ins per account and per client address, so that guessing passwords stays slow.

    An account or address over its limit is refused until its window ends, whatever the password; unknown accounts
    are counted like known ones, so throttling reveals nothing about which emails are registered.
    """

    @abc.abstractmethod
    async def retry_after(self, attempt: LoginAttempt) -> float | None:
        """Seconds until this attempt may be made, or ``None`` when it may be made now."""

    @abc.abstractmethod
    async def record_failure(self, attempt: LoginAttempt) -> None: ...

    @abc.abstractmethod
    async def record_success(self, attempt: LoginAttempt) -> None:
        """Resets the account's count (not the address's: one good password does not vouch for the others)."""
