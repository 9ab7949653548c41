"""Cancel a batch: no new line starts, running ones finish, and the batch ends ``cancelled`` with what ran
(finalized by the batch's job, enqueued here in case none is running)."""

from __future__ import annotations

from application.batches.get_batch import BatchQuery
from application.batches.start import run_job
from application.files.access import require_files_scope
from application.unit_of_work import UnitOfWorkFactory
from domain.batches.errors import BatchNotFound
from domain.batches.model import CANCELLED_RESULT, Batch, public_batch_id
from domain.shared.clock import Clock


class CancelBatch:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def execute(self, query: BatchQuery) -> Batch:
        require_files_scope(query.principal)
        now = self._clock.now()
        async with self._uow() as uow:
            found = await uow.batches.find_owned(query.batch_id, query.principal.user_id, query.kind)
            if found is None:
                raise BatchNotFound(f"no such batch: '{public_batch_id(query.batch_id, query.kind)}'")
            batch = await uow.batches.get(found.id, lock=True)
            batch.cancel(now)
            await uow.batches.close_open_lines(batch.id, CANCELLED_RESULT, now)
            await uow.batches.update(batch)
            await uow.jobs.enqueue(run_job(batch))
            await uow.commit()
        async with self._uow() as uow:
            return await uow.batches.get(batch.id)  # with the counts after the cancelled lines
