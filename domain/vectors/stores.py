"""Vector stores: named collections of a user's files, parsed, chunked and embedded for search.

A store picks its embedding model at creation (every chunk of it is embedded, and every query against it, with that
model). A file in a store (``VectorStoreFile``) is one of the owner's ``/v1/files`` files with attributes for
filtering; it is ingested by a job (``in_progress``), then ``completed`` or ``failed`` with a reason. Ids are
OpenAI's: ``vs_`` and 32 hex digits for a store; a store's file is named by its file's ``file-`` id.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.shared.errors import RuleViolation
from domain.vectors.errors import file_batch_not_found, vector_store_not_found
from domain.vectors.model import AttributeValue

STORE_PREFIX = "vs_"
BATCH_PREFIX = "vsfb_"
MAX_NAME_LENGTH = 256
MAX_DESCRIPTION_LENGTH = 512
# OpenAI's bounds: 16 metadata pairs (keys up to 64 characters, values up to 512); 16 file attributes (keys up to
# 64 characters, string values up to 512); stores expire 1 to 365 days after they were last active.
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY_LENGTH = 64
MAX_METADATA_VALUE_LENGTH = 512
MAX_ATTRIBUTES = 16
MAX_ATTRIBUTE_KEY_LENGTH = 64
MAX_ATTRIBUTE_STRING_LENGTH = 512
MIN_EXPIRY_DAYS = 1
MAX_EXPIRY_DAYS = 365
EXPIRY_ANCHOR = "last_active_at"
MAX_FILES_PER_REQUEST = 500


class StoreStatus(enum.StrEnum):
    EXPIRED = "expired"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class FileStatus(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FileErrorCode(enum.StrEnum):
    """OpenAI's ``last_error.code`` values for a file that failed to ingest."""

    SERVER_ERROR = "server_error"
    UNSUPPORTED_FILE = "unsupported_file"
    INVALID_FILE = "invalid_file"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"


@dataclass(frozen=True)
class ChunkingStrategy:
    """How a file is cut into chunks, in tokens. ``auto`` is OpenAI's default: 800 tokens, 400 of overlap; a
    ``static`` strategy takes 100 to 4096 tokens a chunk and an overlap of at most half a chunk."""

    max_chunk_size_tokens: int = 800
    chunk_overlap_tokens: int = 400
    static: bool = False

    MIN_SIZE = 100
    MAX_SIZE = 4096

    @classmethod
    def auto(cls) -> ChunkingStrategy:
        return cls()

    @classmethod
    def of(cls, max_chunk_size_tokens: int, chunk_overlap_tokens: int) -> ChunkingStrategy:
        if not cls.MIN_SIZE <= max_chunk_size_tokens <= cls.MAX_SIZE:
            raise RuleViolation(
                f"chunking_strategy.static.max_chunk_size_tokens: must be between {cls.MIN_SIZE} and {cls.MAX_SIZE}"
            )
        if not 0 <= chunk_overlap_tokens <= max_chunk_size_tokens // 2:
            raise RuleViolation(
                "chunking_strategy.static.chunk_overlap_tokens: must be between 0 and half of max_chunk_size_tokens"
            )
        return cls(max_chunk_size_tokens, chunk_overlap_tokens, static=True)


@dataclass(frozen=True)
class FileCounts:
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.in_progress + self.completed + self.failed + self.cancelled


@dataclass(kw_only=True)
class VectorStore:
    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    embedding_model: str
    created_at: datetime
    last_active_at: datetime
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    expires_after_days: int | None = None  # anchored on ``last_active_at``

    @property
    def public_id(self) -> str:
        return public_store_id(self.id)

    @property
    def expires_at(self) -> datetime | None:
        if self.expires_after_days is None:
            return None
        return self.last_active_at + timedelta(days=self.expires_after_days)

    def is_live(self, now: datetime) -> bool:
        expires_at = self.expires_at
        return expires_at is None or expires_at > now

    def status(self, now: datetime, counts: FileCounts) -> StoreStatus:
        if not self.is_live(now):
            return StoreStatus.EXPIRED
        return StoreStatus.IN_PROGRESS if counts.in_progress else StoreStatus.COMPLETED


