"""At start-up on the in-process queue, whose jobs die with their process: an ingestion job again for every store
file still ``in_progress``. Running one twice changes nothing (``IngestFile`` works only on a file still
``in_progress`` and ``replace_file`` writes the same chunks), so a file another live process is ingesting is safe.
The PostgreSQL queue keeps its jobs, and its lease runs a dead worker's again: it needs none of this."""

from __future__ import annotations

from application.unit_of_work import UnitOfWorkFactory
from application.vectors.attach import ingest_job

BATCH = 1000


class ResumeIngestion:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self) -> int:
        """Enqueues the jobs; returns how many (at most ``BATCH``: the rest at the next start)."""
        async with self._uow() as uow:
            unfinished = await uow.vector_store_files.list_in_progress(BATCH)
            for file in unfinished:
                await uow.jobs.enqueue(ingest_job(file))
            await uow.commit()
        return len(unfinished)
