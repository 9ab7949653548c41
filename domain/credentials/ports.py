"""Ports of provider credentials: where they are stored, how they are sealed, checked against their provider, and
looked up on a call."""

from __future__ import annotations

import abc
import uuid

from domain.credentials.model import ProviderCredential, SealedSecret


class ProviderCredentialRepository(abc.ABC):
    @abc.abstractmethod
    async def find(self, user_id: uuid.UUID, provider: str) -> ProviderCredential | None: ...

    @abc.abstractmethod
    async def list_by_user(self, user_id: uuid.UUID) -> list[ProviderCredential]:
        """By provider name."""

    @abc.abstractmethod
    async def add(self, credential: ProviderCredential) -> None:
        """Raises ``Conflict`` when the user already has one for that provider."""

    @abc.abstractmethod
    async def update(self, credential: ProviderCredential) -> None:
        """Raises ``NotFound``."""

    @abc.abstractmethod
    async def delete(self, credential_id: uuid.UUID) -> None: ...

    @abc.abstractmethod
    async def list_page(self, *, after: uuid.UUID | None, limit: int) -> list[ProviderCredential]:
        """Every user's, by id (for re-encryption under a new key)."""

    @abc.abstractmethod
    async def key_ids(self) -> set[str]:
        """The ids of the keys the stored credentials are sealed with."""


class SecretCipher(abc.ABC):
    """Authenticated encryption of secrets under the operator's key-encryption keys: the first seals, every one
    opens. ``associated_data`` binds a ciphertext to its row."""

    @property
    @abc.abstractmethod
    def available(self) -> bool:
        """Whether a key is configured (without one nothing can be sealed or opened)."""

    @abc.abstractmethod
    def seal(self, secret: str, associated_data: bytes) -> SealedSecret:
        """Raises ``CredentialEncryptionUnavailable`` without a key."""

    @abc.abstractmethod
    def open(self, sealed: SealedSecret, associated_data: bytes) -> str:
        """Raises ``CredentialEncryptionUnavailable`` when the key is not configured, and ``ValueError`` when the
        ciphertext was altered or belongs to another row."""

    @abc.abstractmethod
    def is_current(self, sealed: SealedSecret) -> bool:
        """Whether ``sealed`` is under the key that seals now."""


class ProviderKeyVerifier(abc.ABC):
    """Checks a user's key against its provider with one cheap authenticated call."""

    @abc.abstractmethod
    async def verify(self, provider: str, secret: str) -> None:
        """Raises ``ProviderNotSupported`` (no such provider here, or not one a user may bring a key for),
        ``ProviderKeyRejected`` (the provider refused it), or an ``UpstreamError`` (the provider could not say)."""


class CredentialLookup(abc.ABC):
    """A user's secret for a provider, when they brought one, as the router needs it on each call."""

    @abc.abstractmethod
    async def secret_for(self, user_id: uuid.UUID, provider: str) -> str | None: ...

    @abc.abstractmethod
    def invalidate(self, user_id: uuid.UUID, provider: str) -> None:
        """Forget what is remembered of that credential (it changed)."""
