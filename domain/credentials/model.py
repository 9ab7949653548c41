"""Provider credentials a user brings: their own key for a provider, sealed at rest. Standard library only.

The secret itself never lives on an entity: a ``ProviderCredential`` holds it sealed (``SealedSecret``: the
ciphertext and the id of the key-encryption key that sealed it) and a masked ``hint`` to show.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.shared.errors import RuleViolation
from domain.shared.text import check_storable

MIN_SECRET_LENGTH = 8
MAX_SECRET_LENGTH = 4096
HINT_CHARACTERS = 4
MAX_PROVIDER_LENGTH = 32


@dataclass(frozen=True)
class SealedSecret:
    """A secret encrypted with authenticated encryption, bound to its row; ``key_id`` names the key that sealed
    it (so that rotation knows what to re-encrypt, and older keys still open it)."""

    key_id: str
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"SealedSecret(key_id={self.key_id!r}, ciphertext=<{len(self.ciphertext)} bytes>)"


@dataclass(kw_only=True)
class ProviderCredential:
    """One user's key for one provider (at most one per user and provider)."""

    id: uuid.UUID
    user_id: uuid.UUID
    provider: str
    sealed: SealedSecret
    hint: str  # the last characters of the secret, for the owner to recognise it
    created_at: datetime
    updated_at: datetime


def binding(user_id: uuid.UUID, provider: str) -> bytes:
    """The associated data a credential's ciphertext is sealed with: moved to another row, it no longer opens."""
    return f"switchboard:provider-credential:v1:{user_id}:{provider}".encode()


def check_secret(secret: str) -> str:
    """The secret as it will be stored (surrounding whitespace dropped), or a ``RuleViolation`` naming no part of it."""
    cleaned = secret.strip()
    if not MIN_SECRET_LENGTH <= len(cleaned) <= MAX_SECRET_LENGTH:
        raise RuleViolation(f"api_key must be {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters")
    if any(c.isspace() or not c.isprintable() for c in cleaned):
        raise RuleViolation("api_key must not contain whitespace or control characters")
    check_storable(cleaned, "api_key")
    return cleaned


def hint_of(secret: str) -> str:
    """What may be shown of a secret: its last four characters, after an ellipsis."""
    return "…" + secret[-HINT_CHARACTERS:]
