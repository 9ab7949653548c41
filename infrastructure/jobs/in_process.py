"""The in-process job queue of the embedded default (SQLite, ``memory://``): no extra service.

A unit of work collects its jobs (``PendingJobs``) and hands them to the process's ``InProcessJobQueue`` after its
commit, never before. The queue lives in memory: jobs not yet run are lost with the process, so what must survive a
restart is kept in the database by the work itself (the durable queue is the PostgreSQL one).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from domain.jobs.model import Job, JobHandler
from domain.jobs.ports import JobOutbox, JobWorker
from infrastructure.observability.logging import get_logger


class InProcessJobQueue:
    def __init__(self) -> None:
        self._jobs: asyncio.Queue[Job] = asyncio.Queue()

    def put(self, job: Job) -> None:
        self._jobs.put_nowait(job)

    async def get(self) -> Job:
        return await self._jobs.get()

    def done(self) -> None:
        self._jobs.task_done()

    async def join(self) -> None:
        """Until every job put so far has run (for tests and draining)."""
        await self._jobs.join()


class PendingJobs(JobOutbox):
    """The jobs of one unit of work, published to the queue by its commit."""

    def __init__(self, queue: InProcessJobQueue | None) -> None:
        self._queue = queue
        self.jobs: list[Job] = []

    async def enqueue(self, job: Job) -> None:
        if self._queue is None:
            raise RuntimeError("no job queue is configured for this unit of work")
        self.jobs.append(job)

    def publish(self) -> None:
        jobs, self.jobs = self.jobs, []
        for job in jobs:
            assert self._queue is not None
            self._queue.put(job)

    def discard(self) -> None:
        self.jobs.clear()


class InProcessJobWorker(JobWorker):
    def __init__(self, queue: InProcessJobQueue, *, concurrency: int, grace_seconds: float) -> None:
        self._queue = queue
        self._slots = asyncio.Semaphore(concurrency)
        self._grace = grace_seconds
        self._running: set[asyncio.Task[None]] = set()
        self._log = get_logger("switchboard.jobs")

    async def run(self, handlers: Mapping[str, JobHandler]) -> None:
        try:
            while True:
                await self._slots.acquire()
                job = await self._queue.get()
                task = asyncio.create_task(self._run_one(handlers, job))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
        except asyncio.CancelledError:
            if self._running:  # drain: running jobs finish within the grace period
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*self._running, return_exceptions=True), self._grace)
            raise

    async def _run_one(self, handlers: Mapping[str, JobHandler], job: Job) -> None:
        try:
            await handlers[job.task](job.args)
        except Exception:
            self._log.exception("job failed", task=job.task)
        finally:
            self._queue.done()
            self._slots.release()
