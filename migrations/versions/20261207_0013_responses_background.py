"""Background responses (``background: true``): the call a job is to make, and its runner's heartbeat; and the
prompt-cache writes of a response's usage.

``background`` is false for every existing response; ``call``, ``heartbeat_at`` and ``stream_marks`` (the text
of a background response beat by beat, for its stream) are null outside background responses. The index on
``status`` finds the few responses not yet finished. ``cache_write_tokens`` (prompt-cache writes, 0 for the
existing rows) completes the usage a response shows.

Revision ID: 0013_responses_background
Revises: 0008_usage_prompt_cache
Create Date: 2026-12-07 00:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_responses_background"
down_revision: str | Sequence[str] | None = "0014_conversation_vector_stores"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.add_column(sa.Column("background", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("call", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("cache_write_tokens", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("stream_marks", sa.JSON(), nullable=True))
        batch.create_index(batch.f("ix_responses_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.drop_index(batch.f("ix_responses_status"))
        batch.drop_column("stream_marks")
        batch.drop_column("cache_write_tokens")
        batch.drop_column("heartbeat_at")
        batch.drop_column("call")
        batch.drop_column("background")
