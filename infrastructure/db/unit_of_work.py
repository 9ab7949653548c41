"""The SQLAlchemy unit of work: one ``AsyncSession`` (one transaction) per ``async with`` block.

A database that cannot be reached (refused or dropped connections, timeouts, an exhausted pool) surfaces as the
domain's ``ServiceUnavailable``, never as a driver exception: the client gets a 503 with ``Retry-After`` and the
pool replaces dead connections once the database is back, without a restart (``infrastructure.db.engine``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from types import TracebackType

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from application.unit_of_work import UnitOfWork, UnitOfWorkFactory
from domain.audit.model import AuditEntry
from domain.shared.errors import ServiceUnavailable
from infrastructure.db.repositories.audit import SqlAlchemyAuditLog
from infrastructure.db.repositories.auth import (
    SqlAlchemyApiKeyRepository,
    SqlAlchemyRefreshTokenRepository,
    SqlAlchemyUserRepository,
)
from infrastructure.db.repositories.batches import SqlAlchemyBatchRepository
from infrastructure.db.repositories.chat import SqlAlchemyConversationRepository
from infrastructure.db.repositories.credentials import SqlAlchemyProviderCredentialRepository
from infrastructure.db.repositories.files import SqlAlchemyFileRepository
from infrastructure.db.repositories.idempotency import SqlAlchemyIdempotencyRepository
from infrastructure.db.repositories.responses import SqlAlchemyResponseRepository
from infrastructure.db.repositories.usage import SqlAlchemyUsageRepository
from infrastructure.db.repositories.vector_stores import (
    SqlAlchemyVectorStoreFileBatchRepository,
    SqlAlchemyVectorStoreFileRepository,
    SqlAlchemyVectorStoreRepository,
)
from infrastructure.jobs.in_process import InProcessJobQueue, PendingJobs
from infrastructure.jobs.outbox import ProcrastinateJobOutbox

logger = logging.getLogger(__name__)
DATABASE_UNAVAILABLE = "the database is unavailable; try again shortly"
RETRY_AFTER_SECONDS = 2.0
# Connection-level failures: OSError covers refused connections and TimeoutError a connect that timed out (asyncpg
# raises both unwrapped); OperationalError and InterfaceError are what SQLAlchemy makes of a connection lost mid-way
# (and of SQLite's "database is locked"); sqlalchemy.exc.TimeoutError is an exhausted pool.
_UNAVAILABLE = (OSError, TimeoutError, sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, _UNAVAILABLE)


AuditListener = Callable[[Sequence[AuditEntry]], None]


class SqlAlchemyUnitOfWork(UnitOfWork):
    """``on_audit`` hears of the audit entries of each commit, after it succeeded (the security log). Jobs go to
    procrastinate's table in the same transaction on PostgreSQL, and to ``job_queue`` after the commit elsewhere."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        on_audit: AuditListener | None = None,
        job_queue: InProcessJobQueue | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._session: AsyncSession | None = None
        self._on_audit = on_audit
        self._job_queue = job_queue
        self._pending: PendingJobs | None = None

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
        self.idempotency = SqlAlchemyIdempotencyRepository(session)
        self.responses = SqlAlchemyResponseRepository(session)
        self.files = SqlAlchemyFileRepository(session)
        self.vector_stores = SqlAlchemyVectorStoreRepository(session)
        self.vector_store_files = SqlAlchemyVectorStoreFileRepository(session)
        self.vector_store_file_batches = SqlAlchemyVectorStoreFileBatchRepository(session)
        self.batches = SqlAlchemyBatchRepository(session)
        self.provider_credentials = SqlAlchemyProviderCredentialRepository(session)
        self._audit = SqlAlchemyAuditLog(session)
        self.audit_log = self._audit
        if session.get_bind().dialect.name == "postgresql":
            self.jobs = ProcrastinateJobOutbox(session)
        else:
            self._pending = self.jobs = PendingJobs(self._job_queue)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await super().__aexit__(exc_type, exc, tb)
        except Exception as cleanup_error:
            if not is_unavailable(cleanup_error):
                raise
            if exc is None:
                raise ServiceUnavailable(DATABASE_UNAVAILABLE, retry_after_seconds=RETRY_AFTER_SECONDS) from None
            logger.debug("rollback on a lost connection failed", exc_info=cleanup_error)
        if exc is not None and is_unavailable(exc):
            logger.warning("database unavailable: %s", type(exc).__name__)
            raise ServiceUnavailable(DATABASE_UNAVAILABLE, retry_after_seconds=RETRY_AFTER_SECONDS) from exc

    async def commit(self) -> None:
        if self._session is None:
            raise RuntimeError("commit outside an open unit of work")
        await self._session.commit()
        if self._pending is not None:
            self._pending.publish()
        entries, self._audit.added = self._audit.added, []
        if entries and self._on_audit is not None:
            self._on_audit(entries)

    async def rollback(self) -> None:
        if self._pending is not None:
            self._pending.discard()
        if self._session is not None:
            await self._session.rollback()

    async def _end(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            # Shielded: a request cancelled mid-way (a client leaving a stream) still returns its connection.
            await asyncio.shield(session.close())


class SqlAlchemyUnitOfWorkFactory(UnitOfWorkFactory):
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        on_audit: AuditListener | None = None,
        job_queue: InProcessJobQueue | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._on_audit = on_audit
        self.job_queue = job_queue
        self._statement_sessions = _autocommit_sessions(session_factory)

    def __call__(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self._session_factory, self._on_audit, self.job_queue)

    def for_one_statement(self) -> SqlAlchemyUnitOfWork:
        """On PostgreSQL, a session in autocommit: no BEGIN before the statement, no COMMIT or ROLLBACK after it
        (asyncpg sends none outside a transaction), so a single statement is one round trip."""
        if self._statement_sessions is None:
            return self()
        return SqlAlchemyUnitOfWork(self._statement_sessions, self._on_audit, self.job_queue)


def _autocommit_sessions(
    session_factory: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession] | None:
    """The same sessions on an autocommit view of the engine (same pool), for PostgreSQL engines only: SQLite's
    driver already starts no transaction for a read, and a session bound to one connection (tests) keeps it."""
    bind = session_factory.kw.get("bind")
    if not isinstance(bind, AsyncEngine) or bind.dialect.name != "postgresql":
        return None
    options = {name: value for name, value in session_factory.kw.items() if name != "bind"}
    return async_sessionmaker(bind.execution_options(isolation_level="AUTOCOMMIT"), **options)
