"""Migrations and table metadata never drift, and every revision can go down and up again."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from infrastructure.db.migrate import (
    alembic_config,
    current_head,
    current_revision,
    downgrade,
    upgrade,
    upgrade_to_head,
)
from infrastructure.db.schema_version import database_revision, expected_head
from infrastructure.db.tables import include_name, metadata

pytestmark = pytest.mark.integration

BACKENDS = ["sqlite", "postgres"]
DatabaseFactory = Callable[..., AbstractAsyncContextManager[str]]


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": include_name})
    return list(compare_metadata(context, metadata))


async def _schema_diff(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_diff)
    finally:
        await engine.dispose()


async def _table_names(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
def migrated_url(request: pytest.FixtureRequest) -> str:
    """The session's migrated database on each backend (fixtures looked up from a sync fixture)."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture(params=BACKENDS)
def database_factory(request: pytest.FixtureRequest) -> DatabaseFactory:
    factory: DatabaseFactory = request.getfixturevalue(f"{request.param}_database_factory")
    return factory


async def test_migrated_schema_matches_the_table_metadata(migrated_url: str) -> None:
    url = migrated_url
    assert await _schema_diff(url) == []
    assert await current_revision(url) == current_head()


async def test_current_revision_through_the_application_engine(sqlite_engine: AsyncEngine) -> None:
    assert await current_revision(sqlite_engine) == current_head()
    async with sqlite_engine.connect() as connection:  # the engine was borrowed, not disposed
        assert (await connection.exec_driver_sql("SELECT 1")).scalar_one() == 1


async def test_stairway_each_revision_goes_up_down_and_up(database_factory: DatabaseFactory) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    revisions = list(reversed(list(script.walk_revisions("base", "heads"))))
    assert revisions, "no migrations found"
    async with database_factory(migrate=False) as url:
        assert await current_revision(url) is None
        for revision in revisions:
            await upgrade(url, revision.revision)
            await downgrade(url, revision.down_revision or "base")  # type: ignore[arg-type]
            await upgrade(url, revision.revision)
            assert await current_revision(url) == revision.revision
        assert await _schema_diff(url) == []
        await downgrade(url, "base")
        assert await _table_names(url) <= {"alembic_version"}
        await upgrade_to_head(url)
        assert await current_revision(url) == current_head()


def test_there_is_a_single_head() -> None:
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


def test_the_readiness_check_reads_the_same_head_as_alembic_without_loading_it() -> None:
    assert expected_head() == current_head()


async def test_the_readiness_check_reads_the_same_revision_as_alembic(database_factory: DatabaseFactory) -> None:
    async with database_factory(migrate=False) as url:
        engine = create_async_engine(url)
        try:
            assert await database_revision(engine) is None  # never migrated: no alembic_version table
            await upgrade(url, "0001")
            assert await database_revision(engine) == await current_revision(url) == "0001"
            await upgrade_to_head(url)
            assert await database_revision(engine) == current_head()
        finally:
            await engine.dispose()
