"""In-memory adapters of the files ports: the metadata repository and a blob store."""

from __future__ import annotations

import uuid
from datetime import datetime

from domain.files.errors import FileNotFound
from domain.files.model import FilePageCursor, FilePurpose, StoredFile
from domain.files.ports import BlobStore, FileRepository
from infrastructure.memory.repositories import InMemoryRepository
from infrastructure.memory.store import copy_out


class InMemoryFileRepository(InMemoryRepository, FileRepository):
    async def add(self, file: StoredFile) -> None:
        self._require_user(file.owner_id)
        self._insert(self._tx.files, file)

    async def find_owned(self, file_id: uuid.UUID, owner_id: uuid.UUID) -> StoredFile | None:
        self._tx.check_open()
        found = self._tx.files.get(file_id)
        return copy_out(found) if found is not None and found.owner_id == owner_id else None

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
        self._tx.check_open()

        def wanted(file: StoredFile) -> bool:
            if file.owner_id != owner_id or not file.is_live(now) or purpose not in (None, file.purpose):
                return False
            if after is None:
                return True
            position, cursor = (file.created_at, file.id), (after.created_at, after.id)
            return position < cursor if newest_first else position > cursor

        rows = sorted(self._tx.files.where(wanted), key=lambda f: (f.created_at, f.id), reverse=newest_first)
        return [copy_out(f) for f in rows[: max(limit, 0)]]

    async def delete(self, file_id: uuid.UUID) -> None:
        self._tx.check_open()
        if self._tx.files.get(file_id) is not None:
            self._tx.files.delete(file_id)

    async def delete_expired(self, owner_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
        self._tx.check_open()
        expired = self._tx.files.where(lambda f: f.owner_id == owner_id and not f.is_live(now))
        for file in expired:
            self._tx.files.delete(file.id)
        return [f.id for f in expired]


class InMemoryBlobStore(BlobStore):
    """Blobs in a dict: for tests and the ``memory://`` backend (one process)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    async def put(self, key: str, data: bytes) -> None:
        self.blobs[key] = bytes(data)

    async def get(self, key: str) -> bytes:
        try:
            return self.blobs[key]
        except KeyError:
            raise FileNotFound(f"no content for file {key}") from None

    async def delete(self, key: str) -> None:
        self.blobs.pop(key, None)
