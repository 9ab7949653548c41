"""The job handlers: each task name the queue dispatches, and the use case that runs it (built by the container)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from application.vectors.attach import INGEST_TASK
from domain.jobs.model import JobHandler
from infrastructure.jobs.in_process import InProcessJobWorker

if TYPE_CHECKING:
    from interfaces.container import Container


def job_handlers(container: Container) -> dict[str, JobHandler]:
    return {INGEST_TASK: container.ingest_file()}


IN_PROCESS_CONCURRENCY = 4


def start_in_process_worker(container: Container) -> asyncio.Task[None] | None:
    """The embedded default's worker (SQLite, ``memory://``), running the jobs of this process's in-process queue
    inside the server; ``None`` on PostgreSQL, whose jobs go to procrastinate's queue and its workers."""
    engine = container.engine()
    if engine is not None and engine.dialect.name == "postgresql":
        return None
    worker = InProcessJobWorker(
        container.job_queue(),
        concurrency=IN_PROCESS_CONCURRENCY,
        grace_seconds=container.settings().graceful_shutdown_seconds,
    )
    return asyncio.create_task(worker.run(job_handlers(container)), name="job-worker")


async def stop_worker(task: asyncio.Task[None] | None) -> None:
    """Cancels the worker: it takes no new job and lets the running ones finish within its grace period."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
