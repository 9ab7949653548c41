"""Provider keys users bring (encrypted at rest), and whose key paid on each usage record.

``provider_credentials`` holds one row per user and provider: the secret sealed with AES-256-GCM under a
key-encryption key from the settings (``key_id`` names it; the nonce travels with the ciphertext) and a masked
hint; never the secret. ``usage_records.key_owner`` is ``operator`` for every existing row (they were all made with
the operator's keys).

Revision ID: 0010_provider_credentials
Revises: 0008_usage_prompt_cache
Create Date: 2026-12-07 18:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_provider_credentials"
down_revision: str | Sequence[str] | None = "0012_vector_stores"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_credentials",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("hint", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_provider_credentials_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_credentials")),
        sa.UniqueConstraint("user_id", "provider", name=op.f("uq_provider_credentials_user_id_provider")),
    )
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("key_owner", sa.String(16), nullable=False, server_default="operator"))


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("key_owner")
    op.drop_table("provider_credentials")
