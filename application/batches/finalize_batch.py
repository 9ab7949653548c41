"""Ending a batch whose lines are all done: its output and error files written (for kinds that have files), then
the batch ended (completed, cancelled or expired) in one commit.

Idempotent: the files' ids derive from the batch's, so a finalization run twice (two workers, or one killed half
way) writes the same blobs under the same keys, and only the commit that ends the batch adds their metadata.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from application.batches.lines import ResultFormat
from application.unit_of_work import UnitOfWorkFactory
from domain.batches.model import Batch, BatchKind, BatchStatus, LineStatus
from domain.files.model import FilePurpose, StoredFile
from domain.files.ports import BlobStore
from domain.shared.clock import Clock

PAGE = 1000


class FinalizeBatch:
    def __init__(
        self, *, uow: UnitOfWorkFactory, blobs: BlobStore, clock: Clock, formats: Mapping[BatchKind, ResultFormat]
    ) -> None:
        self._uow = uow
        self._blobs = blobs
        self._clock = clock
        self._formats = formats

    async def execute(self, batch: Batch) -> None:
        files = await self._write_files(batch)
        async with self._uow() as uow:
            current = await uow.batches.get(batch.id, lock=True, counts=False)
            if current.status is not BatchStatus.FINALIZING and current.status is not BatchStatus.CANCELLING:
                return  # another worker ended it
            for file in files:
                if await uow.files.find_owned(file.id, file.owner_id) is None:
                    await uow.files.add(file)
            current.output_file_id = next((f.id for f in files if f.filename.endswith("_output.jsonl")), None)
            current.error_file_id = next((f.id for f in files if f.filename.endswith("_error.jsonl")), None)
            current.end(self._clock.now())
            await uow.batches.update(current)
            await uow.commit()

    async def _write_files(self, batch: Batch) -> list[StoredFile]:
        format_ = self._formats.get(batch.kind)
        if format_ is None:
            return []  # this kind renders its results on demand
        output, errors = bytearray(), bytearray()
        after = -1
        while True:
            async with self._uow() as uow:
                lines = await uow.batches.list_lines(batch.id, after_index=after, limit=PAGE)
            for line in lines:
                (output if line.status is LineStatus.SUCCEEDED else errors).extend(format_.render(line))
            if len(lines) < PAGE:
                break
            after = lines[-1].index
        files = []
        for name, content in (("output", output), ("error", errors)):
            if content:
                file = self._file(batch, name, len(content))
                await self._blobs.put(str(file.id), bytes(content))
                files.append(file)
        return files

    def _file(self, batch: Batch, name: str, size: int) -> StoredFile:
        return StoredFile(
            id=uuid.uuid5(batch.id, name),
            owner_id=batch.owner_id,
            filename=f"{batch.public_id}_{name}.jsonl",
            purpose=FilePurpose.BATCH_OUTPUT,
            size_bytes=size,
            created_at=self._clock.now(),
        )
