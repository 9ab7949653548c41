"""The relational schema as SQLAlchemy Core tables. Alembic migrations create it; this module describes it.

Enums are stored as plain strings (no native PostgreSQL enum types, so adding a value needs no migration),
ids as ``Uuid`` (native ``uuid`` on PostgreSQL, ``CHAR(32)`` hex on SQLite, both ordering like the UUID's
integer), and every timestamp through ``UTCDateTime`` so that it comes back aware UTC on both engines.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    false,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Whether Alembic compares this name with ``metadata``: not procrastinate's tables (the job queue's schema
    comes from its own revision, ``0007_procrastinate_job_queue``), nor the vector index's (their types are the
    database's own: pgvector, FTS5; revision ``0011_vector_chunks``)."""
    own_schema = ("procrastinate_", "vector_chunks", "vector_store_generations")
    return not (type_ == "table" and name is not None and name.startswith(own_schema))


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that only accepts aware values and always returns aware UTC.

    PostgreSQL keeps the instant in ``timestamptz``; SQLite keeps text without an offset, so values are
    converted to UTC before storing and UTC is re-attached on load. Naive datetimes are refused, not guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: store timezone-aware values only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _id() -> Column[uuid.UUID]:
    return Column("id", Uuid(), primary_key=True)


def _owner(name: str, parent: str) -> Column[uuid.UUID]:
    return Column(name, Uuid(), ForeignKey(f"{parent}.id", ondelete="CASCADE"), nullable=False)


def _limits() -> list[Column[int]]:
    """An administrator's overrides (``NULL``: the default applies): monthly budget in micro-dollars, rates."""
    return [
        Column("monthly_budget_micros", BigInteger(), nullable=True),
        Column("requests_per_minute", Integer(), nullable=True),
        Column("tokens_per_minute", Integer(), nullable=True),
    ]


