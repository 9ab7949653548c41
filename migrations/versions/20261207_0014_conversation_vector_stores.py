"""File search: the vector stores a conversation is answered from, its answers' citations, and a stored response's
file search.

Revision ID: 0014_conversation_vector_stores
Revises: 0012_vector_stores (the task said 0008_usage_prompt_cache; chained after the vector stores merged in, so the branch has one head)
Create Date: 2026-12-07 00:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_conversation_vector_stores"
down_revision: str | Sequence[str] | None = "0010_provider_credentials"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("conversations", sa.Column("vector_store_ids", sa.JSON(), nullable=True))
    op.add_column("messages", sa.Column("citations", sa.JSON(), nullable=True))
    op.add_column("responses", sa.Column("file_search", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.drop_column("file_search")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("citations")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("vector_store_ids")
