"""Prompt caching on the usage ledger: cache-write tokens and the money cache reads saved, per record.

``cached_tokens`` keeps its meaning (prompt-cache reads); both new columns default to 0 for the existing rows,
which were billed without cache prices.

Revision ID: 0008_usage_prompt_cache
Revises: 0007_procrastinate_job_queue
Create Date: 2026-12-07 00:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_usage_prompt_cache"
down_revision: str | Sequence[str] | None = "0007_procrastinate_job_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("cache_write_tokens", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("cache_savings_micros", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("cache_savings_micros")
        batch.drop_column("cache_write_tokens")
