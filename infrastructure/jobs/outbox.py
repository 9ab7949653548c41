"""Enqueueing a job on the PostgreSQL queue: one SQL call of procrastinate's schema (``procrastinate_defer_jobs_v1``)
in the unit of work's own session, so a job exists exactly when the rows it is about were committed. Plain SQL: the
server enqueues without importing procrastinate (the workers, ``procrastinate_queue``, do)."""

from __future__ import annotations

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from domain.jobs.model import DEFAULT_QUEUE, Job
from domain.jobs.ports import JobOutbox

_DEFER = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, NULL, NULL, CAST(:args AS jsonb), NULL)"
    "::procrastinate_job_to_defer_v1])"
)


class ProcrastinateJobOutbox(JobOutbox):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def enqueue(self, job: Job) -> None:
        args = orjson.dumps(dict(job.args)).decode()
        await self._session.execute(_DEFER, {"queue": DEFAULT_QUEUE, "task": job.task, "args": args})
