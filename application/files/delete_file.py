"""Delete one of the caller's files: its metadata in one commit, then its bytes."""

from __future__ import annotations

from application.files.access import live_file, require_files_scope
from application.files.get_file import FileQuery
from application.unit_of_work import UnitOfWorkFactory
from domain.files.model import StoredFile
from domain.files.ports import BlobStore
from domain.shared.clock import Clock


class DeleteFile:
    def __init__(self, *, uow: UnitOfWorkFactory, blobs: BlobStore, clock: Clock) -> None:
        self._uow = uow
        self._blobs = blobs
        self._clock = clock

    async def execute(self, query: FileQuery) -> StoredFile:
        require_files_scope(query.principal)
        async with self._uow() as uow:
            file = await live_file(uow, query.file_id, query.principal.user_id, self._clock.now())
            await uow.files.delete(file.id)
            await uow.commit()
        await self._blobs.delete(str(file.id))
        return file
