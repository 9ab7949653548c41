"""A user stores (or replaces) their own key for a provider, or an administrator does it for them.

The key is checked against the provider first (one cheap authenticated call, outside any transaction), then sealed
under the current key-encryption key, bound to its user and provider, and stored in one commit. The caller gets
back the credential with its masked hint, never the key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from application.credentials.access import audit, check_provider, owner_of, require_user
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal
from domain.credentials.errors import NO_ENCRYPTION_KEY, CredentialEncryptionUnavailable
from domain.credentials.model import ProviderCredential, binding, check_secret, hint_of
from domain.credentials.ports import CredentialLookup, ProviderKeyVerifier, SecretCipher
from domain.shared.clock import Clock
from domain.shared.ids import new_id


@dataclass(frozen=True)
class PutProviderCredentialCommand:
    principal: Principal
    provider: str
    secret: str = field(repr=False)
    user_id: uuid.UUID | None = None  # an administrator acting for another user


@dataclass(frozen=True)
class PutProviderCredentialResult:
    credential: ProviderCredential
    created: bool  # False: an existing one was replaced


class PutProviderCredential:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        cipher: SecretCipher,
        verifier: ProviderKeyVerifier,
        lookup: CredentialLookup,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._cipher = cipher
        self._verifier = verifier
        self._lookup = lookup
        self._clock = clock

    async def execute(self, command: PutProviderCredentialCommand) -> PutProviderCredentialResult:
        owner = owner_of(command.principal, command.user_id)
        provider = check_provider(command.provider)
        secret = check_secret(command.secret)
        if not self._cipher.available:
            raise CredentialEncryptionUnavailable(NO_ENCRYPTION_KEY)
        if owner != command.principal.user_id:
            async with self._uow() as uow:
                await require_user(uow, owner)
        # Checked once, on save, before anything is stored; never inside a transaction (it takes a network call).
        await self._verifier.verify(provider, secret)
        sealed = self._cipher.seal(secret, binding(owner, provider))
        now = self._clock.now()
        async with self._uow() as uow:
            existing = await uow.provider_credentials.find(owner, provider)
            if existing is None:
                credential = ProviderCredential(
                    id=new_id(),
                    user_id=owner,
                    provider=provider,
                    sealed=sealed,
                    hint=hint_of(secret),
                    created_at=now,
                    updated_at=now,
                )
                await uow.provider_credentials.add(credential)
            else:
                credential = ProviderCredential(
                    id=existing.id,
                    user_id=owner,
                    provider=provider,
                    sealed=sealed,
                    hint=hint_of(secret),
                    created_at=existing.created_at,
                    updated_at=now,
                )
                await uow.provider_credentials.update(credential)
            action = "provider_credential.create" if existing is None else "provider_credential.replace"
            await audit(uow, command.principal, action, credential, before=existing, after=credential, at=now)
            await uow.commit()
        self._lookup.invalidate(owner, provider)
        return PutProviderCredentialResult(credential=credential, created=existing is None)
