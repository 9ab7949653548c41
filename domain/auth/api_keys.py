"""API key material: generation, hashing and constant-time checks. Standard library only."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_PREFIX = "sk-sb-"
_SECRET_BYTES = 32
_DISPLAY_PREFIX_CHARS = 8


@dataclass(frozen=True)
class NewKeyMaterial:
    plaintext: str  # shown to the owner exactly once
    prefix: str  # stored and shown, identifies the key to its owner
    key_hash: str  # stored; the plaintext never is


def looks_like_api_key(credential: str) -> bool:
    return credential.startswith(KEY_PREFIX)


def hash_api_key(plaintext: str) -> str:
    """SHA-256 is right here: the secret has 256 bits of entropy, so a slow hash adds cost and no safety."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_api_key() -> NewKeyMaterial:
    plaintext = KEY_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
    return NewKeyMaterial(
        plaintext=plaintext,
        prefix=plaintext[: len(KEY_PREFIX) + _DISPLAY_PREFIX_CHARS],
        key_hash=hash_api_key(plaintext),
    )


def hashes_match(stored_hash: str, presented_plaintext: str) -> bool:
    return hmac.compare_digest(stored_hash, hash_api_key(presented_plaintext))
