"""Committed state of the in-memory backend, and the transactions that change it.

Entities inside the store are never handed out and never mutated: repositories copy them out on read and copy
them in on write. A transaction records its writes in an overlay on top of the committed tables and publishes
them only on commit, so reads see the latest committed state plus the transaction's own writes (like
PostgreSQL's READ COMMITTED) and a rolled-back transaction leaves nothing behind.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from domain.audit.model import AuditEntry
from domain.auth.model import ApiKey, RefreshToken, User
from domain.batches.model import Batch, BatchLine
from domain.chat.model import Conversation, Message
from domain.credentials.model import ProviderCredential
from domain.files.model import StoredFile
from domain.idempotency.model import IdempotencyRecord
from domain.responses.model import ResponseRecord, ResponseStatus
from domain.shared.errors import Conflict, NotFound
from domain.usage.model import UsageRecord
from domain.vectors.stores import VectorStore, VectorStoreFile, VectorStoreFileBatch

EMAIL_TAKEN = "a user with this email already exists"
IDEMPOTENCY_KEY_TAKEN = "this idempotency key is already in use"
CONVERSATION_NOT_FOUND = "conversation not found"


class Entity(Protocol):
    @property
    def id(self) -> uuid.UUID: ...


E = TypeVar("E", bound=Entity)


class InMemoryStore:
    """The committed tables. Share one between unit-of-work factories to share a database."""

    def __init__(self) -> None:
        self.users: dict[uuid.UUID, User] = {}
        self.api_keys: dict[uuid.UUID, ApiKey] = {}
        self.refresh_tokens: dict[uuid.UUID, RefreshToken] = {}
        self.conversations: dict[uuid.UUID, Conversation] = {}
        self.messages: dict[uuid.UUID, Message] = {}
        self.usage_records: dict[uuid.UUID, UsageRecord] = {}
        self.idempotency: dict[uuid.UUID, IdempotencyRecord] = {}
        self.audit_log: dict[uuid.UUID, AuditEntry] = {}
        self.responses: dict[uuid.UUID, ResponseRecord] = {}
        self.files: dict[uuid.UUID, StoredFile] = {}
        self.vector_stores: dict[uuid.UUID, VectorStore] = {}
        self.vector_store_files: dict[uuid.UUID, VectorStoreFile] = {}
        self.vector_store_file_batches: dict[uuid.UUID, VectorStoreFileBatch] = {}
        self.batches: dict[uuid.UUID, Batch] = {}
        self.batch_lines: dict[uuid.UUID, BatchLine] = {}
        self.provider_credentials: dict[uuid.UUID, ProviderCredential] = {}
        self.commits = 0


def copy_in(entity: E) -> E:
    """A private copy for the store, timestamps in UTC; naive ones are refused, as the database does."""
    stored = copy.deepcopy(entity)
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(stored):  # type: ignore[arg-type]
        value = getattr(stored, field.name)
        if isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"naive datetime {value!r}: store timezone-aware values only")
            changes[field.name] = value.astimezone(UTC)
    return dataclasses.replace(stored, **changes) if changes else stored  # type: ignore[type-var]


def copy_out(entity: E) -> E:
    return copy.deepcopy(entity)


class Table(Generic[E]):
    """One table as a transaction sees it: the committed rows, overlaid with this transaction's writes."""

    def __init__(self, committed: dict[uuid.UUID, E]) -> None:
        self._committed = committed
        self.writes: dict[uuid.UUID, E | None] = {}  # None marks a delete

    def get(self, key: uuid.UUID) -> E | None:
        if key in self.writes:
            return self.writes[key]
        return self._committed.get(key)

    def rows(self) -> Iterator[E]:
        for key, row in self._committed.items():
            if key not in self.writes:
                yield row
        yield from (row for row in self.writes.values() if row is not None)

    def where(self, predicate: Callable[[E], bool]) -> list[E]:
        return [row for row in self.rows() if predicate(row)]

    def put(self, entity: E) -> None:
        self.writes[entity.id] = copy_in(entity)

    def delete(self, key: uuid.UUID) -> None:
        self.writes[key] = None

    def publish(self) -> None:
        for key, row in self.writes.items():
            if row is None:
                self._committed.pop(key, None)
            else:
                self._committed[key] = row
        self.writes.clear()


