"""Building the async engine and the session factory. Nothing here runs at import time."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 5_000


def is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database or url.query.get("mode") == "memory"


def create_engine(
    url: str | URL,
    *,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_timeout: float = 30.0,
    pool_recycle: int = 1800,
    pool_pre_ping: bool = True,
    connect_timeout: float | None = None,
    echo: bool = False,
) -> AsyncEngine:
    """An ``AsyncEngine`` for PostgreSQL (asyncpg) or SQLite (aiosqlite).

    SQLite connections get foreign keys switched on (cascades depend on it), a busy timeout so that
    writers wait for each other instead of failing at once, and WAL journaling for file databases so that
    readers never block the writer. Pool settings do not apply to in-memory SQLite (one shared connection).
    ``connect_timeout`` bounds a PostgreSQL connection attempt, so an unreachable server fails requests fast.
    """
    url = make_url(url)
    options: dict[str, Any] = {"echo": echo}
    if connect_timeout is not None and url.get_backend_name() == "postgresql":
        options["connect_args"] = {"timeout": connect_timeout}
    if not (url.get_backend_name() == "sqlite" and is_sqlite_memory(url)):
        options.update(
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            pool_recycle=pool_recycle,
            pool_pre_ping=pool_pre_ping,
        )
    engine = create_async_engine(url, **options)
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine, wal=not is_sqlite_memory(url))
    return engine


def _configure_sqlite(engine: AsyncEngine, *, wal: bool) -> None:
    """Pragmas on every new connection.

    The driver's own transaction control is kept on purpose: it begins a transaction at the first write,
    not at the first read, which behaves like PostgreSQL's READ COMMITTED. Emitting BEGIN ourselves would
    make a transaction that read, then writes after another commit, fail at once with "database is locked".
    """
    pragmas = ["PRAGMA foreign_keys=ON", f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}"]
    if wal:
        pragmas.append("PRAGMA journal_mode=WAL")

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions keep values after commit; repositories hand out plain dataclasses anyway, never ORM rows."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
