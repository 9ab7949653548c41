"""The vector index: chunks of files in vector stores with their embeddings, and a full-text index beside them.

PostgreSQL (when the server offers the ``vector`` extension, i.e. ``vector`` is in ``pg_available_extensions``):
``CREATE EXTENSION vector`` and ``vector_chunks`` with an untyped ``vector`` column, its ``dimensions``, a
generated ``tsvector`` under a GIN index, and one partial HNSW index (cosine) per common embedding size over the
column cast to that size: pgvector can only index vectors of one declared size. A server without pgvector gets
nothing here (the migration must still pass there): the pgvector adapter then refuses vector operations with
``vector_index_unavailable``. Installing pgvector later means creating this schema then (the README says how).

SQLite: ``vector_chunks`` with the embedding as a float32 blob, an external-content FTS5 table kept in step by
triggers, and a per-store generation the embedded adapter uses to know when its in-memory copy is stale.

These tables are not in the SQLAlchemy metadata (their types are the database's own); ``include_name`` skips them.

Revision ID: 0011_vector_chunks
Revises: 0008_usage_prompt_cache
Create Date: 2026-12-07 00:00:11+00:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0011_vector_chunks"
down_revision: str | Sequence[str] | None = "0008_usage_prompt_cache"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Embedding sizes with an HNSW index (others are searched exactly). pgvector indexes ``vector`` up to 2,000
# dimensions, so 3,072 (text-embedding-3-large) is indexed as ``halfvec`` (16-bit floats, up to 4,000).
HNSW_DIMENSIONS = (256, 384, 512, 768, 1024, 1536)
HALFVEC_DIMENSIONS = (3072,)
HNSW_OPTIONS = "WITH (m = 16, ef_construction = 64)"

_POSTGRES_TABLE = """
CREATE TABLE vector_chunks (
    id uuid PRIMARY KEY,
    owner_id uuid NOT NULL,
    store_id uuid NOT NULL,
    file_id uuid NOT NULL,
    position integer NOT NULL,
    text text NOT NULL,
    token_count integer NOT NULL,
    filename text NOT NULL,
    attributes jsonb NOT NULL,
    dimensions integer NOT NULL,
    embedding vector NOT NULL,
    text_search tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    CONSTRAINT ck_vector_chunks_dimensions CHECK (dimensions = vector_dims(embedding)),
    CONSTRAINT uq_vector_chunks_store_id_file_id_position UNIQUE (store_id, file_id, position)
)
"""

_SQLITE = [
    """
    CREATE TABLE vector_chunks (
        seq INTEGER PRIMARY KEY,
        id CHAR(32) NOT NULL UNIQUE,
        owner_id CHAR(32) NOT NULL,
        store_id CHAR(32) NOT NULL,
        file_id CHAR(32) NOT NULL,
        position INTEGER NOT NULL,
        text TEXT NOT NULL,
        token_count INTEGER NOT NULL,
        filename TEXT NOT NULL,
        attributes TEXT NOT NULL,
        dimensions INTEGER NOT NULL,
        embedding BLOB NOT NULL,
        CONSTRAINT uq_vector_chunks_store_id_file_id_position UNIQUE (store_id, file_id, position)
    )
    """,
    "CREATE VIRTUAL TABLE vector_chunks_fts USING fts5("
    "text, content='vector_chunks', content_rowid='seq', tokenize='porter unicode61')",
    "CREATE TRIGGER vector_chunks_fts_insert AFTER INSERT ON vector_chunks BEGIN "
    "INSERT INTO vector_chunks_fts (rowid, text) VALUES (new.seq, new.text); END",
    "CREATE TRIGGER vector_chunks_fts_delete AFTER DELETE ON vector_chunks BEGIN "
    "INSERT INTO vector_chunks_fts (vector_chunks_fts, rowid, text) VALUES ('delete', old.seq, old.text); END",
    "CREATE TABLE vector_store_generations (store_id CHAR(32) PRIMARY KEY, generation INTEGER NOT NULL)",
]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in _SQLITE:
            op.execute(statement)
        return
    available = bind.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first()
    if available is None:
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute(_POSTGRES_TABLE)
    op.execute("CREATE INDEX ix_vector_chunks_owner_id_store_id ON vector_chunks (owner_id, store_id)")
    op.execute("CREATE INDEX ix_vector_chunks_text_search ON vector_chunks USING gin (text_search)")
    for kind, sizes in (("vector", HNSW_DIMENSIONS), ("halfvec", HALFVEC_DIMENSIONS)):
        for size in sizes:
            op.execute(
                f"CREATE INDEX ix_vector_chunks_embedding_{size} ON vector_chunks "
                f"USING hnsw ((embedding::{kind}({size})) {kind}_cosine_ops) {HNSW_OPTIONS} WHERE dimensions = {size}"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("vector_chunks_fts_delete", "vector_chunks_fts_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        for table in ("vector_store_generations", "vector_chunks_fts", "vector_chunks"):
            op.execute(f"DROP TABLE IF EXISTS {table}")
        return
    op.execute("DROP TABLE IF EXISTS vector_chunks")  # the extension stays: other schemas may use it
