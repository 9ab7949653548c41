"""The job queue's side of the server: which handler runs each task (``job_handlers``), and the worker that runs
them beside the requests for as long as the app lives (``running_jobs``).

On SQLite and ``memory://`` the server runs the in-process worker, whose jobs die with the process, so background
responses left unfinished get their job again at start-up. On PostgreSQL the server only enqueues: procrastinate's
workers (``procrastinate_worker``, with ``job_handlers``) run the jobs in processes of their own (the durable queue:
any number of them share it, and a dead worker's jobs run again after the lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from functools import partial
from typing import TYPE_CHECKING

from application.responses.run_background_response import RUN_BACKGROUND_RESPONSE
from domain.jobs.model import JobHandler
from domain.jobs.ports import JobWorker
from infrastructure.jobs.in_process import InProcessJobWorker
from infrastructure.observability.logging import get_logger

if TYPE_CHECKING:
    from interfaces.container import Container

JOB_CONCURRENCY = 8  # jobs one process runs at once
JOB_LEASE_SECONDS = 30.0  # PostgreSQL: a worker silent this long is dead, and its jobs run again
WORKER_RESTART_SECONDS = 5.0
JOB_POLL_SECONDS = 1.0  # PostgreSQL: how often an idle worker looks for jobs (procrastinate also listens)

_log = get_logger("switchboard.jobs")


def job_handlers(container: Container) -> dict[str, JobHandler]:
    """Every task the queue runs, by name."""
    return {RUN_BACKGROUND_RESPONSE: partial(_run_background_response, container)}


async def _run_background_response(container: Container, args: Mapping[str, str]) -> None:
    await container.run_background_response().execute(uuid.UUID(args["response_id"]))


def procrastinate_worker(container: Container) -> JobWorker:
    """PostgreSQL's worker (procrastinate), for a process of its own: the server only enqueues there."""
    from infrastructure.jobs.procrastinate_queue import ProcrastinateJobWorker  # loaded only where it serves

    return ProcrastinateJobWorker(
        container.settings().database_url,
        concurrency=JOB_CONCURRENCY,
        grace_seconds=container.settings().graceful_shutdown_seconds,
        lease_seconds=JOB_LEASE_SECONDS,
        poll_seconds=JOB_POLL_SECONDS,
    )


async def _supervised(worker: JobWorker, handlers: Mapping[str, JobHandler]) -> None:
    """The worker, started again after a failure (the database away at start-up, a lost connection)."""
    while True:
        try:
            await worker.run(handlers)
            return
        except Exception:
            _log.warning("the job worker stopped; starting it again", exc_info=True)
            await asyncio.sleep(WORKER_RESTART_SECONDS)


@contextlib.asynccontextmanager
async def running_jobs(container: Container) -> AsyncIterator[None]:
    """Runs the in-process job worker (SQLite, ``memory://``) until the block ends; then it takes no new job and
    lets running ones finish within the graceful-shutdown period (a background response cut past it is marked
    failed). On PostgreSQL it runs nothing: worker processes do."""
    engine = container.engine()
    if engine is not None and engine.dialect.name == "postgresql":  # run by worker processes of their own
        yield
        return
    worker = InProcessJobWorker(
        container.job_queue(), concurrency=JOB_CONCURRENCY, grace_seconds=container.settings().graceful_shutdown_seconds
    )
    try:
        recovered = await container.recover_background_responses().execute()
    except Exception:  # the database behind or away: serve anyway (readiness says why), recover at the next start
        _log.warning("could not look for unfinished background responses", exc_info=True)
    else:
        if recovered:
            _log.info("background responses queued again after a restart", count=recovered)
    task = asyncio.create_task(_supervised(worker, job_handlers(container)))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
