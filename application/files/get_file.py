"""One of the caller's files: its metadata, or its bytes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.files.access import live_file, require_files_scope
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal
from domain.files.model import StoredFile
from domain.files.ports import BlobStore
from domain.shared.clock import Clock


@dataclass(frozen=True)
class FileQuery:
    principal: Principal
    file_id: uuid.UUID


class GetFile:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def execute(self, query: FileQuery) -> StoredFile:
        require_files_scope(query.principal)
        async with self._uow() as uow:
            return await live_file(uow, query.file_id, query.principal.user_id, self._clock.now())


class GetFileContent:
    def __init__(self, *, uow: UnitOfWorkFactory, blobs: BlobStore, clock: Clock) -> None:
        self._uow = uow
        self._blobs = blobs
        self._clock = clock

    async def execute(self, query: FileQuery) -> tuple[StoredFile, bytes]:
        require_files_scope(query.principal)
        async with self._uow() as uow:
            file = await live_file(uow, query.file_id, query.principal.user_id, self._clock.now())
        return file, await self._blobs.get(str(file.id))
