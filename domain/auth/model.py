"""Users, API keys, refresh sessions and the authenticated principal."""

from __future__ import annotations

import enum
import itertools
import re
import string
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from domain.auth.errors import WeakPassword
from domain.shared.errors import RuleViolation
from domain.shared.text import check_storable
from domain.usage.model import Limits

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
# No whitespace by either regex dialect's definition (Python's \s also has \x1c-\x1f and \x85, ECMAScript's has \ufeff):
# the OpenAPI document publishes this pattern, and clients and fuzzers read it as ECMAScript.
_NOT_SPACE = r"[^@\s\x1c-\x1f\x85\ufeff"
_ADDRESS = rf"{_NOT_SPACE}]{{1,64}}@{_NOT_SPACE}]{{1,255}}\.{_NOT_SPACE}.]{{2,63}}"
EMAIL_PATTERN = rf"^[ \t]*{_ADDRESS}[ \t]*$"  # surrounding blanks are trimmed, as people paste addresses
MAX_EMAIL_LENGTH = 320
_EMAIL = re.compile(EMAIL_PATTERN)
_DIGITS_AND_PUNCTUATION = string.digits + string.punctuation + " "


class Role(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class Scope(enum.StrEnum):
    """What an API key may do. A logged-in user (JWT) holds every scope its role allows."""

    CHAT = "chat"
    MODELS = "models"
    USAGE = "usage"
    KEYS = "keys"
    ADMIN = "admin"

    @classmethod
    def for_role(cls, role: Role) -> frozenset[Scope]:
        if role is Role.ADMIN:
            return frozenset(cls)
        return frozenset(cls) - {cls.ADMIN}


def normalize_email(raw: str) -> str:
    """Trimmed and lower-cased; raises ``RuleViolation`` when it is not an address."""
    email = raw.strip()
    check_storable(email, "email")
    if not _EMAIL.match(email):
        raise RuleViolation("email is not a valid address")
    email = email.lower()  # after the check: lower-casing can lengthen a string ("İ" becomes two characters)
    if len(email) > MAX_EMAIL_LENGTH:
        raise RuleViolation(f"email must be at most {MAX_EMAIL_LENGTH} characters")
    return email


def check_password_policy(password: str, *, email: str | None = None) -> None:
    """NIST SP 800-63B's rules for a new password that need no list: a length between the bounds, not blank, not a
    run or a repetition ("123456789012", "abcabcabcabc"), not the email or its local part (give or take a trailing
    number). Raises ``WeakPassword``; the common and breached passwords are a port's (``CommonPasswords``)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    if password.strip() == "":
        raise WeakPassword("password must not be blank")
    folded = password.strip().casefold()
    if any(_is_run(text) or _is_repetition(text) for text in (folded, password.casefold())):
        raise WeakPassword("password must not be a sequence or a repetition of characters")
    if email is not None and _is_email_derived(folded, email.strip().casefold()):
        raise WeakPassword("password must not be your email address or a part of it")


def _is_run(text: str) -> bool:
    """Every character one after the previous, or one before it ("123456789012", "zyxwvutsrqpo"); digits wrap."""

    def step(a: str, b: str) -> int:
        if a.isdigit() and b.isdigit() and a.isascii() and b.isascii():
            return {1: 1, 9: -1}.get((int(b) - int(a)) % 10, 0)
        return ord(b) - ord(a)

    return {step(a, b) for a, b in itertools.pairwise(text)} in ({1}, {-1})


def _is_repetition(text: str) -> bool:
    """One short unit over and over ("aaaaaaaaaaaa", "abcabcabcabc", "qwertyqwerty")."""
    return any(
        len(text) % size == 0 and text[:size] * (len(text) // size) == text for size in range(1, len(text) // 2 + 1)
    )


def _is_email_derived(folded: str, email: str) -> bool:
    local_part = email.partition("@")[0]
    base = folded.rstrip(_DIGITS_AND_PUNCTUATION)
    return bool(local_part) and (folded in (email, local_part) or base in (email, local_part))


@dataclass(kw_only=True)
class User:
    id: uuid.UUID
    email: str
    password_hash: str
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime
    limits: Limits = field(default_factory=Limits)  # budget and rate-limit overrides an administrator set


@dataclass(kw_only=True)
class ApiKey:
    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    scopes: frozenset[Scope]
    prefix: str
    key_hash: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    limits: Limits = field(default_factory=Limits)  # set by an administrator only, never by the key's owner

    def is_usable(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now


@dataclass(kw_only=True)
class RefreshToken:
    """One issued refresh token. Tokens of one login share a family; reusing a spent one revokes the family."""

    id: uuid.UUID
    family_id: uuid.UUID
    user_id: uuid.UUID
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who is calling: a user, through a login session or one of their API keys."""

    user_id: uuid.UUID
    role: Role
    scopes: frozenset[Scope] = field(default_factory=frozenset)
    api_key_id: uuid.UUID | None = None
    # Read with the credential, so that limits cost no extra lookup per call.
    user_limits: Limits = field(default_factory=Limits)  # the user's overrides
    key_limits: Limits = field(default_factory=Limits)  # the API key's, when the credential is one

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN and Scope.ADMIN in self.scopes
