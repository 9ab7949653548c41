"""SQLAlchemy adapter of the provider-credential repository: rows hold the sealed secret, never the secret."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from domain.credentials.model import ProviderCredential, SealedSecret
from domain.credentials.ports import ProviderCredentialRepository
from domain.shared.errors import Conflict, NotFound
from infrastructure.db.repositories.base import SqlAlchemyRepository
from infrastructure.db.tables import provider_credentials

c = provider_credentials.c
CREDENTIAL_TAKEN = "a credential for this provider already exists"


def _values(credential: ProviderCredential) -> dict[str, Any]:
    return {
        "id": credential.id,
        "user_id": credential.user_id,
        "provider": credential.provider,
        "key_id": credential.sealed.key_id,
        "ciphertext": credential.sealed.ciphertext,
        "hint": credential.hint,
        "created_at": credential.created_at,
        "updated_at": credential.updated_at,
    }


def _credential(row: RowMapping) -> ProviderCredential:
    return ProviderCredential(
        id=row["id"],
        user_id=row["user_id"],
        provider=row["provider"],
        sealed=SealedSecret(key_id=row["key_id"], ciphertext=bytes(row["ciphertext"])),
        hint=row["hint"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class SqlAlchemyProviderCredentialRepository(SqlAlchemyRepository, ProviderCredentialRepository):
    async def find(self, user_id: uuid.UUID, provider: str) -> ProviderCredential | None:
        statement = select(provider_credentials).where(c.user_id == user_id, c.provider == provider)
        row = (await self._session.execute(statement)).mappings().first()
        return None if row is None else _credential(row)

    async def list_by_user(self, user_id: uuid.UUID) -> list[ProviderCredential]:
        statement = select(provider_credentials).where(c.user_id == user_id).order_by(c.provider)
        return [_credential(row) for row in (await self._session.execute(statement)).mappings()]

    async def add(self, credential: ProviderCredential) -> None:
        try:
            async with self._recoverable():
                await self._session.execute(insert(provider_credentials).values(**_values(credential)))
        except IntegrityError as exc:
            raise Conflict(CREDENTIAL_TAKEN) from exc

    async def update(self, credential: ProviderCredential) -> None:
        values = _values(credential)
        for fixed in ("id", "user_id", "provider", "created_at"):
            del values[fixed]
        if not await self._rowcount(update(provider_credentials).where(c.id == credential.id).values(**values)):
            raise NotFound("provider credential not found")

    async def delete(self, credential_id: uuid.UUID) -> None:
        await self._session.execute(delete(provider_credentials).where(c.id == credential_id))

    async def list_page(self, *, after: uuid.UUID | None, limit: int) -> list[ProviderCredential]:
        statement = select(provider_credentials).order_by(c.id).limit(limit)
        if after is not None:
            statement = statement.where(c.id > after)
        return [_credential(row) for row in (await self._session.execute(statement)).mappings()]

    async def key_ids(self) -> set[str]:
        return set((await self._session.execute(select(c.key_id).distinct())).scalars())
