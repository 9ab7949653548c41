"""A user deletes their key for a provider (or an administrator does it for them): their calls go back to the
operator's key at once on this instance."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.credentials.access import audit, check_provider, owner_of, require_user
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal
from domain.credentials.ports import CredentialLookup
from domain.shared.clock import Clock
from domain.shared.errors import NotFound


@dataclass(frozen=True)
class DeleteProviderCredentialCommand:
    principal: Principal
    provider: str
    user_id: uuid.UUID | None = None


class DeleteProviderCredential:
    def __init__(self, *, uow: UnitOfWorkFactory, lookup: CredentialLookup, clock: Clock) -> None:
        self._uow = uow
        self._lookup = lookup
        self._clock = clock

    async def execute(self, command: DeleteProviderCredentialCommand) -> None:
        owner = owner_of(command.principal, command.user_id)
        provider = check_provider(command.provider)
        async with self._uow() as uow:
            if owner != command.principal.user_id:
                await require_user(uow, owner)
            existing = await uow.provider_credentials.find(owner, provider)
            if existing is None:
                raise NotFound("no credential for this provider")
            await uow.provider_credentials.delete(existing.id)
            now = self._clock.now()
            await audit(
                uow, command.principal, "provider_credential.delete", existing, before=existing, after=None, at=now
            )
            await uow.commit()
        self._lookup.invalidate(owner, provider)
