"""Usage ledger; budgets and rate-limit overrides on users and API keys.

Revision ID: 0002_usage_budgets_limits
Revises: 0001
Create Date: 2025-01-01 00:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_usage_budgets_limits"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIMIT_COLUMNS = ("monthly_budget_micros", "requests_per_minute", "tokens_per_minute")


def _limit_columns() -> list[sa.Column[int]]:
    return [
        sa.Column("monthly_budget_micros", sa.BigInteger(), nullable=True),
        sa.Column("requests_per_minute", sa.Integer(), nullable=True),
        sa.Column("tokens_per_minute", sa.Integer(), nullable=True),
    ]


def upgrade() -> None:
    for table in ("users", "api_keys"):
        with op.batch_alter_table(table) as batch:
            for column in _limit_columns():
                batch.add_column(column)
    op.create_table(
        "usage_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("conversation_id", sa.Uuid(), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("served_model", sa.String(length=200), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("upstream_model", sa.String(length=200), nullable=True),
        sa.Column("variant", sa.String(length=64), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cached_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("ttft_ms", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("streamed", sa.Boolean(), nullable=False),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_records")),
    )
    op.create_index(op.f("ix_usage_records_user_id_created_at"), "usage_records", ["user_id", "created_at"])
    op.create_index(op.f("ix_usage_records_api_key_id_created_at"), "usage_records", ["api_key_id", "created_at"])
    op.create_index(op.f("ix_usage_records_created_at"), "usage_records", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_usage_records_created_at"), table_name="usage_records")
    op.drop_index(op.f("ix_usage_records_api_key_id_created_at"), table_name="usage_records")
    op.drop_index(op.f("ix_usage_records_user_id_created_at"), table_name="usage_records")
    op.drop_table("usage_records")
    for table in ("api_keys", "users"):
        with op.batch_alter_table(table) as batch:
            for name in reversed(LIMIT_COLUMNS):
                batch.drop_column(name)
