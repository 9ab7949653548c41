"""Readiness: can this instance serve? The database answers, its schema is at the code's migration head, Redis
answers (when configured), and the data directory has disk space left.

Fast and side-effect free: the checks run concurrently, each under a timeout, and never migrate anything. The
expected head is read from the migration scripts once, at the first check.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.db.engine import is_sqlite_memory
from infrastructure.db.schema_version import database_revision, expected_head

MIB = 1024 * 1024


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str
    duration_ms: float


class CheckFailed(Exception):
    """A check's answer is "not ready", with a reason fit for an operator (never a secret)."""


def data_directory(database_url: str, configured: Path | None) -> Path:
    """The directory whose disk space matters: the configured one, else the SQLite file's, else the working one."""
    if configured is not None:
        return configured
    if database_url.startswith("sqlite"):
        url = make_url(database_url)
        if not is_sqlite_memory(url) and url.database:
            return Path(url.database).resolve().parent
    return Path(".").resolve()


class Readiness:
    def __init__(
        self,
        *,
        engine: AsyncEngine | None,
        redis_url: str | None = None,
        disk_path: Path = Path("."),
        min_free_bytes: int = 0,
        timeout_seconds: float = 2.0,
        expected_revision: str | None = None,
    ) -> None:
        self._engine = engine
        self._redis_url = redis_url
        self._redis: Any = None
        self._disk_path = disk_path
        self._min_free_bytes = min_free_bytes
        self._timeout = timeout_seconds
        self._expected = expected_revision  # read from the scripts at the first check, then kept

    async def check(self) -> dict[str, CheckResult]:
        checks: dict[str, Callable[[], Awaitable[str]]] = {"database": self._database}
        if self._engine is not None:
            checks["migrations"] = self._migrations
        if self._redis_url:
            checks["redis"] = self._redis_ping
        if self._min_free_bytes > 0:
            checks["disk"] = self._disk
        results = await asyncio.gather(*(self._run(check) for check in checks.values()))
        return dict(zip(checks, results, strict=True))

    async def _run(self, check: Callable[[], Awaitable[str]]) -> CheckResult:
        started = time.perf_counter()
        try:
            detail = await asyncio.wait_for(check(), self._timeout)
            ok = True
        except CheckFailed as exc:
            ok, detail = False, str(exc)
        except TimeoutError:
            ok, detail = False, f"no answer within {self._timeout:g} s"
        except Exception as exc:  # any failure means not ready; the class says enough, the message may hold a host
            ok, detail = False, f"unreachable ({type(exc).__name__})"
        return CheckResult(ok=ok, detail=detail, duration_ms=round((time.perf_counter() - started) * 1000, 2))

    async def _database(self) -> str:
        if self._engine is None:
            return "in-memory storage"
        async with self._engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")
        return "reachable"

    async def _migrations(self) -> str:
        assert self._engine is not None
        if self._expected is None:
            self._expected = await asyncio.to_thread(expected_head)
        revision = await database_revision(self._engine)
        if revision != self._expected:
            raise CheckFailed(f"database at revision {revision or 'none'}, code expects {self._expected}")
        return f"at head {revision}"

    async def _redis_ping(self) -> str:
        if self._redis is None:
            from redis.asyncio import Redis

            assert self._redis_url is not None  # the check runs only when Redis is configured
            self._redis = Redis.from_url(
                self._redis_url, socket_connect_timeout=self._timeout, socket_timeout=self._timeout
            )
        await self._redis.ping()
        return "reachable"

    async def _disk(self) -> str:
        free = shutil.disk_usage(self._disk_path).free
        if free < self._min_free_bytes:
            raise CheckFailed(f"{free // MIB} MiB free, below {self._min_free_bytes // MIB} MiB")
        return f"{free // MIB} MiB free"

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
