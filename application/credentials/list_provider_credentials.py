"""A user's provider credentials (their providers and masked hints; the secrets are never read here)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.credentials.access import check_provider, owner_of, require_user
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal
from domain.credentials.model import ProviderCredential
from domain.shared.errors import NotFound


@dataclass(frozen=True)
class ListProviderCredentialsQuery:
    principal: Principal
    user_id: uuid.UUID | None = None  # an administrator looking at another user's
    provider: str | None = None  # just this one (NotFound when there is none)


class ListProviderCredentials:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, query: ListProviderCredentialsQuery) -> list[ProviderCredential]:
        owner = owner_of(query.principal, query.user_id)
        async with self._uow() as uow:
            if owner != query.principal.user_id:
                await require_user(uow, owner)
            if query.provider is None:
                return await uow.provider_credentials.list_by_user(owner)
            found = await uow.provider_credentials.find(owner, check_provider(query.provider))
        if found is None:
            raise NotFound("no credential for this provider")
        return [found]
