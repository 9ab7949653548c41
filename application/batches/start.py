"""Starting a batch whose lines passed their checks: the lines stored, the batch ``in_progress`` and the jobs that
run it enqueued, all in the caller's unit of work (so the jobs exist exactly when the rows do)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from application.batches.admission import CheckedLine
from application.batches.config import TASK_RUN, BatchLimits
from application.unit_of_work import UnitOfWork
from domain.batches.model import Batch, BatchLine
from domain.jobs.model import Job
from domain.shared.ids import new_id

INSERT_PAGE = 1000


async def start_batch(
    uow: UnitOfWork, batch: Batch, lines: Sequence[CheckedLine], *, now: datetime, limits: BatchLimits
) -> None:
    for start in range(0, len(lines), INSERT_PAGE):
        await uow.batches.add_lines(
            [
                BatchLine(
                    id=new_id(),
                    batch_id=batch.id,
                    index=start + offset,
                    custom_id=line.custom_id,
                    url=line.url,
                    body_json=line.body_json,
                )
                for offset, line in enumerate(lines[start : start + INSERT_PAGE])
            ]
        )
    batch.start(now)
    await uow.batches.update(batch)
    for _ in range(max(1, min(limits.jobs_per_batch, len(lines)))):
        await uow.jobs.enqueue(run_job(batch))


def run_job(batch: Batch) -> Job:
    return Job(TASK_RUN, {"batch_id": str(batch.id)})