users = Table(
    "users",
    metadata,
    _id(),
    Column("email", String(320), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("is_active", Boolean(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    *_limits(),
    UniqueConstraint("email"),
)

api_keys = Table(
    "api_keys",
    metadata,
    _id(),
    _owner("owner_id", "users"),
    Column("name", String(100), nullable=False),
    Column("scopes", JSON(), nullable=False),  # sorted list of scope values
    Column("prefix", String(32), nullable=False),
    # Its unique constraint is backed by a unique index on both engines; lookups use it, no second index.
    Column("key_hash", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    *_limits(),
    UniqueConstraint("key_hash"),
    Index(None, "owner_id"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    _id(),
    Column("family_id", Uuid(), nullable=False),
    _owner("user_id", "users"),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Index(None, "family_id"),
    Index(None, "user_id"),
)

conversations = Table(
    "conversations",
    metadata,
    _id(),
    _owner("owner_id", "users"),
    Column("title", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("system_prompt", Text(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("vector_store_ids", JSON(), nullable=True),  # the stores its messages are answered from (hex ids)
    Index(None, "owner_id", "created_at", "id"),  # newest-first cursor pages per owner
)

messages = Table(
    "messages",
    metadata,
    _id(),
    _owner("conversation_id", "conversations"),
    Column("role", String(16), nullable=False),
    Column("content", Text(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("input_tokens", Integer(), nullable=False),
    Column("output_tokens", Integer(), nullable=False),
    Column("model", String(200), nullable=True),
    Column("finish_reason", String(32), nullable=True),
    Column("citations", JSON(), nullable=True),  # an answer's citations of its conversation's vector stores
    Index(None, "conversation_id", "created_at", "id"),  # history in order; also serves the cascade
)

# The usage ledger: append-only, written in batches after the calls. No foreign keys on purpose: a batch insert
# must never fail (and be retried forever) because a conversation was deleted meanwhile, the ledger outlives what
# it refers to, and at thousands of rows a second a per-row key check is a cost for nothing.
usage_records = Table(
    "usage_records",
    metadata,
    _id(),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("user_id", Uuid(), nullable=False),
    Column("api_key_id", Uuid(), nullable=True),
    Column("conversation_id", Uuid(), nullable=True),
    Column("model", String(200), nullable=False),
    Column("served_model", String(200), nullable=True),
    Column("provider", String(32), nullable=True),
    Column("upstream_model", String(200), nullable=True),
    Column("variant", String(64), nullable=True),
    Column("input_tokens", Integer(), nullable=False),
    Column("output_tokens", Integer(), nullable=False),
    Column("cached_tokens", Integer(), nullable=False),  # prompt-cache reads
    Column("cache_write_tokens", Integer(), nullable=False, server_default="0"),  # prompt-cache writes
    Column("cost_micros", BigInteger(), nullable=False),
    Column("cache_savings_micros", BigInteger(), nullable=False, server_default="0"),
    Column("latency_ms", Integer(), nullable=False),
    Column("ttft_ms", Integer(), nullable=True),
    Column("status", String(16), nullable=False),
    Column("error_code", String(64), nullable=True),
    Column("cached", Boolean(), nullable=False),
    Column("streamed", Boolean(), nullable=False),
    Column("estimated", Boolean(), nullable=False),
    Column("batch_id", Uuid(), nullable=True),  # the batch the call was a line of
    Column("batch_priced", Boolean(), nullable=False, server_default="0"),  # billed at the catalog's batch price
    Column("key_owner", String(16), nullable=False, server_default="operator"),  # whose provider key paid
    Index(None, "user_id", "created_at"),  # a user's usage over a range; seeds a user's budget counter
    Index(None, "api_key_id", "created_at"),  # the same per key
    Index(None, "created_at"),  # the admin report across users
)


# Append-only. No foreign keys: the trail must outlive (and never block deleting) what it talks about.
audit_log = Table(
    "audit_log",
    metadata,
    _id(),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("actor_id", Uuid(), nullable=False),
    Column("actor_api_key_id", Uuid(), nullable=True),
    Column("action", String(64), nullable=False),
    Column("target_type", String(32), nullable=False),
    Column("target_id", String(64), nullable=False),
    Column("before", JSON(), nullable=True),
    Column("after", JSON(), nullable=True),
    Column("request_id", String(128), nullable=True),
    Index(None, "target_type", "target_id", "occurred_at"),  # a target's history, newest first
    Index(None, "occurred_at"),  # everything, by time
)

UQ_USERS_EMAIL = "uq_users_email"

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    _id(),
    _owner("user_id", "users"),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("response_status", Integer(), nullable=True),
    Column("response_media_type", String(100), nullable=True),
    Column("response_body", Text(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    # One key per user; its unique index also serves the lookups and the per-user purge of expired keys.
    UniqueConstraint("user_id", "key"),
)

UQ_IDEMPOTENCY_KEYS_USER_ID_KEY = "uq_idempotency_keys_user_id_key"

# Responses API: the whole stored response, owned by its creator. History, input and tool calls are JSON lists of
# the domain's messages and calls; ``settings`` the request's settings as the API echoes them (JSON text).
responses = Table(
    "responses",
    metadata,
    _id(),
    _owner("user_id", "users"),
    Column("model", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("completed_at", UTCDateTime(), nullable=True),
    Column("previous_response_id", Uuid(), nullable=True),  # no foreign key: deleting a response breaks no chain
    Column("instructions", Text(), nullable=True),
    Column("history", JSON(), nullable=False),
    Column("input", JSON(), nullable=False),
    Column("output_text", Text(), nullable=False),
    Column("tool_calls", JSON(), nullable=False),
    Column("input_tokens", Integer(), nullable=False),
    Column("output_tokens", Integer(), nullable=False),
    Column("cached_tokens", Integer(), nullable=False),
    Column("incomplete_reason", String(32), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text(), nullable=True),
    Column("settings", Text(), nullable=False),
    Column("file_search", JSON(), nullable=True),  # the search of its file_search tool: queries and passages
    Column("background", Boolean(), nullable=False, server_default=false()),
    Column("call", JSON(), nullable=True),  # a background response's call, until it ended
    Column("heartbeat_at", UTCDateTime(), nullable=True),  # its runner, last seen alive
    Column("cache_write_tokens", Integer(), nullable=False, server_default="0"),  # prompt-cache writes
    Column("stream_marks", JSON(), nullable=True),  # a background response's text, beat by beat
    Index(None, "user_id", "created_at"),  # a user's responses; also serves the cascade from users
    Index(None, "status"),  # the few responses not yet finished (looked for when a process restarts)
)

files = Table(
    "files",
    metadata,
    _id(),
    _owner("owner_id", "users"),
    Column("filename", String(255), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("size_bytes", BigInteger(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    # A user's pages, in either order.
    Index(None, "owner_id", "created_at", "id"),
)

# The bytes of files when the database is the blob store (``SqlAlchemyBlobStore``); keyed by the file's id. No
# foreign key: a blob is written before its metadata commits.
file_blobs = Table(
    "file_blobs",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("data", LargeBinary(), nullable=False),
)

# Vector stores and the files in them (their chunks are the vector index's, not these tables'). Metadata and
# attributes are JSON objects; the chunking strategy is its two numbers and whether it was ``static``.
vector_stores = Table(
    "vector_stores",
    metadata,
    _id(),
    _owner("owner_id", "users"),
    Column("name", String(256), nullable=False),
    Column("embedding_model", String(200), nullable=False),
    Column("description", String(512), nullable=True),
    Column("metadata", JSON(), nullable=False),
    Column("expires_after_days", Integer(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_active_at", UTCDateTime(), nullable=False),
    Index(None, "owner_id", "created_at", "id"),  # a user's pages, in either order
)

vector_store_files = Table(
    "vector_store_files",
    metadata,
    Column("store_id", Uuid(), ForeignKey("vector_stores.id", ondelete="CASCADE"), primary_key=True),
    Column("file_id", Uuid(), primary_key=True),  # no foreign key: deleting a file from /v1/files keeps its chunks
    Column("owner_id", Uuid(), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attributes", JSON(), nullable=False),
    Column("max_chunk_size_tokens", Integer(), nullable=False),
    Column("chunk_overlap_tokens", Integer(), nullable=False),
    Column("static_chunking", Boolean(), nullable=False),
    Column("error_code", String(32), nullable=True),
    Column("error_message", Text(), nullable=True),
    Column("usage_bytes", BigInteger(), nullable=False),
    Column("api_key_id", Uuid(), nullable=True),  # no foreign key: ingestion bills the owner when the key is gone
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "store_id", "created_at", "file_id"),  # a store's pages, in either order
)

# Files attached to a store together (``file_ids``: a JSON list of the files' ids in hex); their statuses are the
# files' own rows.
vector_store_file_batches = Table(
    "vector_store_file_batches",
    metadata,
    _id(),
    Column("store_id", Uuid(), ForeignKey("vector_stores.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("owner_id", Uuid(), nullable=False),
    Column("file_ids", JSON(), nullable=False),
    Column("cancelled", Boolean(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Batches of model calls (``domain.batches``): the source of truth of a batch's state and of each line's.
batches = Table(
    "batches",
    metadata,
    _id(),
    _owner("owner_id", "users"),
    Column("api_key_id", Uuid(), nullable=True),  # the key it was created with: its limits apply to the lines
    Column("kind", String(16), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("completion_window", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("input_file_id", Uuid(), nullable=True),
    Column("output_file_id", Uuid(), nullable=True),
    Column("error_file_id", Uuid(), nullable=True),
    Column("metadata", JSON(), nullable=False),
    Column("errors", JSON(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("in_progress_at", UTCDateTime(), nullable=True),
    Column("finalizing_at", UTCDateTime(), nullable=True),
    Column("completed_at", UTCDateTime(), nullable=True),
    Column("failed_at", UTCDateTime(), nullable=True),
    Column("expired_at", UTCDateTime(), nullable=True),
    Column("cancelling_at", UTCDateTime(), nullable=True),
    Column("cancelled_at", UTCDateTime(), nullable=True),
    Index(None, "owner_id", "created_at", "id"),  # a user's pages, newest first
    Index(None, "status"),  # the unfinished ones, for workers starting up
)

batch_lines = Table(
    "batch_lines",
    metadata,
    _id(),
    Column("batch_id", Uuid(), ForeignKey("batches.id", ondelete="CASCADE"), nullable=False),
    Column("line_index", Integer(), nullable=False),
    Column("custom_id", String(512), nullable=False),
    Column("url", String(64), nullable=False),
    Column("body", Text(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("claim_id", Uuid(), nullable=True),
    Column("claimed_until", UTCDateTime(), nullable=True),
    Column("status_code", Integer(), nullable=True),
    Column("response", Text(), nullable=True),
    Column("request_id", String(128), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text(), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    UniqueConstraint("batch_id", "line_index"),  # lines in order; also serves the cascade
    UniqueConstraint("batch_id", "custom_id"),
    Index(None, "batch_id", "status", "line_index"),  # the open lines to claim, and the counts
)

# Keys users bring for a provider: the secret only sealed (AES-256-GCM under the key-encryption key ``key_id``
# names, bound to its user and provider), and a masked hint. One per user and provider.
provider_credentials = Table(
    "provider_credentials",
    metadata,
    _id(),
    _owner("user_id", "users"),
    Column("provider", String(32), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("ciphertext", LargeBinary(), nullable=False),
    Column("hint", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("user_id", "provider"),
)
