"""What a worker does when it starts: a job for every batch not ended yet. On the embedded default the queue lives
in memory and is lost with the process; on PostgreSQL a job may have been lost to an operator's cleanup. Either
way the batch rows say what is left, and the jobs are idempotent, so enqueueing again is always safe."""

from __future__ import annotations

from application.batches.config import TASK_PREPARE, TASK_RUN
from application.unit_of_work import UnitOfWorkFactory
from domain.batches.model import BatchStatus
from domain.jobs.model import Job


class ResumeBatches:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self) -> int:
        async with self._uow() as uow:
            unfinished = await uow.batches.list_unfinished()
            for batch_id in unfinished:
                batch = await uow.batches.get(batch_id)
                task = TASK_PREPARE if batch.status is BatchStatus.VALIDATING else TASK_RUN
                await uow.jobs.enqueue(Job(task, {"batch_id": str(batch_id)}))
            await uow.commit()
        return len(unfinished)
