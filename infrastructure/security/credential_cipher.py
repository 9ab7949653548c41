"""AES-256-GCM for the provider keys users bring (``cryptography``'s ``AESGCM``).

The operator's key-encryption keys come from the settings (``SWITCHBOARD_CREDENTIAL_KEYS``), newest first: the first
seals, every one opens, so a key is rotated by putting the new one first, re-encrypting (``switchboard
rotate-credentials``) and then dropping the old one. Each ciphertext is stored with the id of its key (a digest of
the key, never the key) and is a fresh 96-bit nonce followed by the sealed secret and its 128-bit tag. The
associated data binds it to its row (user and provider): moved to another row, it no longer opens.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from domain.credentials.errors import NO_ENCRYPTION_KEY, CredentialEncryptionUnavailable
from domain.credentials.model import SealedSecret
from domain.credentials.ports import SecretCipher
from infrastructure.security.credential_keys import key_id

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class AesGcmSecretCipher(SecretCipher):
    def __init__(self, keys: Sequence[bytes]) -> None:
        self._keys: dict[str, AESGCM] = {}
        if keys:  # cryptography is loaded only when there is something to encrypt with
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._keys = {key_id(key): AESGCM(key) for key in keys}
        self._current = key_id(keys[0]) if keys else None

    def __repr__(self) -> str:
        return f"AesGcmSecretCipher(key_ids={list(self._keys)!r})"

    @property
    def available(self) -> bool:
        return self._current is not None

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def seal(self, secret: str, associated_data: bytes) -> SealedSecret:
        if self._current is None:
            raise CredentialEncryptionUnavailable(NO_ENCRYPTION_KEY)
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, secret.encode(), associated_data)
        return SealedSecret(key_id=self._current, ciphertext=nonce + sealed)

    def open(self, sealed: SealedSecret, associated_data: bytes) -> str:
        if self._current is None:
            raise CredentialEncryptionUnavailable(NO_ENCRYPTION_KEY)
        aead = self._keys.get(sealed.key_id)
        if aead is None:
            raise CredentialEncryptionUnavailable(
                f"a provider credential is sealed with key {sealed.key_id}, which SWITCHBOARD_CREDENTIAL_KEYS lacks"
            )
        nonce, body = sealed.ciphertext[:NONCE_BYTES], sealed.ciphertext[NONCE_BYTES:]
        from cryptography.exceptions import InvalidTag

        try:
            return aead.decrypt(nonce, body, associated_data).decode()
        except (InvalidTag, ValueError):
            raise ValueError("a provider credential does not open: altered, or not this row's") from None

    def is_current(self, sealed: SealedSecret) -> bool:
        return sealed.key_id == self._current
