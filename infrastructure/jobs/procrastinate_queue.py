"""The durable job queue on PostgreSQL, with procrastinate (its schema is an Alembic revision of ours).

Enqueueing (``infrastructure.jobs.outbox``, which needs no procrastinate import, so a server that only enqueues
never loads it) is one SQL call of procrastinate's in the unit of work's own session. Workers are procrastinate
workers: they take jobs with ``SELECT … FOR UPDATE SKIP LOCKED`` (``procrastinate_fetch_job``), so any number of
them, on any number of machines, share the queue; each beats a heartbeat. A worker killed with SIGKILL leaves its
jobs ``doing`` with a heartbeat that stops: every worker looks for such stalled jobs and puts them back (the lease),
so they run again.

The database going away stops a procrastinate worker from inside (its heartbeat, a side task, fails, and it stops
itself): ``run`` then starts a new one once the database answers again, so a worker process outlives an outage (its
jobs held meanwhile come back through the lease, and the batch jobs themselves wait for the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Coroutine, Mapping
from typing import Any

import procrastinate
from sqlalchemy.engine import make_url

from domain.jobs.model import DEFAULT_QUEUE, JobHandler
from domain.jobs.ports import JobWorker
from infrastructure.observability.logging import get_logger

RESTART_SECONDS = 1.0  # between a worker that stopped by itself (the database away) and its replacement


def conninfo(database_url: str) -> str:
    """The libpq URL of a SQLAlchemy one (procrastinate speaks psycopg)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class ProcrastinateJobWorker(JobWorker):
    def __init__(
        self, database_url: str, *, concurrency: int, grace_seconds: float, lease_seconds: float, poll_seconds: float
    ) -> None:
        self._conninfo = conninfo(database_url)
        self._concurrency = concurrency
        self._grace = grace_seconds
        self._lease = lease_seconds
        self._poll = poll_seconds
        self._log = get_logger("switchboard.jobs")

    async def run(self, handlers: Mapping[str, JobHandler]) -> None:
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=self._conninfo))
        for name, handler in handlers.items():
            app.task(name=name, queue=DEFAULT_QUEUE)(functools.partial(_run, handler))
        # Not ``async with app.open_async()``: cancelled while the pool opens (a SIGTERM soon after the start), that
        # form never closes it, and an open psycopg pool's tasks swallow the cancellation ``asyncio.run`` sends them
        # at exit, so the process would never exit.
        try:
            await app.open_async()
            await self._work(app)
        finally:
            await _finish(app.close_async())

    async def _work(self, app: procrastinate.App) -> None:
        requeue = asyncio.create_task(self._requeue_stalled(app))
        try:
            while True:  # only cancellation (the process draining) ends it
                try:
                    await app.run_worker_async(
                        queues=[DEFAULT_QUEUE],
                        concurrency=self._concurrency,
                        install_signal_handlers=False,
                        shutdown_graceful_timeout=self._grace,
                        delete_jobs="always",
                        fetch_job_polling_interval=self._poll,
                        update_heartbeat_interval=max(self._lease / 4, 0.5),
                    )
                except Exception as exc:
                    _still_draining(exc)
                    self._log.warning("job worker failed; starting again", error=type(exc).__name__)
                else:
                    _still_draining(None)
                    self._log.warning("job worker stopped by itself (the database away?); starting again")
                await asyncio.sleep(RESTART_SECONDS)
        finally:
            requeue.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await requeue

    async def _requeue_stalled(self, app: procrastinate.App) -> None:
        """The lease: jobs of workers silent for ``lease_seconds`` (killed, or cut off) go back to the queue."""
        while True:
            await asyncio.sleep(self._lease / 2)
            try:
                stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=self._lease)
                for job in stalled:
                    self._log.warning("job stalled: back to the queue", job_id=job.id, task=job.task_name)
                    await app.job_manager.retry_job(job)
            except Exception:  # the database may be away for a while; try again next round
                self._log.warning("could not look for stalled jobs", exc_info=True)


def _still_draining(cause: Exception | None) -> None:
    """Raises the cancellation again when the worker ended inside a drain: procrastinate's drain talks to the database
    (it unregisters the worker), and with the database away it raises a database error in place of the cancellation,
    which would otherwise pass for a worker that failed by itself and start a new one in a process being stopped."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from cause


async def _finish(closing: Coroutine[Any, Any, None]) -> None:
    """Runs ``closing`` to its end even if cancelled again meanwhile (a second SIGTERM during the drain), then lets
    that cancellation through. The pool's close is bounded (it waits at most 5 s for its tasks)."""
    task = asyncio.ensure_future(closing)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    task.result()


async def _run(handler: JobHandler, **args: Any) -> None:
    await handler({key: str(value) for key, value in args.items()})
