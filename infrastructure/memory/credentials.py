"""In-memory adapter of the provider-credential repository, behaving like the SQL one (the contract tests check it)."""

from __future__ import annotations

import uuid

from domain.credentials.model import ProviderCredential
from domain.credentials.ports import ProviderCredentialRepository
from domain.shared.errors import Conflict
from infrastructure.memory.repositories import InMemoryRepository
from infrastructure.memory.store import copy_out

CREDENTIAL_TAKEN = "a credential for this provider already exists"


class InMemoryProviderCredentialRepository(InMemoryRepository, ProviderCredentialRepository):
    async def find(self, user_id: uuid.UUID, provider: str) -> ProviderCredential | None:
        self._tx.check_open()
        found = self._tx.provider_credentials.where(lambda r: r.user_id == user_id and r.provider == provider)
        return copy_out(found[0]) if found else None

    async def list_by_user(self, user_id: uuid.UUID) -> list[ProviderCredential]:
        self._tx.check_open()
        found = self._tx.provider_credentials.where(lambda r: r.user_id == user_id)
        return [copy_out(r) for r in sorted(found, key=lambda r: r.provider)]

    async def add(self, credential: ProviderCredential) -> None:
        self._require_user(credential.user_id)
        if await self.find(credential.user_id, credential.provider) is not None:
            raise Conflict(CREDENTIAL_TAKEN)
        self._insert(self._tx.provider_credentials, credential)

    async def update(self, credential: ProviderCredential) -> None:
        self._replace(self._tx.provider_credentials, credential, "provider credential not found")

    async def delete(self, credential_id: uuid.UUID) -> None:
        self._tx.check_open()
        if self._tx.provider_credentials.get(credential_id) is not None:
            self._tx.provider_credentials.delete(credential_id)

    async def list_page(self, *, after: uuid.UUID | None, limit: int) -> list[ProviderCredential]:
        self._tx.check_open()
        rows = sorted(self._tx.provider_credentials.rows(), key=lambda r: r.id)
        return [copy_out(r) for r in rows if after is None or r.id > after][:limit]

    async def key_ids(self) -> set[str]:
        self._tx.check_open()
        return {r.sealed.key_id for r in self._tx.provider_credentials.rows()}
