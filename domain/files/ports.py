"""Ports of the files context: the metadata repository and the store of the bytes."""

from __future__ import annotations

import abc
import uuid
from datetime import datetime

from domain.files.model import FilePageCursor, FilePurpose, StoredFile


class FileRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, file: StoredFile) -> None:
        """Raises ``NotFound`` when the owner does not exist."""

    @abc.abstractmethod
    async def find_owned(self, file_id: uuid.UUID, owner_id: uuid.UUID) -> StoredFile | None:
        """The owner's file, expired or not; ``None`` for someone else's."""

    @abc.abstractmethod
    async def list_by_owner(
        self,
        owner_id: uuid.UUID,
        *,
        now: datetime,
        limit: int,
        newest_first: bool = True,
        purpose: FilePurpose | None = None,
        after: FilePageCursor | None = None,
    ) -> list[StoredFile]:
        """The owner's live files (not expired at ``now``) ordered by creation time then id, after ``after``."""

    @abc.abstractmethod
    async def delete(self, file_id: uuid.UUID) -> None:
        """Deleting a missing file is not an error."""

    @abc.abstractmethod
    async def delete_expired(self, owner_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
        """Deletes the owner's files expired at ``now``; returns their ids (for their blobs to go too)."""


class BlobStore(abc.ABC):
    """The bytes of files, by key, readable by every instance (the database, or a shared directory).

    Not transactional: a blob is written before its metadata commits and deleted after its metadata is gone, so a
    crash in between leaves an unreferenced blob, never metadata without its bytes.
    """

    @abc.abstractmethod
    async def put(self, key: str, data: bytes) -> None: ...

    @abc.abstractmethod
    async def get(self, key: str) -> bytes:
        """Raises ``FileNotFound`` when there is no blob under ``key``."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Deleting a missing blob is not an error."""
