"""Vector stores and the files attached to them (their chunks live in the vector index's own tables).

Revision ID: 0012_vector_stores
Revises: 0011_vector_chunks
Create Date: 2026-12-07 00:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_vector_stores"
down_revision: str | Sequence[str] | None = "0011_vector_chunks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vector_stores",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("embedding_model", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=512), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("expires_after_days", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_active_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_vector_stores_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vector_stores")),
    )
    op.create_index(
        op.f("ix_vector_stores_owner_id_created_at_id"), "vector_stores", ["owner_id", "created_at", "id"]
    )
    op.create_table(
        "vector_store_files",
        sa.Column("store_id", sa.Uuid(), nullable=False),
        sa.Column("file_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("max_chunk_size_tokens", sa.Integer(), nullable=False),
        sa.Column("chunk_overlap_tokens", sa.Integer(), nullable=False),
        sa.Column("static_chunking", sa.Boolean(), nullable=False),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("usage_bytes", sa.BigInteger(), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["vector_stores.id"],
            name=op.f("fk_vector_store_files_store_id_vector_stores"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("store_id", "file_id", name=op.f("pk_vector_store_files")),
    )
    op.create_index(
        op.f("ix_vector_store_files_store_id_created_at_file_id"),
        "vector_store_files",
        ["store_id", "created_at", "file_id"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_vector_store_files_store_id_created_at_file_id"), table_name="vector_store_files")
    op.drop_table("vector_store_files")
    op.drop_index(op.f("ix_vector_stores_owner_id_created_at_id"), table_name="vector_stores")
    op.drop_table("vector_stores")
