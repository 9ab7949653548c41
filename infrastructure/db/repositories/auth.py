"""SQLAlchemy adapters for the auth context's repositories."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, Executable, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from domain.auth.model import ApiKey, RefreshToken, User
from domain.auth.ports import ApiKeyRepository, RefreshTokenRepository, UserRepository
from domain.shared.errors import Conflict, NotFound
from infrastructure.db.errors import is_foreign_key_violation, violated_unique_constraint
from infrastructure.db.mapping import (
    api_key_from_row,
    api_key_values,
    refresh_token_from_row,
    refresh_token_values,
    user_from_row,
    user_values,
)
from infrastructure.db.repositories.base import SqlAlchemyRepository
from infrastructure.db.tables import UQ_USERS_EMAIL, api_keys, refresh_tokens, users

EMAIL_TAKEN = "a user with this email already exists"


class SqlAlchemyUserRepository(SqlAlchemyRepository, UserRepository):
    async def add(self, user: User) -> None:
        await self._write(insert(users).values(user_values(user)), user.id)

    async def get(self, user_id: uuid.UUID) -> User:
        user = await self.find(user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user

    async def find(self, user_id: uuid.UUID) -> User | None:
        row = (await self._session.execute(select(users).where(users.c.id == user_id))).mappings().first()
        return user_from_row(row) if row is not None else None

    async def find_by_email(self, email: str) -> User | None:
        row = (await self._session.execute(select(users).where(users.c.email == email))).mappings().first()
        return user_from_row(row) if row is not None else None

    async def list_page(self, *, limit: int, offset: int) -> list[User]:
        if limit <= 0:
            return []
        statement = select(users).order_by(users.c.created_at, users.c.id).limit(limit).offset(max(offset, 0))
        return [user_from_row(row) for row in (await self._session.execute(statement)).mappings()]

    async def count(self) -> int:
        return (await self._session.execute(select(func.count()).select_from(users))).scalar_one()

    async def update(self, user: User) -> None:
        values = user_values(user)
        del values["id"], values["created_at"]
        await self._write(update(users).where(users.c.id == user.id).values(values), user.id)

    async def _write(self, statement: Executable, user_id: uuid.UUID) -> None:
        try:
            async with self._recoverable():
                if await self._rowcount(statement) == 0:
                    raise NotFound(f"user {user_id} not found")
        except IntegrityError as exc:
            if violated_unique_constraint(exc) == UQ_USERS_EMAIL:
                raise Conflict(EMAIL_TAKEN) from exc
            raise


class SqlAlchemyApiKeyRepository(SqlAlchemyRepository, ApiKeyRepository):
    async def add(self, key: ApiKey) -> None:
        try:
            await self._session.execute(insert(api_keys).values(api_key_values(key)))
        except IntegrityError as exc:
            if is_foreign_key_violation(exc):
                raise NotFound(f"user {key.owner_id} not found") from exc
            raise

    async def find(self, key_id: uuid.UUID) -> ApiKey | None:
        return await self._first(api_keys.c.id == key_id)

    async def find_by_hash(self, key_hash: str) -> ApiKey | None:
        return await self._first(api_keys.c.key_hash == key_hash)

    async def list_by_owner(self, owner_id: uuid.UUID) -> list[ApiKey]:
        statement = (
            select(api_keys)
            .where(api_keys.c.owner_id == owner_id)
            .order_by(api_keys.c.created_at.desc(), api_keys.c.id.desc())
        )
        return [api_key_from_row(row) for row in (await self._session.execute(statement)).mappings()]

    async def count_active_by_owner(self, owner_id: uuid.UUID, now: datetime) -> int:
        statement = (
            select(func.count())
            .select_from(api_keys)
            .where(
                api_keys.c.owner_id == owner_id,
                api_keys.c.revoked_at.is_(None),
                or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now),
            )
        )
        return (await self._session.execute(statement)).scalar_one()

    async def update(self, key: ApiKey) -> None:
        values = api_key_values(key)
        for fixed in ("id", "owner_id", "key_hash", "prefix", "created_at"):
            del values[fixed]
        if await self._rowcount(update(api_keys).where(api_keys.c.id == key.id).values(values)) == 0:
            raise NotFound(f"API key {key.id} not found")

    async def _first(self, condition: ColumnElement[bool]) -> ApiKey | None:
        statement = select(api_keys).where(condition)
        row = (await self._session.execute(statement)).mappings().first()
        return api_key_from_row(row) if row is not None else None


class SqlAlchemyRefreshTokenRepository(SqlAlchemyRepository, RefreshTokenRepository):
    async def add(self, token: RefreshToken) -> None:
        try:
            await self._session.execute(insert(refresh_tokens).values(refresh_token_values(token)))
        except IntegrityError as exc:
            if is_foreign_key_violation(exc):
                raise NotFound(f"user {token.user_id} not found") from exc
            raise

    async def find(self, token_id: uuid.UUID) -> RefreshToken | None:
        statement = select(refresh_tokens).where(refresh_tokens.c.id == token_id)
        row = (await self._session.execute(statement)).mappings().first()
        return refresh_token_from_row(row) if row is not None else None

    async def update(self, token: RefreshToken) -> None:
        values = refresh_token_values(token)
        for fixed in ("id", "family_id", "user_id", "issued_at"):
            del values[fixed]
        statement = update(refresh_tokens).where(refresh_tokens.c.id == token.id).values(values)
        if await self._rowcount(statement) == 0:
            raise NotFound(f"refresh token {token.id} not found")

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None:
        await self._revoke(refresh_tokens.c.family_id == family_id, at)

    async def revoke_all_for_user(self, user_id: uuid.UUID, at: datetime) -> None:
        await self._revoke(refresh_tokens.c.user_id == user_id, at)

    async def _revoke(self, condition: ColumnElement[bool], at: datetime) -> None:
        """Tokens already revoked keep their first revocation time."""
        statement = update(refresh_tokens).where(condition, refresh_tokens.c.revoked_at.is_(None)).values(revoked_at=at)
        await self._session.execute(statement)