class Transaction:
    """The writes of one unit of work, published to the store only by ``commit``."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.users = Table(store.users)
        self.api_keys = Table(store.api_keys)
        self.refresh_tokens = Table(store.refresh_tokens)
        self.conversations = Table(store.conversations)
        self.messages = Table(store.messages)
        self.usage_records = Table(store.usage_records)
        self.idempotency = Table(store.idempotency)
        self.audit_log = Table(store.audit_log)
        self.responses = Table(store.responses)
        self.files = Table(store.files)
        self.vector_stores = Table(store.vector_stores)
        self.vector_store_files = Table(store.vector_store_files)
        self.vector_store_file_batches = Table(store.vector_store_file_batches)
        self.batches = Table(store.batches)
        self.batch_lines = Table(store.batch_lines)
        self.provider_credentials = Table(store.provider_credentials)
        self.response_guards: dict[uuid.UUID, ResponseStatus] = {}  # conditional updates: the status each one expected
        self.closed = False

    def check_open(self) -> None:
        if self.closed:
            raise RuntimeError("the unit of work is closed")

    def commit(self) -> None:
        """Checks the constraints again against what others committed meanwhile, then publishes.

        Synchronous on purpose: with no ``await`` inside, no other task can interleave, so it needs no lock.
        """
        self.check_open()
        self._check_unique_emails()
        self._check_unique_idempotency_keys()
        self._check_messages_have_conversations()
        self._check_response_guards()
        deleted_conversations = {key for key, row in self.conversations.writes.items() if row is None}
        for table in self._tables():
            table.publish()
        if deleted_conversations:  # the cascade, also for messages others committed meanwhile
            for key in [k for k, m in self.store.messages.items() if m.conversation_id in deleted_conversations]:
                del self.store.messages[key]
        self.store.commits += 1

    def rollback(self) -> None:
        for table in self._tables():
            table.writes.clear()
        self.response_guards.clear()

    def _check_response_guards(self) -> None:
        """A conditional update (``update_if``) of a response another commit moved on meanwhile is a conflict."""
        for key, status in self.response_guards.items():
            committed = self.store.responses.get(key)
            if committed is None or committed.status is not status:
                raise Conflict("the response changed meanwhile")
        self.response_guards.clear()

    def _tables(self) -> tuple[Table[Any], ...]:
        return (
            self.users,
            self.api_keys,
            self.refresh_tokens,
            self.conversations,
            self.messages,
            self.usage_records,
            self.idempotency,
            self.audit_log,
            self.responses,
            self.files,
            self.vector_stores,
            self.vector_store_files,
            self.vector_store_file_batches,
            self.batches,
            self.batch_lines,
            self.provider_credentials,
        )

    def _check_unique_emails(self) -> None:
        written = {row.email: row.id for row in self.users.writes.values() if row is not None}
        if not written:
            return
        for row in self.users.rows():
            if written.get(row.email, row.id) != row.id:
                raise Conflict(EMAIL_TAKEN)

    def _check_unique_idempotency_keys(self) -> None:
        written = {(row.user_id, row.key): row.id for row in self.idempotency.writes.values() if row is not None}
        if not written:
            return
        for row in self.idempotency.rows():
            if written.get((row.user_id, row.key), row.id) != row.id:
                raise Conflict(IDEMPOTENCY_KEY_TAKEN)

    def _check_messages_have_conversations(self) -> None:
        for message in self.messages.writes.values():
            if message is not None and self.conversations.get(message.conversation_id) is None:
                raise NotFound(CONVERSATION_NOT_FOUND)
