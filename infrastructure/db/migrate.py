"""Alembic's command API for the CLI and the health check, usable from inside a running event loop.

Alembic is synchronous; its commands run through ``AsyncConnection.run_sync`` on a connection made here, which
``migrations/env.py`` picks up from ``config.attributes`` instead of making an engine (and a loop) of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from infrastructure.db.paths import MIGRATIONS_DIR


def alembic_config(url: str | None = None) -> Config:
    """A config pointing at the packaged migrations, independent of the working directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def current_head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


async def upgrade_to_head(url: str) -> None:
    await upgrade(url, "head")


async def upgrade(url: str, revision: str) -> None:
    await _run(url, lambda config: command.upgrade(config, revision))


async def downgrade(url: str, revision: str) -> None:
    await _run(url, lambda config: command.downgrade(config, revision))


async def current_revision(database: str | AsyncEngine) -> str | None:
    """The revision the database is at; ``None`` for a database never migrated.

    Given the application's engine (the health check) it borrows a pooled connection; given a URL it
    connects just for this.
    """
    engine = _migration_engine(database) if isinstance(database, str) else database
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_revision_of)
    finally:
        if isinstance(database, str):
            await engine.dispose()


def _revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _migration_engine(url: str) -> AsyncEngine:
    # Deliberately not ``engine.create_engine``: no pooled connections, and no SQLite foreign keys (batch-mode
    # table copies would cascade deletes when they drop the old table).
    return create_async_engine(url, poolclass=pool.NullPool)


async def _run(url: str, operation: Callable[[Config], None]) -> None:
    engine = _migration_engine(url)
    try:
        async with engine.connect() as connection:

            def run(sync: Connection) -> None:
                config = alembic_config(url)
                config.attributes["connection"] = sync
                operation(config)

            await connection.run_sync(run)
            await connection.commit()
    finally:
        await engine.dispose()
