"""Errors of provider credentials. None of them ever carries any part of a secret."""

from __future__ import annotations

from domain.shared.errors import DomainError, RuleViolation, UpstreamAuthError


class ProviderNotSupported(RuleViolation):
    """A provider whose credentials a user cannot bring (unknown, keyless, or reached with the operator's own
    endpoint or cloud credentials)."""

    code = "provider_not_supported"
    title = "Provider not supported"


class ProviderKeyRejected(UpstreamAuthError):
    """The provider refused a user's own key (on save, or on a call made with it)."""

    code = "provider_key_rejected"
    title = "Provider key rejected"


class CredentialEncryptionUnavailable(DomainError):
    """No key-encryption key is configured, so no credential can be stored or read (never stored in plaintext)."""

    code = "credential_encryption_unavailable"
    title = "Credential storage not configured"


NO_ENCRYPTION_KEY = (
    "provider credentials cannot be stored or read here: the operator has configured no key-encryption key "
    "(SWITCHBOARD_CREDENTIAL_KEYS)"
)
