"""Delete a message batch and its results: only once it has ended (cancel a running one first), as Anthropic's API
allows. The usage records of its lines stay (they are the bill)."""

from __future__ import annotations

from application.batches.get_batch import BatchQuery
from application.files.access import require_files_scope
from application.unit_of_work import UnitOfWorkFactory
from domain.batches.errors import BatchNotFound
from domain.batches.model import Batch, public_batch_id


class DeleteMessageBatch:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, query: BatchQuery) -> Batch:
        require_files_scope(query.principal)
        async with self._uow() as uow:
            batch = await uow.batches.find_owned(query.batch_id, query.principal.user_id, query.kind)
            if batch is None:
                raise BatchNotFound(f"no such batch: '{public_batch_id(query.batch_id, query.kind)}'")
            batch.require_ended("delete it")
            await uow.batches.delete(batch.id)
            await uow.commit()
        return batch
