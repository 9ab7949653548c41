"""The results of a batch whose kind renders them on demand (Anthropic's message batches): one line of JSONL per
request, in request order, read a page at a time so that a 100,000-request batch is never held in memory.

The batch is checked (owned, of that kind, ended) before the first byte, so a refusal is a clean error response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from application.batches.get_batch import BatchQuery
from application.batches.lines import ResultFormat
from application.files.access import require_files_scope
from application.unit_of_work import UnitOfWorkFactory
from domain.batches.errors import BatchNotFound
from domain.batches.model import Batch, BatchKind, public_batch_id

PAGE = 1000


class BatchResults:
    def __init__(self, *, uow: UnitOfWorkFactory, formats: Mapping[BatchKind, ResultFormat]) -> None:
        self._uow = uow
        self._formats = formats

    async def execute(self, query: BatchQuery) -> AsyncIterator[bytes]:
        require_files_scope(query.principal)
        async with self._uow() as uow:
            batch = await uow.batches.find_owned(query.batch_id, query.principal.user_id, query.kind)
        if batch is None or query.kind not in self._formats:
            raise BatchNotFound(f"no such batch: '{public_batch_id(query.batch_id, query.kind)}'")
        batch.require_ended("read its results")
        return self._pages(batch, self._formats[query.kind])

    async def _pages(self, batch: Batch, format_: ResultFormat) -> AsyncIterator[bytes]:
        after = -1
        while True:
            async with self._uow() as uow:
                lines = await uow.batches.list_lines(batch.id, after_index=after, limit=PAGE)
            if lines:
                yield b"".join(format_.render(line) for line in lines)
            if len(lines) < PAGE:
                return
            after = lines[-1].index
