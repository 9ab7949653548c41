"""Readiness per check: database, migrations at head, Redis when configured, disk space; 503 when one fails."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from infrastructure.db.migrate import current_revision, upgrade
from tests.api.conftest import make_settings, running_api

pytestmark = pytest.mark.integration
DatabaseFactory = Callable[..., AbstractAsyncContextManager[str]]


async def _ready(**settings: Any) -> tuple[int, dict[str, Any]]:
    async with running_api(make_settings(**settings)) as api:
        response = await api.http.get("/health/ready")
        return response.status_code, response.json()


def _redis_is_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


async def test_ready_when_every_check_passes(sqlite_url: str) -> None:
    status, body = await _ready(database_url=sqlite_url)
    assert status == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "migrations", "disk"}
    assert all(check["status"] == "ok" for check in body["checks"].values())
    assert body["checks"]["migrations"]["detail"].startswith("at head")
    assert body["checks"]["disk"]["detail"].endswith("MiB free")
    assert all(check["duration_ms"] >= 0 for check in body["checks"].values())


async def test_not_ready_while_migrations_are_behind_and_readiness_does_not_migrate(
    sqlite_database_factory: DatabaseFactory,
) -> None:
    async with sqlite_database_factory(migrate=False) as url:
        status, body = await _ready(database_url=url)
        assert status == 503
        assert body["checks"]["database"]["status"] == "ok"
        assert body["checks"]["migrations"]["status"] == "fail"
        assert "revision none" in body["checks"]["migrations"]["detail"]
        await upgrade(url, "0001")
        status, body = await _ready(database_url=url)
        assert status == 503
        assert "revision 0001" in body["checks"]["migrations"]["detail"]
        assert await current_revision(url) == "0001"  # the probe changed nothing


async def test_not_ready_when_the_database_is_unreachable_fast() -> None:
    started = time.monotonic()
    status, body = await _ready(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    assert status == 503
    assert body["checks"]["database"]["status"] == "fail"
    assert body["checks"]["migrations"]["status"] == "fail"
    assert "127.0.0.1" not in str(body)  # reasons name no host
    assert time.monotonic() - started < 10


async def test_not_ready_below_the_disk_threshold() -> None:
    status, body = await _ready(disk_min_free_mb=1_000_000_000)
    assert status == 503
    assert body["checks"]["disk"]["status"] == "fail"
    assert "below" in body["checks"]["disk"]["detail"]
    assert body["checks"]["database"]["status"] == "ok"  # in-memory storage
    status, body = await _ready(disk_min_free_mb=0)
    assert status == 200
    assert "disk" not in body["checks"]


async def test_redis_is_checked_only_when_configured(silent_port: int) -> None:
    status, body = await _ready(redis_url="redis://127.0.0.1:1/0")
    assert status == 503
    assert body["checks"]["redis"]["status"] == "fail"
    started = time.monotonic()
    status, body = await _ready(redis_url=f"redis://127.0.0.1:{silent_port}/0", readiness_timeout_seconds=0.3)
    assert status == 503
    assert body["checks"]["redis"]["detail"] == "no answer within 0.3 s"
    assert time.monotonic() - started < 5
    if _redis_is_up():
        status, body = await _ready(redis_url="redis://127.0.0.1:6379/0")
        assert status == 200, body
        assert body["checks"]["redis"]["status"] == "ok"
