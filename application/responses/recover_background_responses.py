"""At start-up on the in-process queue, whose jobs die with their process: a run job again for every background
response left unfinished. Running one twice changes nothing (``RunBackgroundResponse`` claims a queued response
atomically and fails one whose runner stopped beating), so a response another live process is running is safe.
The PostgreSQL queue keeps its jobs, and its lease runs a dead worker's again: it needs none of this."""

from __future__ import annotations

from application.responses.run_background_response import run_job
from application.unit_of_work import UnitOfWorkFactory

BATCH = 1000


class RecoverBackgroundResponses:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self) -> int:
        """Enqueues the jobs; returns how many (at most ``BATCH``: the rest at the next start)."""
        async with self._uow() as uow:
            unfinished = await uow.responses.list_unfinished_background(BATCH)
            for record in unfinished:
                await uow.jobs.enqueue(run_job(record.id))
            await uow.commit()
        return len(unfinished)
