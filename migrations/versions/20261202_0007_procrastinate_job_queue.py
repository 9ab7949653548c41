"""The durable job queue's schema: procrastinate's tables, types and functions (PostgreSQL only).

Taken from the installed procrastinate (``SchemaManager.get_schema``) at upgrade time; a later procrastinate that
changes its schema comes with its own SQL migrations, to be wrapped in a revision of ours like this one. SQLite
(the embedded default) runs jobs in process and needs nothing.

Revision ID: 0007_procrastinate_job_queue
Revises: 0006_files_api_blobs
Create Date: 2026-12-01 00:00:01+00:00
"""

from collections.abc import Sequence

from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.util import await_only

revision: str = "0007_procrastinate_job_queue"
down_revision: str | Sequence[str] | None = "0006_files_api_blobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROP = r"""
DO $$
DECLARE item record;
BEGIN
    FOR item IN SELECT tablename FROM pg_tables
                WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate\_%' LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', item.tablename);
    END LOOP;
    FOR item IN SELECT p.oid::regprocedure AS signature FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\_%' LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', item.signature);
    END LOOP;
    FOR item IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\_%' AND t.typtype IN ('c', 'e')
    LOOP
        EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', item.typname);
    END LOOP;
END $$;
"""


def _script(sql: str) -> None:
    """A script of many statements, run as one (asyncpg prepares a statement per call, one command each)."""
    bind = op.get_bind()
    if bind.dialect.driver == "asyncpg":
        await_only(bind.connection.driver_connection.execute(sql))
    else:
        bind.exec_driver_sql(sql.replace("%", "%%"))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _script(SchemaManager.get_schema())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _script(_DROP)
