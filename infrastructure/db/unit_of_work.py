"""The SQLAlchemy unit of work: one ``AsyncSession`` (one transaction) per ``async with`` block."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from application.unit_of_work import UnitOfWork, UnitOfWorkFactory
from domain.audit.model import AuditEntry
from infrastructure.db.repositories.audit import SqlAlchemyAuditLog
from infrastructure.db.repositories.auth import (
    SqlAlchemyApiKeyRepository,
    SqlAlchemyRefreshTokenRepository,
    SqlAlchemyUserRepository,
)
from infrastructure.db.repositories.chat import SqlAlchemyConversationRepository

AuditListener = Callable[[Sequence[AuditEntry]], None]


class SqlAlchemyUnitOfWork(UnitOfWork):
    """``on_audit`` hears of the audit entries of each commit, after it succeeded (the security log)."""

    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], on_audit: AuditListener | None = None
    ) -> None:
        self._session_factory = session_factory
        self._session: AsyncSession | None = None
        self._on_audit = on_audit

    async def _begin(self) -> None:
        if self._session is not None:
            raise RuntimeError("this unit of work is already open")
        session = self._session_factory()
        self._session = session
        self.users = SqlAlchemyUserRepository(session)
        self.api_keys = SqlAlchemyApiKeyRepository(session)
        self.refresh_tokens = SqlAlchemyRefreshTokenRepository(session)
        self.conversations = SqlAlchemyConversationRepository(session)
        self._audit = SqlAlchemyAuditLog(session)
        self.audit_log = self._audit

    async def commit(self) -> None:
        if self._session is None:
            raise RuntimeError("commit outside an open unit of work")
        await self._session.commit()
        entries, self._audit.added = self._audit.added, []
        if entries and self._on_audit is not None:
            self._on_audit(entries)

    async def rollback(self) -> None:
        if self._session is not None:
            await self._session.rollback()

    async def _end(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            # Shielded: a request cancelled mid-way (a client leaving a stream) still returns its connection.
            await asyncio.shield(session.close())


class SqlAlchemyUnitOfWorkFactory(UnitOfWorkFactory):
    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], *, on_audit: AuditListener | None = None
    ) -> None:
        self._session_factory = session_factory
        self._on_audit = on_audit

    def __call__(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self._session_factory, self._on_audit)
