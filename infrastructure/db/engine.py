"""Building the async engine and the session factory. Nothing here runs at import time."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 5_000
# A pooled connection idle for longer is pinged before use (one round trip); a busy one is not. SQLAlchemy's
# pool_pre_ping pings on every checkout: a round trip and a fifth of the CPU of a conversation message's queries.
PING_IDLE_AFTER_SECONDS = 10.0


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
    ping_idle_after: float | None = PING_IDLE_AFTER_SECONDS,
    connect_timeout: float | None = None,
    echo: bool = False,
) -> AsyncEngine:
    """An ``AsyncEngine`` for PostgreSQL (asyncpg) or SQLite (aiosqlite).

    SQLite connections get foreign keys switched on (cascades depend on it), a busy timeout so that
    writers wait for each other instead of failing at once, and WAL journaling for file databases so that
    readers never block the writer. Pool settings do not apply to in-memory SQLite (one shared connection).
    ``connect_timeout`` bounds a PostgreSQL connection attempt, so an unreachable server fails requests fast.

    Dead connections: at checkout, one the server closed (a restart, a reset: the driver has seen it) is replaced
    at no cost, and one idle for ``ping_idle_after`` seconds is pinged and replaced if the ping fails; a connection
    that dies silently while busy fails its request (503), and SQLAlchemy then invalidates every connection of the
    pool opened before. The service recovers from a database restart without one itself.
    """
    url = make_url(url)
    # Statement parameters are prompts, answers, emails and key hashes: never in an error's text or an echoed log.
    options: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if connect_timeout is not None and url.get_backend_name() == "postgresql":
        options["connect_args"] = {"timeout": connect_timeout}
    if not (url.get_backend_name() == "sqlite" and is_sqlite_memory(url)):
        options.update(
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            pool_recycle=pool_recycle,
        )
    engine = create_async_engine(url, **options)
    if ping_idle_after is not None and not is_sqlite_memory(url):
        _ping_idle_connections(engine, ping_idle_after)
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine, wal=not is_sqlite_memory(url))
    return engine


def _ping_idle_connections(engine: AsyncEngine, idle_seconds: float) -> None:
    """SQLAlchemy's recipe for pessimistic disconnect handling, limited to connections that sat idle: raising
    ``DisconnectionError`` at checkout makes the pool discard the connection and hand out a fresh one."""
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if _closed_by_peer(dbapi_connection):  # a restart or a reset: the driver already knows, no round trip
            raise DisconnectionError("a pooled connection was closed by the server")
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("a pooled connection died while idle") from exc


def _closed_by_peer(dbapi_connection: Any) -> bool:
    """Whether asyncpg has seen the server close this connection (its protocol noticed the FIN or RST)."""
    is_closed = getattr(getattr(dbapi_connection, "_connection", None), "is_closed", None)
    return bool(is_closed()) if callable(is_closed) else False


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