@dataclass(kw_only=True)
class VectorStoreFile:
    """One file in one store. Its natural key is (store, file); ``id`` derives from it (one row per pair)."""

    store_id: uuid.UUID
    file_id: uuid.UUID
    owner_id: uuid.UUID
    filename: str
    created_at: datetime
    chunking: ChunkingStrategy = field(default_factory=ChunkingStrategy.auto)
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    status: FileStatus = FileStatus.IN_PROGRESS
    error_code: FileErrorCode | None = None
    error_message: str | None = None
    usage_bytes: int = 0
    api_key_id: uuid.UUID | None = None  # the credential that attached it: ingestion's embeddings are billed to it

    @property
    def id(self) -> uuid.UUID:
        return store_file_key(self.store_id, self.file_id)

    def complete(self, usage_bytes: int) -> None:
        self.status, self.usage_bytes = FileStatus.COMPLETED, usage_bytes
        self.error_code = self.error_message = None

    def fail(self, code: FileErrorCode, message: str) -> None:
        self.status, self.error_code, self.error_message = FileStatus.FAILED, code, message[:1000]
        self.usage_bytes = 0


class BatchStatus(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(kw_only=True)
class VectorStoreFileBatch:
    """Files attached to a store together; their statuses make the batch's (its own state is only ``cancelled``)."""

    id: uuid.UUID
    store_id: uuid.UUID
    owner_id: uuid.UUID
    created_at: datetime
    file_ids: list[uuid.UUID]
    cancelled: bool = False

    @property
    def public_id(self) -> str:
        return BATCH_PREFIX + self.id.hex

    def status(self, counts: FileCounts) -> BatchStatus:
        if counts.in_progress:
            return BatchStatus.IN_PROGRESS
        if self.cancelled:
            return BatchStatus.CANCELLED
        if counts.failed and not counts.completed:
            return BatchStatus.FAILED
        return BatchStatus.COMPLETED


def parse_batch_id(text: str) -> uuid.UUID:
    if text.startswith(BATCH_PREFIX):
        try:
            return uuid.UUID(hex=text.removeprefix(BATCH_PREFIX))
        except ValueError:
            pass
    raise file_batch_not_found(text)


def store_file_key(store_id: uuid.UUID, file_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(store_id, file_id.hex)


def public_store_id(store_id: uuid.UUID) -> str:
    return STORE_PREFIX + store_id.hex


def parse_store_id(text: str) -> uuid.UUID:
    """The id inside a public store id; anything else is a store that does not exist (404, never 400)."""
    if text.startswith(STORE_PREFIX):
        try:
            return uuid.UUID(hex=text.removeprefix(STORE_PREFIX))
        except ValueError:
            pass
    raise vector_store_not_found(text)


@dataclass(frozen=True)
class StorePageCursor:
    """Where a page starts: after this row, in the order asked for."""

    created_at: datetime
    id: uuid.UUID


def check_metadata(metadata: dict[str, str]) -> dict[str, str]:
    if len(metadata) > MAX_METADATA_PAIRS:
        raise RuleViolation(f"metadata: at most {MAX_METADATA_PAIRS} pairs")
    for key, value in metadata.items():
        if not 1 <= len(key) <= MAX_METADATA_KEY_LENGTH or len(value) > MAX_METADATA_VALUE_LENGTH:
            raise RuleViolation(
                f"metadata: keys of 1 to {MAX_METADATA_KEY_LENGTH} characters, values of at most "
                f"{MAX_METADATA_VALUE_LENGTH}"
            )
    return dict(metadata)


def check_attributes(attributes: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
    if len(attributes) > MAX_ATTRIBUTES:
        raise RuleViolation(f"attributes: at most {MAX_ATTRIBUTES} pairs")
    checked: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if not 1 <= len(key) <= MAX_ATTRIBUTE_KEY_LENGTH:
            raise RuleViolation(f"attributes: keys of 1 to {MAX_ATTRIBUTE_KEY_LENGTH} characters")
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_STRING_LENGTH:
            raise RuleViolation(f"attributes: string values of at most {MAX_ATTRIBUTE_STRING_LENGTH} characters")
        checked[key] = value if isinstance(value, str | bool) else float(value)
    return checked


def check_expiry_days(days: int | None) -> int | None:
    if days is not None and not MIN_EXPIRY_DAYS <= days <= MAX_EXPIRY_DAYS:
        raise RuleViolation(f"expires_after.days: must be between {MIN_EXPIRY_DAYS} and {MAX_EXPIRY_DAYS}")
    return days
