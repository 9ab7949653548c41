"""Where the benchmarked Switchboard keeps its data: a throwaway PostgreSQL database and Redis when reachable, else
the embedded defaults (a SQLite file, in-process limits); and how many usage records it has written."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
from redis import Redis
from redis.exceptions import RedisError

POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES", os.environ.get("SWITCHBOARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
)
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
# Preferred names for the table of usage records, most specific first; any other table named like "usage" is next.
USAGE_TABLE_NAMES = ("usage_records", "usage_events", "usage_entries", "usage")


@dataclass
class Storage:
    kind: str
    """``postgresql`` or ``sqlite``."""
    database_url: str
    """The SQLAlchemy URL handed to Switchboard."""
    redis_url: str | None = None
    redis_prefix: str = field(default_factory=lambda: f"sb-bench-{uuid.uuid4().hex[:8]}:")
    """The run's own Redis key prefix: benchmarks sharing a Redis must not share the usage stream."""
    notes: list[str] = field(default_factory=list)
    _database: str | None = None
    _sqlite_path: Path | None = None

    def describe(self) -> str:
        where = "PostgreSQL" if self.kind == "postgresql" else "SQLite (embedded default)"
        redis = "Redis" if self.redis_url else "no Redis (in-process limits)"
        return f"{where} + {redis}"

    # ---- usage records ---------------------------------------------------------------------------------------------

    def usage_table(self) -> str | None:
        """The table of usage records, if this build has one."""
        names = self._tables_like("%usage%")
        for preferred in USAGE_TABLE_NAMES:
            if preferred in names:
                return preferred
        return sorted(names)[0] if names else None

    def count_rows(self, table: str) -> int:
        if self._sqlite_path is not None:
            with contextlib.closing(sqlite3.connect(self._sqlite_path, timeout=10)) as connection:
                row = connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()
                return int(row[0])
        return asyncio.run(_fetchval(self._dsn(), f'SELECT count(*) FROM "{table}"'))

    def _tables_like(self, pattern: str) -> list[str]:
        if self._sqlite_path is not None:
            with contextlib.closing(sqlite3.connect(self._sqlite_path, timeout=10)) as connection:
                query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?"
                return [row[0] for row in connection.execute(query, (pattern,))]
        query = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name LIKE $1"
        return [str(name) for name in asyncio.run(_fetchcol(self._dsn(), query, pattern))]

    def _dsn(self) -> str:
        assert self._database is not None
        return _with_database(POSTGRES_ADMIN_URL, self._database)

    # ---- lifecycle -------------------------------------------------------------------------------------------------

    def drop(self) -> None:
        if self.redis_url is not None:
            with contextlib.suppress(OSError, RedisError):
                client = Redis.from_url(self.redis_url)
                keys = list(client.scan_iter(match=f"{self.redis_prefix}*", count=1000))
                for start in range(0, len(keys), 500):
                    client.delete(*keys[start : start + 500])
                client.close()
        if self._database is not None:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{self._database}" WITH (FORCE)'))
            self._database = None


def open_storage(workdir: Path, *, want_postgres: bool = True, want_redis: bool = True) -> Storage:
    """A fresh database (PostgreSQL ``sb_bench_<random>`` if reachable, else a SQLite file in ``workdir``)."""
    notes = []
    storage: Storage | None = None
    if want_postgres:
        try:
            name = f"sb_bench_{uuid.uuid4().hex[:12]}"
            asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
            url = _with_database(POSTGRES_ADMIN_URL, name).replace("postgresql://", "postgresql+asyncpg://", 1)
            storage = Storage("postgresql", url, _database=name)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            notes.append(f"PostgreSQL at {_redacted(POSTGRES_ADMIN_URL)} unavailable ({type(exc).__name__})")
    if storage is None:
        path = workdir / "switchboard.db"
        storage = Storage("sqlite", f"sqlite+aiosqlite:///{path}", _sqlite_path=path)
    if want_redis:
        if redis_reachable(REDIS_URL):
            storage.redis_url = REDIS_URL
        else:
            notes.append(f"Redis at {REDIS_URL} unreachable")
    storage.notes.extend(notes)
    return storage


def redis_reachable(url: str, timeout: float = 2.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path="/" + database).geturl()


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=3)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _fetchval(dsn: str, query: str) -> int:
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        return int(await connection.fetchval(query))
    finally:
        await connection.close()


async def _fetchcol(dsn: str, query: str, *args: object) -> list[object]:
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        return [row[0] for row in await connection.fetch(query, *args)]
    finally:
        await connection.close()
