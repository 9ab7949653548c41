"""Ports of the vector stores context: the stores and their files (in the unit of work), and document parsing."""

from __future__ import annotations

import abc
import uuid
from collections.abc import Collection

from domain.vectors.stores import (
    FileCounts,
    FileStatus,
    StorePageCursor,
    VectorStore,
    VectorStoreFile,
    VectorStoreFileBatch,
)


class VectorStoreRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, store: VectorStore) -> None:
        """Raises ``NotFound`` when the owner does not exist."""

    @abc.abstractmethod
    async def find_owned(self, store_id: uuid.UUID, owner_id: uuid.UUID) -> VectorStore | None:
        """The owner's store, expired or not; ``None`` for someone else's."""

    @abc.abstractmethod
    async def update(self, store: VectorStore) -> None:
        """Raises ``NotFound`` when the store is gone."""

    @abc.abstractmethod
    async def list_by_owner(
        self, owner_id: uuid.UUID, *, limit: int, newest_first: bool = True, after: StorePageCursor | None = None
    ) -> list[VectorStore]:
        """The owner's stores ordered by creation time then id, strictly after ``after`` in that order."""

    @abc.abstractmethod
    async def delete(self, store_id: uuid.UUID) -> None:
        """Deletes the store and its files' records; deleting a missing store is not an error."""


class VectorStoreFileRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, file: VectorStoreFile) -> None:
        """Raises ``NotFound`` when the store is gone."""

    @abc.abstractmethod
    async def find(self, store_id: uuid.UUID, file_id: uuid.UUID) -> VectorStoreFile | None: ...

    @abc.abstractmethod
    async def update(self, file: VectorStoreFile) -> None:
        """Raises ``NotFound`` when the file left the store."""

    @abc.abstractmethod
    async def list_by_store(
        self,
        store_id: uuid.UUID,
        *,
        limit: int,
        newest_first: bool = True,
        status: FileStatus | None = None,
        after: StorePageCursor | None = None,
        file_ids: Collection[uuid.UUID] | None = None,
    ) -> list[VectorStoreFile]:
        """The store's files (only ``file_ids`` when given) by creation time then file id (``after.id`` is a file
        id)."""

    @abc.abstractmethod
    async def list_in_progress(self, limit: int) -> list[VectorStoreFile]:
        """Up to ``limit`` files still ``in_progress`` in any store of any owner, oldest first (for re-enqueueing
        their ingestion after a restart)."""

    @abc.abstractmethod
    async def counts(self, store_id: uuid.UUID, file_ids: Collection[uuid.UUID] | None = None) -> FileCounts:
        """How many of the store's files (only ``file_ids`` when given) are in each status."""

    @abc.abstractmethod
    async def usage_bytes(self, store_id: uuid.UUID) -> int:
        """What the store's completed files take in the index (their chunks' text and vectors)."""

    @abc.abstractmethod
    async def delete(self, store_id: uuid.UUID, file_id: uuid.UUID) -> None:
        """Deleting a file that is not in the store is not an error."""


class VectorStoreFileBatchRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, batch: VectorStoreFileBatch) -> None:
        """Raises ``NotFound`` when the store is gone."""

    @abc.abstractmethod
    async def find(self, store_id: uuid.UUID, batch_id: uuid.UUID) -> VectorStoreFileBatch | None: ...

    @abc.abstractmethod
    async def update(self, batch: VectorStoreFileBatch) -> None:
        """Raises ``NotFound`` when the batch is gone (with its store)."""


class DocumentParser(abc.ABC):
    """A file's bytes to its text. CPU-bound: adapters run it off the event loop."""

    @abc.abstractmethod
    async def parse(self, filename: str, data: bytes) -> str:
        """Raises ``UnsupportedDocument`` for a type it does not read or bytes it cannot parse."""
