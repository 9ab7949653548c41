"""The key-encryption keys of provider credentials as the settings hold them (no ``cryptography`` import here: the
settings read them, and the cipher is loaded only when keys are configured)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

KEY_BYTES = 32


def key_id(key: bytes) -> str:
    """A key's public name: the first 16 hex digits of SHA-256 over a label and the key."""
    return hashlib.sha256(b"switchboard-credential-kek:" + key).hexdigest()[:16]


def decode_key(text: str) -> bytes:
    """A key as configured: 32 bytes in URL-safe or standard base64. ``ValueError`` names no part of it."""
    try:
        raw = base64.b64decode(text.strip().replace("-", "+").replace("_", "/") + "==", validate=False)
    except (binascii.Error, ValueError):
        raise ValueError("a credential key is not base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"a credential key must be {KEY_BYTES} bytes, base64-encoded (openssl rand -base64 32)")
    return raw


def new_key() -> str:
    """A fresh key, as the settings take it."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()
