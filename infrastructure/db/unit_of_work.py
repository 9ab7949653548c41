"""The SQLAlchemy unit of work: one ``AsyncSession`` (one transaction) per ``async with`` block."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from application.unit_of_work import UnitOfWork, UnitOfWorkFactory
from infrastructure.db.repositories.auth import (
    SqlAlchemyApiKeyRepository,
    SqlAlchemyRefreshTokenRepository,
    SqlAlchemyUserRepository,
)
from infrastructure.db.repositories.chat import SqlAlchemyConversationRepository
from infrastructure.db.repositories.usage import SqlAlchemyUsageRepository


class SqlAlchemyUnitOfWork(UnitOfWork):
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory
        self._session: AsyncSession | None = None

    async def _begin(self) -> None:
        if self._session is not None:
            raise RuntimeError("this unit of work is already open")
        session = self._session_factory()
        self._session = session
        self.users = SqlAlchemyUserRepository(session)
        self.api_keys = SqlAlchemyApiKeyRepository(session)
        self.refresh_tokens = SqlAlchemyRefreshTokenRepository(session)
        self.conversations = SqlAlchemyConversationRepository(session)
        self.usage = SqlAlchemyUsageRepository(session)

    async def commit(self) -> None:
        if self._session is None:
            raise RuntimeError("commit outside an open unit of work")
        await self._session.commit()

    async def rollback(self) -> None:
        if self._session is not None:
            await self._session.rollback()

    async def _end(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            # Shielded: a request cancelled mid-way (a client leaving a stream) still returns its connection.
            await asyncio.shield(session.close())


class SqlAlchemyUnitOfWorkFactory(UnitOfWorkFactory):
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory

    def __call__(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self._session_factory)
